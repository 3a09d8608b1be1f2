"""What this installation of fastmlp runs with (fastmlp.show_config)."""

import os
import platform
import sys

from fastmlp import _engine
from fastmlp._threads import _usable_cpus, default_n_threads, thread_limit


def config():
    """How the engine runs here, as a dict: the instruction set and GEMM
    kernels in use, those built and those this CPU runs, the threads and the
    default thread count with what set it."""
    limit = thread_limit()
    return {
        "version": __import__("fastmlp").__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "isa": _engine.isa(),
        "isa_built": _engine.isa_built(),
        "isa_runnable": [name for name in _engine.isa_built() if _engine.isa_supported(name)],
        "kernels": {
            "float32": _engine.kernel("float32"),
            "float64": _engine.kernel("float64"),
        },
        "threads": _engine.THREADS_BACKEND,
        "default_n_threads": default_n_threads(),
        "usable_cpus": _usable_cpus(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "thread_limit": limit or None,
    }


def show_config(file=None):
    """Print how fastmlp runs on this machine.

    The lines name the instruction set and GEMM micro-kernels in use (e.g.
    ``avx2 6x16/4x16``, ``neon 12x8``), the engine's threads and the default
    thread count, with what limits it (usable CPUs, OMP_NUM_THREADS, a
    threadpoolctl limit). The instruction set can be narrowed with the
    environment variable FASTMLP_ISA (e.g. ``avx2``).

    Parameters
    ----------
    file : file object, default=None
        Where to print; None is sys.stdout.
    """
    c = config()
    runs = " ".join(c["isa_runnable"])
    if c["threads"] == "none":
        threads = "none: this build runs one thread (FASTMLP_THREADS=OFF)"
    else:
        threads = f"{c['threads']}, the engine's own pool"
    limits = [f"usable CPUs {c['usable_cpus']}"]
    if c["OMP_NUM_THREADS"] is not None:
        limits.append(f"OMP_NUM_THREADS={c['OMP_NUM_THREADS']}")
    if c["thread_limit"]:
        limits.append(f"threadpoolctl limit {c['thread_limit']}")
    lines = [
        f"fastmlp {c['version']} on {c['platform']}, Python {c['python']}",
        f"  instruction set: {c['isa']} (built: {' '.join(c['isa_built'])}; "
        f"this CPU runs: {runs})",
        f"  kernels: float32 {c['kernels']['float32']}, float64 {c['kernels']['float64']}",
        f"  threads: {threads}",
        f"  default n_threads: {c['default_n_threads']} at most ({', '.join(limits)}); "
        "the count in use is chosen by timing as a fit runs",
    ]
    print("\n".join(lines), file=file if file is not None else sys.stdout)
