"""A pass takes every due object at once and makes a constant number of Kafka requests."""

from __future__ import annotations

import asyncio
import logging

import pytest

from durabletopic.core.configs import MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION
from durabletopic.loop.controller import next_sweep_start
from tests.unit.loop.conftest import Harness, until


async def test_a_burst_of_objects_is_one_pass_of_batched_requests(harness: Harness) -> None:
    refs = [harness.apply(f"orders-{i}") for i in range(200)]
    processed = await harness.step()
    assert sorted(map(str, processed)) == sorted(map(str, refs))
    assert harness.kafka.count("create_topics") == 1
    assert harness.kafka.count("describe_topics") == 2, "one read, one confirming read"
    assert harness.kafka.count("describe_cluster") == 1, "once per pass: the cluster's id and brokers"
    assert all(harness.ready(ref) for ref in refs)
    assert len(harness.kube.status_writes) == 200, "one status write per object"
    topic = harness.kafka.topics["orders-7"]
    assert topic.overrides == {MIN_INSYNC_REPLICAS: "2", UNCLEAN_LEADER_ELECTION: "false"}
    assert harness.controller.queue.keys() == []


async def test_duplicate_events_queue_an_object_once(harness: Harness) -> None:
    for _ in range(3):
        harness.apply("orders")
    assert len(harness.controller.queue) == 1
    await harness.settle()
    assert harness.kafka.count("create_topics") == 1


async def test_own_status_write_coming_back_is_not_queued(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    written = harness.status(ref)
    harness.event("MODIFIED", "orders", status=written)
    assert harness.controller.queue.keys() == []
    harness.event("MODIFIED", "orders", {"partitions": 6}, generation=2, status=written)
    assert harness.controller.queue.keys() == [ref]
    await harness.settle()
    assert len(harness.kafka.topics["orders"].replicas) == 6


async def test_idle_pass_writes_nothing(harness: Harness) -> None:
    refs = [harness.apply(f"t{i}") for i in range(20)]
    await harness.settle()
    writes = len(harness.kube.status_writes)
    harness.controller.enqueue_all()
    await harness.step()
    assert len(harness.kube.status_writes) == writes
    last_pass = harness.kafka.calls[-2:]
    assert [op for op, _ in last_pass] == ["describe_topics", "describe_cluster"], "an idle pass only reads"
    assert all(harness.ready(ref) for ref in refs)


@pytest.mark.parametrize("reads_that_miss_it", [4, 8])
async def test_created_topic_not_yet_visible_gets_one_status_write(
    harness: Harness, reads_that_miss_it: int
) -> None:
    # The confirming read and the pass's three reads again all miss it: the object waits for a later pass.
    harness.kafka.hidden_after_create = reads_that_miss_it
    ref = harness.apply("orders")
    await harness.step()
    assert harness.kube.status_writes == [], "no Creating status written while metadata spreads"
    assert harness.controller.queue.keys() == [ref]
    await harness.settle()
    assert harness.kube.status_writes == [ref]
    assert harness.ready(ref)


@pytest.mark.parametrize("reads_that_miss_it", [1, 3])
async def test_a_created_topic_seen_when_read_again_is_ready_in_the_same_pass(
    harness: Harness, reads_that_miss_it: int
) -> None:
    harness.kafka.hidden_after_create = reads_that_miss_it
    created = [harness.apply("orders"), harness.apply("refunds")]

    await harness.step()

    assert sorted(harness.kube.status_writes, key=str) == created, (
        "each gets its one status write in this pass"
    )
    assert all(harness.ready(ref) for ref in created)
    assert harness.controller.queue.keys() == []
    reads = [names for op, names in harness.kafka.calls if op == "describe_topics"]
    again = [tuple(sorted(names)) for names in reads[-reads_that_miss_it:]]
    assert again == [("orders", "refunds")] * reads_that_miss_it, "only the created topics are read again"


async def test_a_sweep_with_nothing_to_check_is_over_at_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # An operator with no object yet: each sweep is over when it starts, not late by three intervals.
    harness.controller.default_sweep_interval = 0.01
    sweeping = asyncio.ensure_future(harness.controller.sweep())
    try:
        with caplog.at_level(logging.WARNING):
            await until(lambda: len(harness.metrics.sweeps) >= 3, seconds=1.0)
    finally:
        sweeping.cancel()
    assert not [r for r in caplog.records if "not finished" in r.getMessage()]


async def test_the_next_pass_acts_on_kafka_while_the_last_pass_writes_and_an_object_waits_for_its_own(
    harness: Harness,
) -> None:
    """Passes overlap: one pass's status writes go on while the next pass reads and acts on Kafka. An
    object changed while its writes are under way waits for them: its next pass rests on its record."""
    writes_go = asyncio.Event()
    write_status = harness.kube.write_status

    async def held_write(obj, status, previous):  # type: ignore[no-untyped-def]
        await writes_go.wait()
        await write_status(obj, status, previous)

    harness.kube.write_status = held_write  # type: ignore[method-assign]
    first = harness.apply("orders")
    loop = asyncio.create_task(harness.controller.run())
    try:
        await until(lambda: "orders" in harness.kafka.topics)
        harness.event("MODIFIED", "orders", {"partitions": 6}, generation=2)
        second = harness.apply("payments")
        await until(lambda: "payments" in harness.kafka.topics)
        assert harness.kube.status_writes == [], "the first pass's write is still under way"
        assert len(harness.kafka.topics["orders"].replicas) == 3, "orders waits for its own write"

        writes_go.set()
        await until(lambda: harness.ready(second) and len(harness.kafka.topics["orders"].replicas) == 6)
        await until(lambda: harness.status(first).get("observedGeneration") == 2)
        assert harness.ready(first)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


@pytest.mark.parametrize(
    ("started", "ended", "expected"),
    [
        (100.0, 100.5, 110.0),  # a quick sweep: the next one interval after this one started
        (100.0, 107.0, 110.0),  # a slow Kafka does not push the next sweep back
        (100.0, 109.0, 111.0),  # never less than a fifth of an interval between two sweeps
        (100.0, 125.0, 127.0),  # nor after a sweep longer than its interval
    ],
)
def test_sweeps_start_one_interval_apart_with_a_pause_between_them(
    started: float, ended: float, expected: float
) -> None:
    assert next_sweep_start(started, ended, 10.0) == pytest.approx(expected)
