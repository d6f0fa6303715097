"""The probe's consumer: the application that reads the probe's messages, in a process of its own.

It runs as ``python -m durabletopic.tools.probe_consumer`` with its settings as JSON on stdin (they may
hold credentials), so that the probe can lose it to a SIGKILL the way an application is lost, and start
another one in the same consumer group. It reports on stdout, one unbuffered line per event:

* ``R <n> <partition> <offset>``: a record of message ``n`` was handed to the application;
* ``P <n>``: the application processed message ``n``: the line is the processing's effect, written to
  the probe's store (:class:`durabletopic.tools.probe.Probe`), which keeps it even if this process dies
  on the next instruction.

Two ways of consuming:

* ``checked`` (the client profile): no auto commit; each batch is processed, then its offsets committed
  synchronously. A crash in the middle of a batch leaves the batch uncommitted: the next consumer of the
  group is handed it again, and the idempotent store absorbs what was processed twice.
* ``auto-commit``: ``enable.auto.commit=true`` with offsets stored as records are handed over, committed
  in the background every ``auto.commit.interval.ms``: offsets are committed before their records are
  processed. A crash in the middle of a batch, once the commit covers it, skips the batch's rest.

``crash_after`` SIGKILLs the process in the middle of a batch: half way through the first batch (of two
records or more) that starts once it has processed that many messages; in ``auto-commit`` mode it first waits (at most ``commit_wait_s``) until
the background commit covers the batch, the moment a slow batch gives in production.

It stops at the end of the topic: once its position reaches, on every partition, the end offset it read
when it started (the producer has finished by then), or at ``timeout_s``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

ConsumerMode = Literal["checked", "auto-commit"]
CONSUMER_MODES: Final[tuple[ConsumerMode, ...]] = ("checked", "auto-commit")

AUTO_COMMIT_INTERVAL_MS: Final = 100
SESSION_TIMEOUT_MS: Final = 6000  # the broker's default group.min.session.timeout.ms
_STDOUT: Final = 1


@dataclass(frozen=True)
class ConsumerSettings:
    bootstrap_servers: str
    topic: str
    group_id: str
    run_id: str
    messages: int
    mode: ConsumerMode = "checked"
    crash_after: int | None = None
    batch_size: int = 1000
    processing_ms: float = 0.0
    timeout_s: float = 120.0
    commit_wait_s: float = 10.0
    client_config: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "client_config": dict(self.client_config)})

    @classmethod
    def from_json(cls, text: str) -> ConsumerSettings:
        return cls(**json.loads(text))


def consumer_config(settings: ConsumerSettings) -> dict[str, Any]:
    from durabletopic.core import clientprofile

    conf: dict[str, Any] = {
        **settings.client_config,
        "bootstrap.servers": settings.bootstrap_servers,
        **clientprofile.settings("consumer"),
        "group.id": settings.group_id,
        "allow.auto.create.topics": "false",
        # The group's smallest session: a consumer that died gives its partitions up in seconds.
        "session.timeout.ms": str(SESSION_TIMEOUT_MS),
    }
    if settings.mode == "auto-commit":
        conf["enable.auto.commit"] = "true"
        conf["enable.auto.offset.store"] = "true"
        conf["auto.commit.interval.ms"] = str(AUTO_COMMIT_INTERVAL_MS)
    return conf


def message_number(value: bytes | None, run_id: bytes, limit: int) -> int:
    """The number of one of this run's messages (value ``<run id> <number>``), or -1."""
    if not value:
        return -1
    prefix, _, number = value.partition(b" ")
    if prefix != run_id:
        return -1
    try:
        n = int(number)
    except ValueError:
        return -1
    return n if 0 <= n < limit else -1


class _Application:
    def __init__(self, settings: ConsumerSettings) -> None:
        from confluent_kafka import Consumer

        self.settings = settings
        self.consumer = Consumer(consumer_config(settings))
        self.processed = 0
        self.run_id = settings.run_id.encode()

    def run(self) -> int:
        from confluent_kafka import KafkaError, TopicPartition

        settings = self.settings
        deadline = time.monotonic() + settings.timeout_s
        ends = self._end_offsets(deadline)
        self.consumer.subscribe([settings.topic])
        try:
            while time.monotonic() < deadline and not self._at_end(ends, TopicPartition):
                batch = self.consumer.consume(num_messages=settings.batch_size, timeout=0.5)
                records = []
                for msg in batch:
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            print(f"consumer error: {err.str()}", file=sys.stderr)
                        continue
                    n = message_number(msg.value(), self.run_id, settings.messages)
                    if n >= 0:
                        records.append((n, msg))
                        _emit(f"R {n} {msg.partition()} {msg.offset()}")
                crash_at = self._crash_point(len(records))
                for index, (n, msg) in enumerate(records):
                    self._process(n)
                    if index == crash_at:
                        self._crash(msg, TopicPartition)
                if batch and settings.mode == "checked":
                    self.consumer.commit(asynchronous=False)  # after processing, never before
        finally:
            self.consumer.close()
        return 0

    def _process(self, n: int) -> None:
        if self.settings.processing_ms > 0:
            time.sleep(self.settings.processing_ms / 1000)
        _emit(f"P {n}")
        self.processed += 1

    def _crash_point(self, records: int) -> int:
        """The index of a batch's record after which the process dies: half way through the first batch
        of two records or more once ``crash_after`` messages are processed; -1 for never."""
        crash_after = self.settings.crash_after
        if crash_after is None or self.processed < crash_after or records < 2:
            return -1
        return records // 2 - 1

    def _crash(self, msg: Any, topic_partition: Any) -> None:
        if self.settings.mode == "auto-commit":
            # The batch's offsets were stored when it was handed over; wait for the commit to carry them.
            wanted = msg.offset() + 1
            until = time.monotonic() + self.settings.commit_wait_s
            while time.monotonic() < until:
                committed = self.consumer.committed([topic_partition(msg.topic(), msg.partition())], 5)
                if committed and committed[0].offset > wanted:
                    break
                time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGKILL)

    def _end_offsets(self, deadline: float) -> dict[int, int]:
        from confluent_kafka import KafkaException, TopicPartition

        while True:
            try:
                metadata = self.consumer.list_topics(self.settings.topic, timeout=10)
                partitions = sorted(metadata.topics[self.settings.topic].partitions)
                return {
                    p: self.consumer.get_watermark_offsets(
                        TopicPartition(self.settings.topic, p), timeout=10, cached=False
                    )[1]
                    for p in partitions
                }
            except (KafkaException, KeyError, TypeError) as error:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"cannot read the end offsets of {self.settings.topic}: {error}"
                    ) from error
                time.sleep(0.5)

    def _at_end(self, ends: Mapping[int, int], topic_partition: Any) -> bool:
        if not self.consumer.assignment():
            return False
        wanted = [topic_partition(self.settings.topic, p) for p, end in ends.items() if end > 0]
        positions = self.consumer.position(wanted)
        unread = [tp for tp in positions if tp.offset < 0]
        if unread:  # nothing fetched there yet by this process: the group's commit says where it stands
            positions = [tp for tp in positions if tp.offset >= 0] + self.consumer.committed(unread, 10)
        return all(tp.offset >= ends[tp.partition] for tp in positions)


def _emit(line: str) -> None:
    os.write(_STDOUT, (line + "\n").encode())


def main() -> int:
    settings = ConsumerSettings.from_json(sys.stdin.read())
    return _Application(settings).run()


if __name__ == "__main__":
    sys.exit(main())
