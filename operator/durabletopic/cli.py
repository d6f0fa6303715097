"""The `durabletopic` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from durabletopic import __version__
from durabletopic.commands import audit, client_config, import_topics, plan, probe, run, validate

# Each module registers one subcommand; the order is the order of `--help`.
COMMANDS = (run, audit, validate, plan, import_topics, client_config, probe)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durabletopic",
        description="Kafka topics that are durable by construction: the DurableTopic operator and its tools.",
    )
    parser.add_argument("--version", action="version", version=f"durabletopic {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
