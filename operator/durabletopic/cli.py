"""The `durabletopic` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from durabletopic import __version__
from durabletopic.model import Policy
from durabletopic.settings import OperatorSettings, read_client_properties


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durabletopic",
        description="Kafka topics that are durable by construction: the DurableTopic operator and its tools.",
    )
    parser.add_argument("--version", action="version", version=f"durabletopic {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the operator",
        description="Run the operator. Every flag defaults to its DURABLETOPIC_* environment variable.",
    )
    fields = OperatorSettings.model_fields
    for name, field in fields.items():
        flag = "--" + name.replace("_", "-")
        env = "DURABLETOPIC_" + name.upper()
        help_text = f"{field.description} (env {env}, default {field.default!r})"
        run.add_argument(flag, dest=name, default=None, help=help_text)
    run.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, then in-cluster)"
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    audit = commands.add_parser(
        "audit",
        help="audit a Kafka cluster's durability, no Kubernetes needed",
        description="Check every topic and the broker defaults against the durability floors. "
        "Exit 0 compliant, 1 findings, 2 cannot run.",
    )
    _add_kafka_flags(audit)
    audit.add_argument("--output", choices=["table", "json"], default="table")
    _add_floor_flags(audit)
    return parser


def _add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka bootstrap servers, host:port[,...]")
    parser.add_argument(
        "--kafka-config-file", type=Path, default=None, help="extra librdkafka properties, key=value lines"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for Kafka (default 10)")


def _add_floor_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-replication-factor", type=int, default=3, help="replication factor floor (default 3)"
    )
    parser.add_argument(
        "--min-insync-replicas", type=int, default=2, help="min.insync.replicas floor (default 2)"
    )


def _policy(args: argparse.Namespace) -> Policy:
    return Policy(
        min_replication_factor=args.min_replication_factor, min_insync_replicas=args.min_insync_replicas
    )


def _audit(args: argparse.Namespace) -> int:
    from durabletopic import audit
    from durabletopic.kafka.admin import KafkaAdmin, KafkaAdminError

    async def collect() -> list[audit.Finding]:
        extra = read_client_properties(args.kafka_config_file) if args.kafka_config_file else {}
        kafka = KafkaAdmin(args.bootstrap_servers, extra, request_timeout_s=args.timeout)
        try:
            topics, broker = await asyncio.wait_for(audit.read_cluster(kafka), args.timeout * 3)
        finally:
            kafka.close()
        return audit.audit_cluster(topics, broker, _policy(args))

    logging.getLogger("durabletopic.kafka.librdkafka").addHandler(logging.NullHandler())
    logging.getLogger("durabletopic.kafka.librdkafka").propagate = False
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


def _run(args: argparse.Namespace) -> int:
    from durabletopic.k8s.operator import run

    overrides = {name: getattr(args, name) for name in OperatorSettings.model_fields}
    try:
        settings = OperatorSettings.from_env(**overrides)
    except ValidationError as error:
        for problem in error.errors():
            print(f"durabletopic: invalid setting {problem['loc'][0]}: {problem['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLevelName(args.log_level)))
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, kubeconfig=args.kubeconfig))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "audit":
        return _audit(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
