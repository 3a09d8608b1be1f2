"""`python -m fastmlp`: the same command line as `fastmlp` (fastmlp._cli)."""

import sys

from fastmlp._cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m fastmlp"))
