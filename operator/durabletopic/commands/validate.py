"""`durabletopic validate`: DurableTopic manifests checked offline, the way the cluster would check them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from durabletopic import validate
from durabletopic.commands.common import add_floor_flags, policy_from


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "validate",
        help="check DurableTopic manifests offline (CRD schema, CEL rules, floors)",
        description="Check the DurableTopic objects in YAML files (directories: every *.yaml and *.yml "
        "under them; '-': standard input) against the CRD's schema and rules and the platform's floors, "
        "with no cluster. Other kinds are skipped. Exit 0 valid, 1 invalid, 2 unreadable input.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML file, directory, or - for stdin")
    parser.add_argument("--output", choices=["table", "json"], default="table")
    add_floor_flags(parser)
    parser.add_argument(
        "--previous",
        action="append",
        default=[],
        metavar="PATH",
        help="the manifests as they are now (e.g. the main branch): each object in PATH... is also checked "
        "as an update of the object of the same namespace and name here (partitions may only grow, "
        "topicName is immutable); repeatable",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="unknown fields are errors, as with `kubectl apply --validate=strict` (kubectl's default); "
        "by default they are warnings, as the API server drops them",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = validate.validate(args.paths, policy_from(args), args.previous, strict=args.strict)
    if args.output == "json":
        print(validate.render_json(report))
    else:
        print(validate.render_table(report))
    for error in report.errors:
        print(f"durabletopic validate: {error}", file=sys.stderr)
    return report.exit_code()
