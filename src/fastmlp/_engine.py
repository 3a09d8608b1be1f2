"""The binding of the C engine, under the name the package uses for it.

The extension itself is fastmlp._fastmlp_engine (_fastmlp_engine.pyx): a
shared-object file name that no other library's starts with, which is how
threadpoolctl finds the engine's threads among the libraries a process has
loaded (see fastmlp._threads).
"""

from fastmlp._fastmlp_engine import *  # noqa: F401,F403
from fastmlp._fastmlp_engine import __file__ as extension_file  # noqa: F401
