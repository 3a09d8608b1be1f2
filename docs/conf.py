"""Sphinx configuration of fastmlp's documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
from the repository root, with fastmlp and its docs extra installed
(``pip install ".[docs]"``): the API pages are read from the installed
package, and the gallery runs the scripts in ``examples/``.
"""

import os
import re

import fastmlp

project = "fastmlp"
author = "the fastmlp developers"
copyright = "the fastmlp developers"
release = fastmlp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"fastmlp {release}"

autodoc_default_options = {"member-order": "bysource"}
# the types are in the docstrings
autodoc_typehints = "none"
# the methods are listed on each class page by autodoc's :members:, not by
# numpydoc's summary tables (which would need autosummary stubs)
numpydoc_show_class_members = False
# every parameter documented, in order, with a description
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "PR07"}
# callbacks read an EpochRecord, never build one: its fields are documented
# as the attributes they are read as
numpydoc_validation_exclude = {r"\.EpochRecord$"}

# Examples that take seconds (scikit-learn's own fit, eight L-BFGS fits, a
# Dask cluster) are shown but not run; the tests run every example.
_NOT_RUN = ["activations", "digits", "dask_training"]
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": (
        re.escape(os.sep) + "(?!(" + "|".join(_NOT_RUN) + r")\.py$)[^" + re.escape(os.sep) + "]+$"
    ),
    "download_all_examples": False,
    "min_reported_time": 5,
}
