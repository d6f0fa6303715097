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
        "topic with a consumer, in a process of its own, that commits after processing and processes "
        "idempotently by key. --producer fire-and-forget, --consumer auto-commit and --consumer-crash-after "
        "show what the unsafe practices lose. Exit 0 when every message believed sent was read and "
        "processed once, 1 when one was lost, not processed or processed twice, 2 when the probe cannot run "
        "(or a fault or recover command failed).",
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
    parser.add_argument(
        "--producer",
        choices=["checked", "fire-and-forget"],
        default="checked",
        help="checked (default): every send checked in a delivery callback and failed sends re-sent; "
        "fire-and-forget: retries=0, no idempotence, outcomes ignored (use with --acks 1)",
    )
    parser.add_argument(
        "--consumer",
        choices=["checked", "auto-commit"],
        default="checked",
        help="checked (default): no auto commit, commit after processing, idempotent processing; "
        "auto-commit: offsets committed in the background as records are handed over, before processing",
    )
    parser.add_argument(
        "--consumer-crash-after",
        type=int,
        default=None,
        metavar="N",
        help="SIGKILL the consumer in the middle of a batch once it has processed N messages; a second "
        "consumer of the same group then reads to the end",
    )
    parser.add_argument(
        "--processing-ms",
        type=float,
        default=0.0,
        help="the time the application takes to process one message (default 0)",
    )
    parser.add_argument(
        "--consumer-batch", type=int, default=1000, help="records per batch the consumer takes (default 1000)"
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
    if args.consumer_crash_after is not None and not 0 < args.consumer_crash_after < args.messages:
        return cannot("--consumer-crash-after must be between 1 and --messages - 1")
    if args.processing_ms < 0 or args.consumer_batch < 2:
        return cannot("--processing-ms must not be negative and --consumer-batch must be at least 2")
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
            producer=args.producer,
            consumer=args.consumer,
            consumer_crash_after=args.consumer_crash_after,
            consumer_batch=args.consumer_batch,
            processing_ms=args.processing_ms,
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
