"""`durabletopic audit`: the cluster's durability, with no Kubernetes (unless --cluster names a KafkaCluster)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from durabletopic.commands.common import (
    add_floor_flags,
    add_kafka_flags,
    kafka_target_from,
    policy_from,
    quiet_librdkafka,
)
from durabletopic.core import audit
from durabletopic.core.findings import Finding
from durabletopic.tools.clusterref import KafkaTarget, TargetError


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "audit",
        help="audit a Kafka cluster's durability, no Kubernetes needed (unless --cluster)",
        description="Check every topic and the broker defaults against the durability floors. "
        "Exit 0 compliant, 1 findings, 2 cannot run.",
    )
    add_kafka_flags(parser)
    parser.add_argument("--output", choices=["table", "json"], default="table")
    add_floor_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from durabletopic.adapters.kafka.admin import KafkaAdmin
    from durabletopic.loop.audit import read_cluster
    from durabletopic.loop.ports import KafkaAdminError

    async def collect(target: KafkaTarget) -> list[Finding]:
        kafka = KafkaAdmin(target.bootstrap_servers, target.client_config, request_timeout_s=args.timeout)
        try:
            topics, broker = await asyncio.wait_for(read_cluster(kafka), args.timeout * 3)
        finally:
            kafka.close()
        return audit.audit_cluster(topics, broker, policy_from(args))

    quiet_librdkafka()
    try:
        target = kafka_target_from(args)
    except (TargetError, OSError) as error:
        print(f"durabletopic audit: {error}", file=sys.stderr)
        return 2
    try:
        findings = asyncio.run(collect(target))
    except (KafkaAdminError, TimeoutError, OSError, ValueError) as error:
        print(
            f"durabletopic audit: cannot audit {target}: {error or type(error).__name__}",
            file=sys.stderr,
        )
        return 2
    if args.output == "json":
        print(json.dumps({"compliant": not findings, "findings": [as_dict(f) for f in findings]}, indent=2))
    else:
        print(render_table(findings))
    return 1 if findings else 0


def as_dict(finding: Finding) -> dict[str, str]:
    return {
        "subject": finding.subject,
        "rule": finding.rule,
        "actual": finding.actual,
        "required": finding.required,
        "severity": str(finding.severity),
    }


def render_table(findings: list[Finding]) -> str:
    if not findings:
        return "compliant: no findings"
    header = ("SUBJECT", "RULE", "ACTUAL", "REQUIRED", "SEVERITY")
    rows = [header] + [(f.subject, f.rule, f.actual, f.required, str(f.severity)) for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
