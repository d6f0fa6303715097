"""`durabletopic client-config`: a topic's client durability profile, with no cluster."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from durabletopic.core import clientprofile
from durabletopic.core.rules import topic_name_problem


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "client-config",
        help="print the producer or consumer settings that keep a topic's messages",
        description="Print the client durability profile of TOPIC: the settings a producer or consumer "
        "needs so that no acknowledged message is lost (the same as the DurableTopic's "
        "<name>-client-profile ConfigMap). Needs no cluster. Exit 0, or 2 on a bad argument.",
    )
    parser.add_argument("topic", metavar="TOPIC", help="the Kafka topic name")
    parser.add_argument("--role", choices=clientprofile.ROLES, required=True)
    parser.add_argument(
        "--format",
        choices=clientprofile.FORMATS,
        default="properties",
        help="java (or properties): Java client properties (default); spring: Spring Boot application.properties "
        "(spring.kafka.*; the consumer's with the listener's manual ack mode); json: librdkafka keys as a JSON "
        "object; env: KAFKA_TOPIC and KAFKA_<ROLE>_<KEY>=value lines",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    problem = topic_name_problem(args.topic)
    if problem:
        print(f"durabletopic client-config: topic name {args.topic!r} {problem}", file=sys.stderr)
        return 2
    sys.stdout.write(clientprofile.render(args.topic, args.role, args.format))
    return 0
