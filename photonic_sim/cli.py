"""The `photonic-sim` command line (subcommands are added by each layer's module)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="photonic-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from photonic_sim.accelerators import cli as cost_cli

    cost_cli.add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
