"""The end-to-end durability probe: is every message the application believed sent, processed once?

A producer writes N numbered messages (key: the number as a string; value: the run id and the number).
Two producers:

* ``checked`` (the client profile, :mod:`durabletopic.core.clientprofile`): every send is checked in an
  asynchronous delivery callback, which records the (partition, offset) of each acknowledgement or the
  error; a send that failed after the client's own retries is produced again by the probe, up to
  ``max_retries`` times, as an application should; one that still fails is counted ``failed``. The
  application believes sent what was acknowledged.
* ``fire-and-forget``: ``retries=0``, no idempotence, nothing re-sent: the application believes sent
  every message the client accepted (the callback is still recorded, for the report only).

A fault command (for example one that SIGKILLs a broker) runs once half of the messages are sent, a
recover command once three quarters are (after the fault command has finished).

Then the application consumes the topic in a process of its own (:mod:`durabletopic.tools.probe_consumer`,
``checked`` or ``auto-commit``), which may be SIGKILLed in the middle of a batch; a second one in the same
group then finishes. Each processed message is written to the probe's store: with the ``checked``
consumer the store upserts by key (idempotent processing: a redelivered message is counted in
``absorbed`` and has no second effect), with ``auto-commit`` it appends (a redelivery is a second
effect, counted in ``duplicates_delivered``).

The report: ``sent`` (distinct messages handed to the producer), ``acknowledged``, ``failed``,
``retried`` (sends the probe repeated), ``believed_sent``, ``read`` (distinct messages of this run
read), ``missing`` (acknowledged, never read: lost by Kafka), ``never_arrived`` (believed sent, never
read: lost as the application sees it), ``processed``, ``not_processed`` (read and never processed: the
consumer committed past them), ``duplicates_seen`` (records of a message read before),
``duplicates_delivered``, ``absorbed``, ``out_of_order`` (per partition, acknowledged messages read
before one acknowledged earlier on that partition; only the acknowledged copy counts, found by its
offset, so with ``acks=0`` there is nothing to compare), ``failed_but_read`` (an error reached the
producer, yet the message was written), the delivery errors by name, and the times.

Memory stays small for large N: per message a few bytes in ``bytearray`` and ``array`` columns.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Final, Literal

from durabletopic.adapters.kafka.clientconfig import LIBRDKAFKA_LOGGER
from durabletopic.core import clientprofile
from durabletopic.tools.probe_consumer import CONSUMER_MODES, ConsumerMode, ConsumerSettings

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger(LIBRDKAFKA_LOGGER)

PENDING: Final = 0
ACKED: Final = 1
FAILED: Final = 2

ProducerMode = Literal["checked", "fire-and-forget"]
PRODUCER_MODES: Final[tuple[ProducerMode, ...]] = ("checked", "fire-and-forget")


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
    producer: ProducerMode = "checked"
    consumer: ConsumerMode = "checked"
    consumer_crash_after: int | None = None
    consumer_batch: int = 1000
    processing_ms: float = 0.0
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
    producer: str = "checked"
    consumer: str = "checked"
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    retried: int = 0
    believed_sent: int = 0
    read: int = 0
    missing: int = 0
    never_arrived: int = 0
    processed: int = 0
    not_processed: int = 0
    duplicates_seen: int = 0
    duplicates_delivered: int = 0
    absorbed: int = 0
    consumer_crashes: int = 0
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
    def delivery_errors_total(self) -> int:
        return sum(self.delivery_errors.values())

    @property
    def ok(self) -> bool:
        """Nothing lost (by Kafka, by the producer or by the consumer) and nothing processed twice."""
        return not (self.missing or self.never_arrived or self.not_processed or self.duplicates_delivered)

    @property
    def commands_failed(self) -> list[CommandRun]:
        return [c for c in (self.fault, self.recover) if c is not None and c.exit_code != 0]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["delivery_errors_total"] = self.delivery_errors_total
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
    if config.producer == "fire-and-forget":
        conf["enable.idempotence"] = "false"
        conf["retries"] = "0"
    return conf


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
        if config.producer not in PRODUCER_MODES:
            raise ProbeError(
                f"the producer must be one of {', '.join(PRODUCER_MODES)}, not {config.producer!r}"
            )
        if config.consumer not in CONSUMER_MODES:
            raise ProbeError(
                f"the consumer must be one of {', '.join(CONSUMER_MODES)}, not {config.consumer!r}"
            )
        self.config = config
        # A fire-and-forget application re-sends nothing: it does not look at the outcome of a send.
        self.max_retries = 0 if config.producer == "fire-and-forget" else config.max_retries
        self.run_id = secrets.token_hex(4)
        n = config.messages
        self.status = bytearray(n)
        self.attempts = bytearray(n)
        self.refused = bytearray(n)  # produce() raised: the application was told at once
        self.ack_partition = array("i", [-1]) * n
        self.ack_offset = array("q", [-1]) * n
        self.ack_order = array("i")
        self.received = bytearray(n)  # records handed to the application, saturating at 255
        self.effects = bytearray(n)  # the store: effects of processing, saturating at 255
        self.acked_copy_read_at = array("q", [-1]) * n
        self.read_seq = 0
        self.retry_queue: deque[int] = deque()
        self.pending = 0
        self.stopping = False
        self.report = ProbeReport(
            topic=config.topic,
            partitions=0,
            acks=config.acks,
            producer=config.producer,
            consumer=config.consumer,
        )
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
        if self.stopping or self.attempts[n] > self.max_retries:
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
                self.refused[n] = 1
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
        """The application reads the topic to its end; when it crashes, a second one of the group finishes."""
        config = self.config
        settings = ConsumerSettings(
            bootstrap_servers=config.bootstrap_servers,
            topic=config.topic,
            group_id=f"durabletopic-probe-{self.run_id}",
            run_id=self.run_id,
            messages=config.messages,
            mode=config.consumer,
            crash_after=config.consumer_crash_after,
            batch_size=config.consumer_batch,
            processing_ms=config.processing_ms,
            timeout_s=config.timeout_s,
            client_config=config.client_config,
        )
        exit_code = self._run_consumer(settings)
        if exit_code == -signal.SIGKILL and config.consumer_crash_after is not None:
            self.report.consumer_crashes += 1
            exit_code = self._run_consumer(dataclasses.replace(settings, crash_after=None))
        if exit_code != 0:
            self._consumer_errors[f"consumer exited with {exit_code}"] += 1

    def _run_consumer(self, settings: ConsumerSettings) -> int:
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "durabletopic.tools.probe_consumer"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(settings.to_json().encode())
                process.stdin.close()
                self._read_events(process.stdout)
                exit_code = process.wait(timeout=settings.timeout_s + 30)
            except BaseException:
                process.kill()
                process.wait()
                raise
            stderr.seek(0)
            for line in stderr.read().decode(errors="replace").splitlines():
                if line.startswith("consumer error: "):
                    self._consumer_errors[line.removeprefix("consumer error: ")] += 1
                elif line.strip() and not line.startswith("%"):
                    log.warning("probe consumer: %s", line)
        return exit_code

    def _read_events(self, events: IO[bytes]) -> None:
        for line in events:
            kind, _, rest = line.decode().strip().partition(" ")
            if kind == "R":
                number, partition, offset = (int(x) for x in rest.split())
                self._received(number, partition, offset)
            elif kind == "P":
                self._store(int(rest))

    def _received(self, n: int, partition: int, offset: int) -> None:
        self.read_seq += 1
        if self.ack_partition[n] == partition and self.ack_offset[n] == offset:
            self.acked_copy_read_at[n] = self.read_seq
        if self.received[n]:
            self.report.duplicates_seen += 1
        if self.received[n] < 255:
            self.received[n] += 1

    def _store(self, n: int) -> None:
        """The application's store: upsert by key behind the checked consumer, append behind auto-commit."""
        if self.effects[n] and self.config.consumer == "checked":
            self.report.absorbed += 1
            return
        if self.effects[n] < 255:
            self.effects[n] += 1

    # ------------------------------------------------------------------ the report

    def _tally(self) -> None:
        report = self.report
        report.acknowledged = self.status.count(ACKED)
        report.failed = self.status.count(FAILED)
        believed = self._believed_sent()
        report.believed_sent = sum(believed)
        report.read = len(self.received) - self.received.count(0)
        report.missing = sum(
            1 for n in range(len(self.status)) if self.status[n] == ACKED and not self.received[n]
        )
        report.never_arrived = sum(1 for n in range(len(self.status)) if believed[n] and not self.received[n])
        report.failed_but_read = sum(
            1 for n in range(len(self.status)) if self.status[n] == FAILED and self.received[n]
        )
        report.processed = len(self.effects) - self.effects.count(0)
        report.not_processed = sum(
            1 for n in range(len(self.received)) if self.received[n] and not self.effects[n]
        )
        report.duplicates_delivered = sum(d - 1 for d in self.effects if d > 1)
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

    def _believed_sent(self) -> bytearray:
        """Per message, 1 when the application believes it sent: acknowledged, or (fire-and-forget)
        accepted by the client."""
        if self.config.producer == "fire-and-forget":
            return bytearray(
                1 if attempts and not refused else 0
                for attempts, refused in zip(self.attempts, self.refused, strict=True)
            )
        return bytearray(1 if status == ACKED else 0 for status in self.status)


def _describe(error: BaseException) -> str:
    if error.args and hasattr(error.args[0], "str"):
        return str(error.args[0].str())
    return str(error) or type(error).__name__


def render_table(report: ProbeReport) -> str:
    rows: list[tuple[str, str]] = [
        ("topic", f"{report.topic} ({report.partitions} partitions, acks={report.acks})"),
        ("clients", f"producer {report.producer}, consumer {report.consumer}"),
        ("sent", str(report.sent)),
        ("acknowledged", str(report.acknowledged)),
        ("failed", str(report.failed)),
        ("retried", str(report.retried)),
        ("believed_sent", str(report.believed_sent)),
        ("read", str(report.read)),
        ("missing", str(report.missing)),
        ("never_arrived", str(report.never_arrived)),
        ("processed", str(report.processed)),
        ("not_processed", str(report.not_processed)),
        ("duplicates_seen", str(report.duplicates_seen)),
        ("duplicates_delivered", str(report.duplicates_delivered)),
        ("absorbed", str(report.absorbed)),
        ("consumer_crashes", str(report.consumer_crashes)),
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
    lines += verdict(report)
    return "\n".join(lines)


def verdict(report: ProbeReport) -> list[str]:
    if report.ok:
        return [f"OK: all {report.believed_sent} messages believed sent were read and processed once"]
    found = []
    if report.missing:
        found.append(f"LOST: {report.missing} acknowledged messages were never read")
    if report.never_arrived > report.missing:
        found.append(f"LOST: {report.never_arrived} messages the application believed sent never arrived")
    if report.not_processed:
        found.append(f"NOT PROCESSED: {report.not_processed} messages were committed but never processed")
    if report.duplicates_delivered:
        found.append(f"DUPLICATED: {report.duplicates_delivered} messages were processed twice")
    return found


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items()))
