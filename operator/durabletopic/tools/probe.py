"""The end-to-end durability probe: is every acknowledged message still readable after a fault?

A producer with the client profile (:mod:`durabletopic.clientprofile`) writes N numbered messages (key:
the number as a string; value: the run id and the number) and checks every send in an asynchronous
delivery callback, recording the (partition, offset) of each acknowledgement, or the error. A send that
failed after the client's own retries is produced again by the probe, up to ``max_retries`` times, as an
application should; one that still fails is counted ``failed``. A fault command (for example one that
SIGKILLs a broker) runs once half of the messages are sent, a recover command once three quarters are.

Then a consumer with the profile (own group, no auto commit, read_committed, earliest) reads the topic
until it has seen every acknowledged message, or until the timeout. It processes idempotently by key: a
key seen before is counted in ``duplicates_seen`` and not handed to the application again; offsets are
committed after each processed batch.

The report: ``sent`` (distinct messages handed to the producer), ``acknowledged``, ``failed``,
``retried`` (sends the probe repeated), ``read`` (distinct messages of this run read), ``missing``
(acknowledged, never read), ``duplicates_seen`` (records of a message read before),
``duplicates_delivered`` (messages the application got twice: 0 unless the deduplication is broken),
``out_of_order`` (per partition, acknowledged messages the consumer read before one acknowledged earlier
on that partition; only the acknowledged copy counts, found by its offset, so with ``acks=0`` there is
nothing to compare), ``failed_but_read`` (an error reached the producer, yet the message was written),
the delivery errors by name, and the times.

Memory stays small for large N: per message a few bytes in ``bytearray`` and ``array`` columns.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from durabletopic.adapters.kafka.clientconfig import LIBRDKAFKA_LOGGER
from durabletopic.core import clientprofile

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger(LIBRDKAFKA_LOGGER)

PENDING: Final = 0
ACKED: Final = 1
FAILED: Final = 2

_CONSUME_BATCH: Final = 1000


class ProbeError(RuntimeError):
    """The probe cannot run (no cluster, no topic, a bad setting); the message says why."""


@dataclass(frozen=True)
class ProbeConfig:
    bootstrap_servers: str
    topic: str
    messages: int
    acks: str = "all"
    fault_cmd: str | None = None
    recover_cmd: str | None = None
    timeout_s: float = 120.0
    delivery_timeout_s: float = 30.0
    max_retries: int = 3
    rate: float = 0.0
    client_config: Mapping[str, str] = field(default_factory=dict)


@dataclass
class CommandRun:
    command: str
    at_sent: int
    exit_code: int | None = None
    duration_s: float = 0.0
    output_tail: str = ""


@dataclass
class ProbeReport:
    topic: str
    partitions: int
    acks: str
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    retried: int = 0
    read: int = 0
    missing: int = 0
    duplicates_seen: int = 0
    duplicates_delivered: int = 0
    out_of_order: int = 0
    failed_but_read: int = 0
    delivery_errors: dict[str, int] = field(default_factory=dict)
    consumer_errors: dict[str, int] = field(default_factory=dict)
    fatal_error: str | None = None
    fault: CommandRun | None = None
    recover: CommandRun | None = None
    produce_s: float = 0.0
    consume_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.missing == 0

    @property
    def commands_failed(self) -> list[CommandRun]:
        return [c for c in (self.fault, self.recover) if c is not None and c.exit_code != 0]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def producer_config(config: ProbeConfig) -> dict[str, Any]:
    """The profile's producer settings, bounded in time for a probe, with the acks asked for."""
    conf: dict[str, Any] = {
        **config.client_config,
        "bootstrap.servers": config.bootstrap_servers,
        **clientprofile.settings("producer"),
        # One attempt (with the client's own retries) is bounded by this; the probe then re-sends.
        "delivery.timeout.ms": str(max(1, round(config.delivery_timeout_s * 1000))),
        "acks": config.acks,
        "allow.auto.create.topics": "false",
        "logger": librdkafka_log,
    }
    if config.acks != "all":
        # librdkafka refuses idempotence without acks=all: this is the unsafe producer, on purpose.
        conf["enable.idempotence"] = "false"
    return conf


def consumer_config(config: ProbeConfig, group_id: str) -> dict[str, Any]:
    return {
        **config.client_config,
        "bootstrap.servers": config.bootstrap_servers,
        **clientprofile.settings("consumer"),
        "group.id": group_id,
        "allow.auto.create.topics": "false",
        "logger": librdkafka_log,
    }


class _Commands(threading.Thread):
    """Runs the fault command when told, then the recover command when told (the latter always, once
    the fault command has run, so that what the fault broke is put right)."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(name="probe-commands", daemon=True)
        self.config = config
        self.fault_due = threading.Event()
        self.recover_due = threading.Event()
        self.cancelled = False
        self.fault: CommandRun | None = None
        self.recover: CommandRun | None = None
        self._sent: Callable[[], int] = lambda: 0

    def start_with(self, sent: Callable[[], int]) -> None:
        self._sent = sent
        self.start()

    def run(self) -> None:
        self.fault_due.wait()
        if self.cancelled:
            return
        if self.config.fault_cmd:
            self.fault = self._run(self.config.fault_cmd)
        self.recover_due.wait()
        if self.config.recover_cmd:
            self.recover = self._run(self.config.recover_cmd)

    def _run(self, command: str) -> CommandRun:
        run = CommandRun(command=command, at_sent=self._sent())
        began = time.monotonic()
        try:
            result = subprocess.run(
                command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=self.config.timeout_s,
                check=False,
            )
            run.exit_code = result.returncode
            run.output_tail = result.stdout.decode(errors="replace").strip()[-500:]
        except subprocess.TimeoutExpired:
            run.exit_code = None
            run.output_tail = f"timed out after {self.config.timeout_s:g} s"
        except OSError as error:
            run.exit_code = None
            run.output_tail = str(error)
        run.duration_s = round(time.monotonic() - began, 3)
        log.info("probe: %r exited with %s after %.1f s", command, run.exit_code, run.duration_s)
        return run


class Probe:
    """One probe run. ``run()`` returns the report; it raises ProbeError when it cannot run."""

    def __init__(self, config: ProbeConfig) -> None:
        if config.messages < 1:
            raise ProbeError("--messages must be at least 1")
        if config.acks not in ("all", "1", "0"):
            raise ProbeError(f"acks must be all, 1 or 0, not {config.acks!r}")
        self.config = config
        self.run_id = secrets.token_hex(4)
        n = config.messages
        self.status = bytearray(n)
        self.attempts = bytearray(n)
        self.ack_partition = array("i", [-1]) * n
        self.ack_offset = array("q", [-1]) * n
        self.ack_order = array("i")
        self.seen = bytearray(n)
        self.delivered = bytearray(n)  # the application's own count, saturating at 255
        self.acked_copy_read_at = array("q", [-1]) * n
        self.retry_queue: deque[int] = deque()
        self.pending = 0
        self.stopping = False
        self.report = ProbeReport(topic=config.topic, partitions=0, acks=config.acks)
        self._errors: Counter[str] = Counter()
        self._consumer_errors: Counter[str] = Counter()

    # ------------------------------------------------------------------ the whole run

    def run(self) -> ProbeReport:
        from confluent_kafka import KafkaException, Producer

        began = time.monotonic()
        try:
            producer = Producer(producer_config(self.config))
        except (KafkaException, ValueError, TypeError) as error:
            raise ProbeError(f"cannot create the producer: {_describe(error)}") from error
        self.report.partitions = self._partitions(producer)
        commands = _Commands(self.config)
        commands.start_with(lambda: self.report.sent)
        try:
            self._produce(producer, commands)
        finally:
            if not commands.fault_due.is_set():
                commands.cancelled = True  # never got half way: break nothing
            commands.fault_due.set()
            commands.recover_due.set()
        self.report.produce_s = round(time.monotonic() - began, 3)
        # What the fault broke is put right before anything is read.
        commands.join(self.config.timeout_s * 2 + 5)
        self.report.fault, self.report.recover = commands.fault, commands.recover
        consume_began = time.monotonic()
        self._consume()
        self.report.consume_s = round(time.monotonic() - consume_began, 3)
        self._tally()
        self.report.elapsed_s = round(time.monotonic() - began, 3)
        return self.report

    def _partitions(self, producer: Any) -> int:
        from confluent_kafka import KafkaException

        try:
            metadata = producer.list_topics(self.config.topic, timeout=self.config.timeout_s)
        except KafkaException as error:
            raise ProbeError(
                f"cannot reach Kafka at {self.config.bootstrap_servers}: {_describe(error)}"
            ) from error
        topic = metadata.topics.get(self.config.topic)
        if topic is None or topic.error is not None:
            why = topic.error.str() if topic is not None and topic.error is not None else "not in metadata"
            raise ProbeError(f"topic {self.config.topic!r} is not usable: {why} (the probe creates no topic)")
        return len(topic.partitions)

    # ------------------------------------------------------------------ producing

    def _on_delivery(self, err: Any, msg: Any) -> None:
        n = int(msg.key())
        if self.status[n] != PENDING:
            return
        if err is None:
            self.status[n] = ACKED
            self.ack_partition[n] = msg.partition()
            self.ack_offset[n] = msg.offset()
            self.ack_order.append(n)
            self.pending -= 1
            return
        self._errors[err.name()] += 1
        if err.fatal() and self.report.fatal_error is None:
            self.report.fatal_error = err.str()
            self.stopping = True
        if self.stopping or self.attempts[n] > self.config.max_retries:
            self.status[n] = FAILED
            self.pending -= 1
        else:
            self.retry_queue.append(n)

    def _send(self, producer: Any, n: int) -> None:
        from confluent_kafka import KafkaException

        self.attempts[n] = min(255, self.attempts[n] + 1)
        key = str(n).encode()
        value = f"{self.run_id} {n}".encode()
        while True:
            try:
                producer.produce(self.config.topic, key=key, value=value, on_delivery=self._on_delivery)
                return
            except BufferError:
                producer.poll(0.05)  # the local queue is full: serve delivery reports, then again
            except KafkaException as error:
                self._errors[error.args[0].name() if error.args else "KafkaException"] += 1
                if self.report.fatal_error is None and error.args and error.args[0].fatal():
                    self.report.fatal_error = error.args[0].str()
                    self.stopping = True
                self.status[n] = FAILED
                self.pending -= 1
                return

    def _drain_retries(self, producer: Any) -> None:
        while self.retry_queue:
            n = self.retry_queue.popleft()
            if self.stopping:
                self.status[n] = FAILED
                self.pending -= 1
                continue
            self.report.retried += 1
            self._send(producer, n)

    def _produce(self, producer: Any, commands: _Commands) -> None:
        config = self.config
        n_total = config.messages
        fault_at = max(1, n_total // 2)
        recover_at = max(1, (n_total * 3) // 4)
        began = time.monotonic()
        for n in range(n_total):
            if self.stopping:
                break
            if config.rate > 0:
                due = began + n / config.rate
                while (wait := due - time.monotonic()) > 0:
                    producer.poll(min(wait, 0.05))
            self.pending += 1
            self.report.sent += 1
            self._send(producer, n)
            producer.poll(0)
            self._drain_retries(producer)
            if self.report.sent == fault_at:
                commands.fault_due.set()
            if self.report.sent == recover_at:
                commands.recover_due.set()
        deadline = time.monotonic() + config.timeout_s
        while (self.pending > 0 or self.retry_queue) and time.monotonic() < deadline:
            self._drain_retries(producer)
            producer.poll(0.1)
        if self.pending > 0:
            # Out of time: what is still queued or in flight counts as failed.
            self.stopping = True
            producer.purge(in_queue=True, in_flight=True)
            producer.flush(5)
            self._drain_retries(producer)
            for n in range(n_total):
                if self.status[n] == PENDING and self.attempts[n]:
                    self.status[n] = FAILED
            self.pending = 0
        producer.flush(0)

    # ------------------------------------------------------------------ consuming

    def _consume(self) -> None:
        from confluent_kafka import Consumer, KafkaError, KafkaException

        config = self.config
        need = self.status.count(ACKED)
        try:
            consumer = Consumer(consumer_config(config, f"durabletopic-probe-{self.run_id}"))
        except (KafkaException, ValueError, TypeError) as error:
            raise ProbeError(f"cannot create the consumer: {_describe(error)}") from error
        consumer.subscribe([config.topic])
        deadline = time.monotonic() + config.timeout_s
        seen_acked = 0
        read_seq = 0
        run_id = self.run_id.encode()
        try:
            while seen_acked < need and time.monotonic() < deadline:
                batch = consumer.consume(num_messages=_CONSUME_BATCH, timeout=0.5)
                records = 0
                for msg in batch:
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            self._consumer_errors[err.name()] += 1
                        continue
                    records += 1
                    n = _message_number(msg.value(), run_id, len(self.seen))
                    if n < 0:
                        continue  # another run's message, or not a probe message
                    read_seq += 1
                    if self.ack_partition[n] == msg.partition() and self.ack_offset[n] == msg.offset():
                        self.acked_copy_read_at[n] = read_seq
                    if self.seen[n]:
                        self.report.duplicates_seen += 1
                        continue
                    self.seen[n] = 1
                    self._process(n)
                    if self.status[n] == ACKED:
                        seen_acked += 1
                if records:
                    try:
                        consumer.commit(asynchronous=False)  # after processing, never before
                    except KafkaException as error:
                        self._consumer_errors[f"commit:{_describe(error)}"] += 1
        finally:
            consumer.close()

    def _process(self, n: int) -> None:
        """The application: it counts what it was handed (a real one would do its work here)."""
        if self.delivered[n] < 255:
            self.delivered[n] += 1

    # ------------------------------------------------------------------ the report

    def _tally(self) -> None:
        report = self.report
        report.acknowledged = self.status.count(ACKED)
        report.failed = self.status.count(FAILED)
        report.read = len(self.seen) - self.seen.count(0)
        report.missing = sum(
            1 for n in range(len(self.status)) if self.status[n] == ACKED and not self.seen[n]
        )
        report.failed_but_read = sum(
            1 for n in range(len(self.status)) if self.status[n] == FAILED and self.seen[n]
        )
        report.duplicates_delivered = sum(d - 1 for d in self.delivered if d > 1)
        last_read: dict[int, int] = {}
        out_of_order = 0
        for n in self.ack_order:
            at = self.acked_copy_read_at[n]
            if at < 0:
                continue
            partition = self.ack_partition[n]
            if at < last_read.get(partition, -1):
                out_of_order += 1
            else:
                last_read[partition] = at
        report.out_of_order = out_of_order
        report.delivery_errors = dict(self._errors)
        report.consumer_errors = dict(self._consumer_errors)


def _message_number(value: bytes | None, run_id: bytes, limit: int) -> int:
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


def _describe(error: BaseException) -> str:
    if error.args and hasattr(error.args[0], "str"):
        return str(error.args[0].str())
    return str(error) or type(error).__name__


def render_table(report: ProbeReport) -> str:
    rows: list[tuple[str, str]] = [
        ("topic", f"{report.topic} ({report.partitions} partitions, acks={report.acks})"),
        ("sent", str(report.sent)),
        ("acknowledged", str(report.acknowledged)),
        ("failed", str(report.failed)),
        ("retried", str(report.retried)),
        ("read", str(report.read)),
        ("missing", str(report.missing)),
        ("duplicates_seen", str(report.duplicates_seen)),
        ("duplicates_delivered", str(report.duplicates_delivered)),
        ("out_of_order", str(report.out_of_order)),
        ("failed_but_read", str(report.failed_but_read)),
    ]
    if report.delivery_errors:
        rows.append(("delivery_errors", _counts(report.delivery_errors)))
    if report.consumer_errors:
        rows.append(("consumer_errors", _counts(report.consumer_errors)))
    if report.fatal_error:
        rows.append(("fatal_error", report.fatal_error))
    for name, command in (("fault", report.fault), ("recover", report.recover)):
        if command is not None:
            rows.append(
                (
                    name,
                    f"{command.command!r} at {command.at_sent} sent: exit {command.exit_code}, "
                    f"{command.duration_s:.1f} s",
                )
            )
    rate = report.acknowledged / report.produce_s if report.produce_s > 0 else 0.0
    rows.append(
        (
            "elapsed",
            f"{report.elapsed_s:.1f} s (produce {report.produce_s:.1f} s, {rate:,.0f} acks/s; "
            f"consume {report.consume_s:.1f} s)",
        )
    )
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    if report.ok:
        lines.append(f"OK: all {report.acknowledged} acknowledged messages were read")
    else:
        lines.append(f"LOST: {report.missing} acknowledged messages were never read")
    return "\n".join(lines)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items()))
