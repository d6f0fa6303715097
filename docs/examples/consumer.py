#!/usr/bin/env python3
"""A consumer that loses nothing and does nothing twice: commit after processing, process by key once.

    python consumer.py --bootstrap-servers HOST:PORT --topic orders --group billing \\
        --profile-dir /etc/kafka-profile --store processed.txt --expect 1000

The profile (enable.auto.commit=false, auto.offset.reset=earliest, isolation.level=read_committed)
comes from the mounted ``<name>-client-profile`` ConfigMap (``consumer.json``) or from a JSON file
written by ``durabletopic client-config TOPIC --role consumer --format json``. It needs only
confluent-kafka.

Offsets are committed only after the records before them are processed, so a crash means records are
read again, never skipped. Reading again is harmless because processing is idempotent by key: the keys
already processed are kept in --store (one per line; a real application keeps them in its database,
in the same transaction as the work, e.g. a unique key), and a key found there is skipped.

It stops after --expect records were processed, or after --idle-timeout seconds without a new record,
and prints {"processed": ..., "duplicates_skipped": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, KafkaException


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


class KeyStore:
    """The keys processed so far, in a file: the idempotence of the processing."""

    def __init__(self, path: Path) -> None:
        self.keys = set(path.read_text().split()) if path.exists() else set()
        self.file: TextIO = path.open("a")

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def add(self, key: str) -> None:
        self.keys.add(key)
        self.file.write(key + "\n")

    def sync(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def process(value: bytes) -> None:
    """The application's work for one record (here: check that it is what the producer wrote)."""
    json.loads(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", help="default: the 'topic' file of --profile-dir")
    parser.add_argument("--group", required=True, help="the consumer group id")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile-dir", type=Path, help="the mounted <name>-client-profile ConfigMap")
    source.add_argument("--profile", type=Path, help="JSON from `durabletopic client-config --format json`")
    parser.add_argument("--store", type=Path, required=True, help="file of the keys processed so far")
    parser.add_argument("--expect", type=int, default=0, help="stop after this many records were processed")
    parser.add_argument(
        "--idle-timeout", type=float, default=10.0, help="stop after this long without a record"
    )
    args = parser.parse_args(argv)

    try:
        topic = topic_from(args)
        settings = load_profile(args.profile_dir, args.profile, "consumer")
        consumer = Consumer({**settings, "bootstrap.servers": args.bootstrap_servers, "group.id": args.group})
    except (OSError, ValueError, KafkaException) as error:
        print(f"consumer: cannot start: {error}", file=sys.stderr)
        return 2
    store = KeyStore(args.store)
    processed = skipped = 0
    consumer.subscribe([topic])
    last_record = time.monotonic()
    try:
        while not (args.expect and processed >= args.expect):
            if time.monotonic() - last_record > args.idle_timeout:
                break
            batch = consumer.consume(num_messages=500, timeout=1.0)
            records = 0
            for msg in batch:
                problem = msg.error()
                if problem is not None:
                    if problem.code() != KafkaError._PARTITION_EOF:
                        print(f"consumer error: {problem.str()}", file=sys.stderr)
                    continue
                records += 1
                last_record = time.monotonic()
                key = (msg.key() or b"").decode()
                if key in store:
                    skipped += 1  # read again (a redelivery, or the producer's retry): already done
                    continue
                process(msg.value() or b"")
                store.add(key)
                processed += 1
            if records:
                store.sync()  # the work is durable first ...
                consumer.commit(asynchronous=False)  # ... then the offsets say it is done
    finally:
        store.close()
        consumer.close()
    print(json.dumps({"topic": topic, "processed": processed, "duplicates_skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
