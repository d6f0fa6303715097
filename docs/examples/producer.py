#!/usr/bin/env python3
"""A producer that loses no acknowledged message: the topic's client profile, and every send checked.

    python producer.py --bootstrap-servers HOST:PORT --topic orders --profile-dir /etc/kafka-profile
    python producer.py --bootstrap-servers HOST:PORT --topic orders --profile producer.json

The profile comes from the DurableTopic's ConfigMap ``<name>-client-profile`` mounted as a directory
(it reads ``producer.json``, and ``topic`` when --topic is not given), or from a JSON file written by
``durabletopic client-config TOPIC --role producer --format json``. It needs only confluent-kafka.

It sends --messages records (key: the record number, value: a small JSON document). Every send has a
delivery callback; nothing is fire-and-forget, and nothing waits for one send before the next. Once all
are handed over, one flush() waits for the last reports; whatever failed (the client has already
retried it for delivery.timeout.ms) is sent again, up to --max-rounds times. Exit 0 when every record
was acknowledged, 1 when some were not, 2 when it cannot start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer


def load_profile(profile_dir: Path | None, profile_file: Path | None, role: str) -> dict[str, Any]:
    """The client settings of the profile: ``<dir>/<role>.json``, or a JSON file of them."""
    path = profile_file if profile_file is not None else Path(profile_dir or ".") / f"{role}.json"
    settings = json.loads(path.read_text())
    if not isinstance(settings, dict):
        raise ValueError(f"{path} does not hold a JSON object of client settings")
    return settings


def topic_from(args: argparse.Namespace) -> str:
    if args.topic:
        return str(args.topic)
    if args.profile_dir and (args.profile_dir / "topic").exists():
        return str((args.profile_dir / "topic").read_text().strip())
    raise ValueError("no --topic, and no 'topic' file in the profile directory")


class Round:
    """What the delivery callbacks reported in one round of sends."""

    def __init__(self) -> None:
        self.failed: dict[bytes, bytes] = {}
        self.errors: dict[bytes, str] = {}
        self.fatal: KafkaError | None = None

    def on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        # Called from poll()/flush() in this thread, once per record: success, or the final error
        # after the client's own retries (delivery.timeout.ms).
        if err is None:
            return
        self.failed[msg.key()] = msg.value()
        self.errors[msg.key()] = err.str()
        if err.fatal():
            self.fatal = err  # the producer is unusable (e.g. fenced): stop, a new one is needed


def send_all(
    producer: Producer, topic: str, records: dict[bytes, bytes], max_rounds: int
) -> dict[bytes, str]:
    """Send every record; returns the ones that still failed after ``max_rounds`` rounds, with the error."""
    pending = records
    errors: dict[bytes, str] = {}
    for round_no in range(1, max_rounds + 1):
        sends = Round()
        for key, value in pending.items():
            while True:
                try:
                    producer.produce(topic, key=key, value=value, on_delivery=sends.on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)  # local queue full: serve delivery reports, then try again
            producer.poll(0)  # serve the reports that are ready, without waiting
            if sends.fatal is not None:
                break
        producer.flush()  # the last reports of this round (one wait for all, not one per record)
        errors = sends.errors
        if not sends.failed or sends.fatal is not None:
            break
        print(f"round {round_no}: {len(sends.failed)} records failed, sending them again", file=sys.stderr)
        pending = sends.failed
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", help="default: the 'topic' file of --profile-dir")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile-dir", type=Path, help="the mounted <name>-client-profile ConfigMap")
    source.add_argument("--profile", type=Path, help="JSON from `durabletopic client-config --format json`")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument(
        "--max-rounds", type=int, default=3, help="send rounds for failed records (default 3)"
    )
    args = parser.parse_args(argv)

    try:
        topic = topic_from(args)
        settings = load_profile(args.profile_dir, args.profile, "producer")
        producer = Producer({**settings, "bootstrap.servers": args.bootstrap_servers})
    except (OSError, ValueError, KafkaException) as error:
        print(f"producer: cannot start: {error}", file=sys.stderr)
        return 2
    records = {str(n).encode(): json.dumps({"n": n}).encode() for n in range(args.messages)}
    failed = send_all(producer, topic, records, args.max_rounds)
    for key, why in list(failed.items())[:10]:
        print(f"not delivered: key {key.decode()}: {why}", file=sys.stderr)
    print(json.dumps({"topic": topic, "sent": len(records), "acknowledged": len(records) - len(failed)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
