"""`durabletopic import`: a DurableTopic manifest for every Kafka topic no DurableTopic manages."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from durabletopic.commands.common import (
    add_floor_flags,
    add_kafka_flags,
    kafka_target_from,
    policy_from,
    quiet_librdkafka,
)
from durabletopic.core import importing
from durabletopic.tools import importing as import_tools
from durabletopic.tools.clusterref import TargetError

EXIT_OK, EXIT_ERROR = 0, 2
PROG = "durabletopic import"


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "import",
        help="write a DurableTopic manifest for every Kafka topic no DurableTopic manages",
        description="Read every topic from Kafka and write a DurableTopic manifest for each one no DurableTopic "
        "declares, as it is (partitions, replication factor, the configs set on the topic itself), raised to "
        "the floors where it is below them; comments at the top of a manifest say what it changes. Internal "
        "and system topics are skipped. Which topics are managed: the DurableTopics the API server holds "
        "(through --kubeconfig, as kubectl finds it), or with --managed those of manifest files; "
        "--ignore-api-server takes every topic as unmanaged. Kafka is not changed. Exit 0, 2 cannot run.",
    )
    add_kafka_flags(parser)
    parser.add_argument("--prefix", default="", help="only the topics whose names start with this")
    parser.add_argument(
        "--namespace", default=None, metavar="NS", help="metadata.namespace of the manifests (default: none)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="write one file <metadata.name>.yaml per topic in DIR (default: one YAML stream on stdout)",
    )
    managed = parser.add_mutually_exclusive_group()
    managed.add_argument(
        "--managed",
        action="append",
        default=[],
        metavar="PATH",
        help="the DurableTopic manifests (files or directories, e.g. your Git repository) whose topics are "
        "managed, instead of asking the API server; repeatable",
    )
    managed.add_argument(
        "--ignore-api-server",
        action="store_true",
        help="do not ask the API server: every topic that is not internal is taken as unmanaged",
    )
    parser.add_argument(
        "--internal-topic-exception",
        action="append",
        default=[],
        metavar="NAME",
        help="an internal or system topic to import all the same (as the operator's internalTopicExceptions); "
        "repeatable",
    )
    add_floor_flags(parser)
    parser.set_defaults(handler=run)


def _managed_objects(args: argparse.Namespace) -> list[dict[str, Any]] | str:
    """The DurableTopic objects that say which topics are managed, or why they cannot be read."""
    from durabletopic.adapters.kubernetes.clusterread import KubeReadError

    if args.ignore_api_server:
        return []
    if args.managed:
        read = import_tools.from_manifests(args.managed)
        if read.errors:
            return "; ".join(str(e) for e in read.errors)
        return read.objects
    try:
        return import_tools.from_api_server(args.kubeconfig, args.timeout)
    except KubeReadError as error:
        return (
            f"cannot tell which topics DurableTopics manage: {error}. Give --managed PATH (the DurableTopic "
            "manifests), or --ignore-api-server to take every topic as unmanaged"
        )


def run(args: argparse.Namespace) -> int:
    from durabletopic.loop.ports import KafkaAdminError

    quiet_librdkafka()
    try:
        target = kafka_target_from(args)
    except (TargetError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_ERROR
    objects = _managed_objects(args)
    if isinstance(objects, str):
        print(f"{PROG}: {objects}", file=sys.stderr)
        return EXIT_ERROR
    managed = importing.managed_topics(objects, args.cluster)

    def select(names: Collection[str]) -> list[str]:
        return importing.to_import(names, managed, args.prefix, args.internal_topic_exception)

    try:
        names, topics = asyncio.run(
            asyncio.wait_for(
                import_tools.read_topics(
                    target.bootstrap_servers, target.client_config, args.timeout, select
                ),
                args.timeout * 3 + 5,
            )
        )
    except (KafkaAdminError, TimeoutError, OSError, ValueError) as error:
        print(f"{PROG}: cannot read Kafka at {target}: {error or type(error).__name__}", file=sys.stderr)
        return EXIT_ERROR
    taken = importing.names_in(objects, args.namespace)
    imported = import_tools.build(topics.values(), args.namespace, policy_from(args), taken)
    if args.output is None:
        sys.stdout.write(import_tools.render_all(imported))
    else:
        import_tools.write(imported, args.output)
    raised = sum(bool(i.changes) for i in imported)
    skipped = sum(1 for n in names if n.startswith(args.prefix)) - len(imported)
    where = f" in {args.output}" if args.output is not None else ""
    print(
        f"{PROG}: {len(imported)} manifests written{where} ({raised} change their topic, see the comments "
        f"at their top); {skipped} topics skipped (managed or internal)",
        file=sys.stderr,
    )
    return EXIT_OK
