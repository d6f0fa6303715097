"""`durabletopic probe`: prove end to end that no acknowledged message is lost, even through a fault."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from durabletopic.commands.common import add_kafka_target_flags, kafka_target_from, quiet_librdkafka

# The limit of reading the KafkaCluster and of checking Kafka's cluster id (--timeout is a phase's).
CLUSTER_CHECK_TIMEOUT_S = 30.0


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "probe",
        help="write numbered messages through a fault, read them back, report what was lost",
        description="Write N numbered messages to an existing topic with the client durability profile "
        "(acks=all, idempotence, retries with backoff, every send checked in a delivery callback, failed "
        "sends re-sent), running --fault-cmd half way and --recover-cmd at three quarters; then read the "
        "topic with a consumer that commits after processing and drops duplicates by key. "
        "Exit 0 when every acknowledged message was read, 1 when one is missing, 2 when the probe "
        "cannot run (or a fault or recover command failed).",
    )
    add_kafka_target_flags(parser)
    parser.add_argument("--topic", required=True, help="an existing topic (the probe creates none)")
    parser.add_argument("--messages", type=int, default=10000, help="how many messages (default 10000)")
    parser.add_argument("--fault-cmd", default=None, help="shell command run once half the messages are sent")
    parser.add_argument(
        "--recover-cmd",
        default=None,
        help="shell command run at three quarters (after the fault command; the consumer starts after it)",
    )
    parser.add_argument(
        "--acks",
        choices=["all", "1", "0"],
        default="all",
        help="the producer's acks; 1 and 0 (without idempotence) demonstrate an unsafe producer",
    )
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds each phase may take: the last delivery reports, then reading every acknowledged "
        "message; also the limit of each command (default 120)",
    )
    parser.add_argument(
        "--delivery-timeout",
        type=float,
        default=30.0,
        help="delivery.timeout.ms of one send in seconds, the client's own retries included; a send "
        "that fails is then re-sent by the probe (default 30)",
    )
    parser.add_argument(
        "--max-retries", type=int, default=3, help="how often the probe re-sends a failed message (default 3)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="messages per second (default 0: as fast as it goes)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from durabletopic.tools.clusterref import TargetError
    from durabletopic.tools.probe import Probe, ProbeConfig, ProbeError, render_table

    def cannot(why: str) -> int:
        print(f"durabletopic probe: {why}", file=sys.stderr)
        return 2

    if args.messages < 1:
        return cannot("--messages must be at least 1")
    if args.timeout <= 0 or args.delivery_timeout <= 0:
        return cannot("--timeout and --delivery-timeout must be positive")
    if not 0 <= args.max_retries <= 100:
        return cannot("--max-retries must be between 0 and 100")
    quiet_librdkafka()
    try:
        target = kafka_target_from(args, timeout_s=min(args.timeout, CLUSTER_CHECK_TIMEOUT_S))
        config = ProbeConfig(
            bootstrap_servers=target.bootstrap_servers,
            topic=args.topic,
            messages=args.messages,
            acks=args.acks,
            fault_cmd=args.fault_cmd,
            recover_cmd=args.recover_cmd,
            timeout_s=args.timeout,
            delivery_timeout_s=args.delivery_timeout,
            max_retries=args.max_retries,
            rate=args.rate,
            client_config=target.client_config,
        )
        report = Probe(config).run()
    except (ProbeError, TargetError, OSError) as error:
        return cannot(str(error))
    if args.output == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render_table(report))
    failed = report.commands_failed
    if failed:
        command = failed[0]
        return cannot(
            f"the command {command.command!r} failed (exit {command.exit_code}): "
            f"{command.output_tail.splitlines()[-1] if command.output_tail else 'no output'}"
        )
    return 0 if report.ok else 1
