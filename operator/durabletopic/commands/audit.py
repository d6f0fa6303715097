"""`durabletopic audit`: the cluster's durability, with no Kubernetes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from durabletopic import audit
from durabletopic.commands.common import (
    add_floor_flags,
    add_kafka_flags,
    client_config_from,
    policy_from,
    quiet_librdkafka,
)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "audit",
        help="audit a Kafka cluster's durability, no Kubernetes needed",
        description="Check every topic and the broker defaults against the durability floors. "
        "Exit 0 compliant, 1 findings, 2 cannot run.",
    )
    add_kafka_flags(parser)
    parser.add_argument("--output", choices=["table", "json"], default="table")
    add_floor_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from durabletopic.kafka.admin import KafkaAdmin, KafkaAdminError

    async def collect() -> list[audit.Finding]:
        kafka = KafkaAdmin(args.bootstrap_servers, client_config_from(args), request_timeout_s=args.timeout)
        try:
            topics, broker = await asyncio.wait_for(audit.read_cluster(kafka), args.timeout * 3)
        finally:
            kafka.close()
        return audit.audit_cluster(topics, broker, policy_from(args))

    quiet_librdkafka()
    try:
        findings = asyncio.run(collect())
    except (KafkaAdminError, TimeoutError, OSError, ValueError) as error:
        print(
            f"durabletopic audit: cannot audit {args.bootstrap_servers}: {error or type(error).__name__}",
            file=sys.stderr,
        )
        return 2
    if args.output == "json":
        print(json.dumps({"compliant": not findings, "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        print(audit.render_table(findings))
    return 1 if findings else 0
