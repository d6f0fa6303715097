"""The probe's bookkeeping: what the application believed sent, what Kafka kept, what the consumer did.

The consumer's events are fed as the consumer process writes them (``R n partition offset`` for a record
handed over, ``P n`` for a processed message); no server is involved.
"""

from __future__ import annotations

import io

import pytest
from confluent_kafka import Producer

from durabletopic.tools.probe import ACKED, FAILED, Probe, ProbeConfig, producer_config, verdict
from durabletopic.tools.probe_consumer import ConsumerSettings, consumer_config, message_number

NOWHERE = "127.0.0.1:1"


def _probe(n: int, **config: object) -> Probe:
    return Probe(ProbeConfig(bootstrap_servers=NOWHERE, topic="t", messages=n, **config))  # type: ignore[arg-type]


def _acknowledge(probe: Probe, acks: list[tuple[int, int, int]]) -> None:
    """The producer acknowledged ``acks`` (number, partition, offset), in that order; the rest failed."""
    for number, partition, offset in acks:
        probe.attempts[number] = 1
        probe.status[number] = ACKED
        probe.ack_partition[number] = partition
        probe.ack_offset[number] = offset
        probe.ack_order.append(number)
    for number in range(len(probe.status)):
        probe.attempts[number] = max(1, probe.attempts[number])
        if probe.status[number] != ACKED:
            probe.status[number] = FAILED


def _consume(probe: Probe, events: list[str]) -> None:
    probe._read_events(io.BytesIO("".join(f"{e}\n" for e in events).encode()))
    probe._tally()


def _read_and_process(reads: list[tuple[int, int, int]]) -> list[str]:
    return [e for n, p, o in reads for e in (f"R {n} {p} {o}", f"P {n}")]


def test_a_clean_run() -> None:
    probe = _probe(4)
    _acknowledge(probe, [(0, 0, 0), (1, 1, 0), (2, 0, 1), (3, 1, 1)])
    _consume(probe, _read_and_process([(0, 0, 0), (2, 0, 1), (1, 1, 0), (3, 1, 1)]))
    report = probe.report
    assert (report.acknowledged, report.believed_sent, report.read, report.processed) == (4, 4, 4, 4)
    assert (report.missing, report.never_arrived, report.not_processed, report.out_of_order) == (0, 0, 0, 0)
    assert report.ok
    assert verdict(report) == ["OK: all 4 messages believed sent were read and processed once"]


def test_missing_and_out_of_order_are_counted() -> None:
    probe = _probe(4)
    _acknowledge(probe, [(0, 0, 0), (1, 0, 1), (2, 0, 2)])
    _consume(probe, _read_and_process([(1, 0, 1), (0, 0, 0)]))  # 2 never read, 0 after 1
    report = probe.report
    assert (report.missing, report.never_arrived, report.out_of_order, report.failed) == (1, 1, 1, 1)
    assert not report.ok
    assert verdict(report) == ["LOST: 1 acknowledged messages were never read"]


def test_an_early_unacknowledged_copy_is_not_out_of_order() -> None:
    # Message 0 timed out in flight but was written at offset 0; re-sent, it was acknowledged at 2.
    probe = _probe(2)
    _acknowledge(probe, [(1, 0, 1), (0, 0, 2)])
    _consume(probe, _read_and_process([(0, 0, 0), (1, 0, 1), (0, 0, 2)]))
    report = probe.report
    assert report.duplicates_seen == 1
    assert report.absorbed == 1  # the checked consumer's store upserts by key
    assert report.duplicates_delivered == 0
    assert report.out_of_order == 0
    assert report.ok


def test_fire_and_forget_believes_sent_what_the_client_accepted() -> None:
    probe = _probe(4, producer="fire-and-forget", acks="1")
    _acknowledge(probe, [(0, 0, 0), (1, 0, 1)])  # 2 and 3 failed in the callback nobody reads
    _consume(probe, _read_and_process([(0, 0, 0), (1, 0, 1)]))
    report = probe.report
    assert (report.acknowledged, report.believed_sent, report.missing, report.never_arrived) == (2, 4, 0, 2)
    assert not report.ok
    assert verdict(report) == ["LOST: 2 messages the application believed sent never arrived"]
    assert probe.max_retries == 0


def test_a_send_refused_at_once_is_not_believed_sent() -> None:
    probe = _probe(2, producer="fire-and-forget", acks="1")
    _acknowledge(probe, [(0, 0, 0)])
    probe.refused[1] = 1
    _consume(probe, _read_and_process([(0, 0, 0)]))
    assert (probe.report.believed_sent, probe.report.never_arrived) == (1, 0)


def test_auto_commit_consumer_read_but_never_processed() -> None:
    probe = _probe(4, consumer="auto-commit")
    _acknowledge(probe, [(n, 0, n) for n in range(4)])
    # The first consumer was handed 0..3, processed 0 and 1, died; the commit had passed 3.
    _consume(probe, [*(f"R {n} 0 {n}" for n in range(4)), "P 0", "P 1"])
    report = probe.report
    assert (report.read, report.processed, report.not_processed, report.missing) == (4, 2, 2, 0)
    assert verdict(report) == ["NOT PROCESSED: 2 messages were committed but never processed"]


def test_a_redelivery_is_a_second_effect_behind_auto_commit_and_absorbed_behind_the_checked_consumer() -> (
    None
):
    events = [*_read_and_process([(0, 0, 0), (1, 0, 1)]), *_read_and_process([(1, 0, 1)])]
    weak, safe = _probe(2, consumer="auto-commit"), _probe(2)
    for probe in (weak, safe):
        _acknowledge(probe, [(0, 0, 0), (1, 0, 1)])
        _consume(probe, events)
        assert probe.report.duplicates_seen == 1
    assert (weak.report.duplicates_delivered, weak.report.absorbed, weak.report.ok) == (1, 0, False)
    assert (safe.report.duplicates_delivered, safe.report.absorbed, safe.report.ok) == (0, 1, True)
    assert verdict(weak.report) == ["DUPLICATED: 1 messages were processed twice"]


@pytest.mark.parametrize(("field", "value"), [("producer", "careless"), ("consumer", "sloppy")])
def test_an_unknown_client_mode_is_refused(field: str, value: str) -> None:
    with pytest.raises(Exception, match=f"the {field} must be one of"):
        _probe(1, **{field: value})


def test_the_fire_and_forget_producer_has_no_retries_and_no_idempotence() -> None:
    conf = producer_config(ProbeConfig(NOWHERE, "t", 1, acks="1", producer="fire-and-forget"))
    assert (conf["acks"], conf["retries"], conf["enable.idempotence"]) == ("1", "0", "false")
    Producer(conf).flush(0)  # librdkafka accepts the combination


def test_the_consumer_modes_settings() -> None:
    checked = consumer_config(ConsumerSettings(NOWHERE, "t", "g", "run", 10))
    assert checked["enable.auto.commit"] == "false"
    weak = consumer_config(ConsumerSettings(NOWHERE, "t", "g", "run", 10, mode="auto-commit"))
    assert (weak["enable.auto.commit"], weak["enable.auto.offset.store"]) == ("true", "true")


def test_the_consumer_settings_travel_as_json() -> None:
    settings = ConsumerSettings(
        NOWHERE, "t", "g", "run", 10, mode="auto-commit", crash_after=3, client_config={"a": "b"}
    )
    assert ConsumerSettings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"abc 3", 3), (b"abc 10", -1), (b"xyz 3", -1), (b"abc x", -1), (None, -1), (b"", -1)],
)
def test_message_number(value: bytes | None, expected: int) -> None:
    assert message_number(value, b"abc", 10) == expected
