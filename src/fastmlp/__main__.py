"""Command line: `python -m fastmlp demo`."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastmlp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo",
        help="the worked backpropagation example, XOR, and digits next to scikit-learn",
    )
    demo_parser.add_argument(
        "--plot",
        metavar="DIR",
        help="also write the worked example's loss curve and XOR's decision boundary as PNGs",
    )
    args = parser.parse_args(argv)
    from fastmlp._demo import main as demo

    demo(plot_dir=args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
