"""Kafka down, a topic refused, a status write failing: retried with backoff, the others unharmed."""

from __future__ import annotations

import asyncio

from durabletopic.core.model import ObjectRef, TopicError
from tests.unit.loop.conftest import Harness, until


def delay(harness: Harness, ref: ObjectRef) -> float:
    found = harness.controller.queue.delay_of(ref)
    assert found is not None, f"{ref} is not queued"
    return round(found, 1)


async def test_kafka_unavailable_backs_off_then_recovers(harness: Harness) -> None:
    harness.kafka.unavailable = True
    ref = harness.apply("orders")
    delays = []
    for _ in range(5):
        await harness.step()
        delays.append(delay(harness, ref))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert harness.kube.condition(ref, "Reconciling") == ("True", "KafkaUnavailable")
    assert harness.kube.condition(ref, "Ready") == ("False", "KafkaUnavailable")
    assert len(harness.kube.status_writes) == 1, "the same status is not written again"
    harness.kafka.unavailable = False
    await harness.settle()
    assert harness.ready(ref)
    assert harness.controller.retries.attempts(ref) == 0


async def test_one_refused_topic_marks_only_its_object(harness: Harness) -> None:
    good = harness.apply("good")
    bad = harness.apply("bad", {"partitions": 3, "config": {"retention.ms": "x"}})
    harness.kafka.refuse["bad"] = TopicError("INVALID_CONFIG", "Invalid value x for retention.ms", False)
    await harness.settle()
    assert harness.ready(good)
    assert harness.kube.condition(bad, "Stalled") == ("True", "InvalidConfig")
    assert "Invalid value x" in harness.status(bad)["conditions"][0]["message"]
    assert harness.kube.reasons(bad) == ["InvalidConfig"]
    harness.controller.enqueue_all()
    await harness.step()
    assert harness.kube.reasons(bad) == ["InvalidConfig"], "the refusal is announced once"


async def test_retriable_refusal_is_retried_not_stalled(harness: Harness) -> None:
    ref = harness.apply("orders")
    harness.kafka.refuse["orders"] = TopicError("NOT_CONTROLLER", "moved", True)
    await harness.step()
    assert harness.kube.condition(ref, "Reconciling") == ("True", "Updating")
    assert harness.kube.condition(ref, "Stalled") == ("False", "Updating")
    assert delay(harness, ref) == 0.5
    del harness.kafka.refuse["orders"]
    await harness.settle()
    assert harness.ready(ref)


async def test_failed_status_write_is_retried(harness: Harness) -> None:
    ref = harness.apply("orders")
    harness.kube.fail_status[ref] = [500]
    await harness.step()
    assert harness.kube.status_writes == []
    assert delay(harness, ref) == 0.5
    await harness.settle()
    assert harness.kube.status_writes == [ref] and harness.ready(ref)


async def test_status_write_of_a_deleted_object_is_dropped(harness: Harness) -> None:
    ref = harness.apply("orders")
    harness.kube.fail_status[ref] = [404]
    await harness.step()
    assert harness.controller.queue.keys() == []


async def test_a_pass_that_raises_leaves_no_unchecked_ready(harness: Harness) -> None:
    refs = [harness.apply(name) for name in ("a", "b")]
    await harness.settle()
    assert all(harness.ready(ref) for ref in refs)

    async def broken(names: object) -> object:
        raise RuntimeError("bug")

    harness.kafka.read_topics = broken  # type: ignore[method-assign]
    harness.controller.enqueue_all()
    runner = asyncio.create_task(harness.controller.run())
    try:
        await until(lambda: harness.metrics.passes)
    finally:
        runner.cancel()
    assert harness.metrics.passes[0] == ("error", 2)
    assert sorted(map(str, harness.controller.queue.keys())) == sorted(map(str, refs))
    for ref in refs:
        assert harness.kube.condition(ref, "Ready") == ("False", "ReconcileFailed")
