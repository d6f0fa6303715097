"""`durabletopic validate`: DurableTopic manifests checked offline, the way the cluster would check them."""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Any

from durabletopic.commands.common import add_floor_flags, add_tenancy_flags, policy_from, tenancy_from
from durabletopic.core.findings import Finding
from durabletopic.core.reasons import Severity
from durabletopic.tools import validate


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "validate",
        help="check DurableTopic manifests offline (CRD schema, CEL rules, floors, DurabilityPolicies)",
        description="Check the DurableTopic objects in YAML files (directories: every *.yaml and *.yml "
        "under them; '-': standard input) against the CRD's schema and rules, the platform's floors, the "
        "internal topics and, with --policy, the rules of the DurabilityPolicies that select each object's "
        "namespace, with no cluster. Other kinds are skipped. Namespace quotas count each namespace's "
        "manifests in the order of the files; the cluster counts its objects oldest first. "
        "Exit 0 valid, 1 invalid, 2 unreadable input.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML file, directory, or - for stdin")
    parser.add_argument("--output", choices=["table", "json"], default="table")
    add_floor_flags(parser)
    add_tenancy_flags(parser)
    parser.add_argument(
        "--previous",
        action="append",
        default=[],
        metavar="PATH",
        help="the manifests as they are now (e.g. the main branch): each object in PATH... is also checked "
        "as an update of the object of the same namespace and name here (partitions may only grow, "
        "topicName and clusterRef are immutable); repeatable",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="unknown fields are errors, as with `kubectl apply --validate=strict` (kubectl's default); "
        "by default they are warnings, as the API server drops them",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    read = tenancy_from(args)
    report = validate.validate(
        args.paths, policy_from(args), args.previous, strict=args.strict, tenancy=read.tenancy
    )
    report.errors[:0] = read.errors
    if args.output == "json":
        print(render_json(report))
    else:
        print(render_table(report))
    for error in report.errors:
        print(f"durabletopic validate: {error}", file=sys.stderr)
    return report.exit_code()


def render_table(report: validate.Report) -> str:
    """One line per finding and a summary; read errors are the caller's to print (to stderr)."""
    out = io.StringIO()
    for f in report.findings:
        name = f.name or "<no name>"
        field_part = f"{f.field}: " if f.field and not f.message.startswith(f.field) else ""
        refused = f"; refused by {f.stage}" if f.severity is Severity.ERROR else ""
        print(
            f"{f.file}:{f.line} [{f.document}] {name}: {f.severity}: {field_part}{f.message} "
            f"(rule {f.rule}{refused})",
            file=out,
        )
    invalid = {(f.file, f.document) for f in report.findings if f.severity is Severity.ERROR}
    verdict = "valid" if report.valid else ("unreadable input" if report.errors else "invalid")
    policies = f", checked against {len(report.policies)} DurabilityPolicy(s)" if report.policies else ""
    print(
        f"{verdict}: {len(report.manifests)} DurableTopic(s) in {report.files} file(s), {len(invalid)} invalid, "
        f"{report.skipped} other object(s) skipped{policies}",
        file=out,
    )
    return out.getvalue().rstrip("\n")


def render_json(report: validate.Report) -> str:
    document = {
        "valid": report.valid,
        "files": report.files,
        "objects": len(report.manifests),
        "skipped": report.skipped,
        "policies": list(report.policies),
        "findings": [finding_dict(f) for f in report.findings],
        "errors": [e.as_dict() for e in report.errors],
    }
    return json.dumps(document, indent=2)


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "file": finding.file,
        "document": finding.document,
        "line": finding.line,
        "name": finding.name,
        "field": finding.field,
        "rule": finding.rule,
        "message": finding.message,
        "stage": str(finding.stage) if finding.stage is not None else None,
        "severity": str(finding.severity),
        "policy": finding.policy or None,
    }
