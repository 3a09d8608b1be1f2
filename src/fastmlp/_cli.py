"""The `fastmlp` command (also `python -m fastmlp`)."""

import argparse
import sys

EXAMPLES = """\
examples:
  fastmlp demo
  fastmlp demo --plot pictures
"""


def demo(args):
    from fastmlp._demo import main as run_demo

    run_demo(plot_dir=args.plot)
    return 0


# ---- the parser ----------------------------------------------------------------------


def build_parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="fastmlp: multilayer perceptrons trained in C, behind scikit-learn's "
        "MLPClassifier and MLPRegressor.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from fastmlp import __version__

    parser.add_argument("--version", action="version", version=f"fastmlp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser(
        "demo", help="the worked backpropagation example, XOR, and digits next to scikit-learn"
    )
    p.add_argument("--plot", metavar="DIR", help="also write the worked example's loss curve "
                   "and XOR's decision boundary as PNGs into DIR (needs matplotlib)")
    p.set_defaults(run=demo)
    return parser


def main(argv=None, prog="fastmlp"):
    """Run the command line; returns the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("demo --plot needs matplotlib: pip install 'fastmlp[plot]'")
    return args.run(args)
