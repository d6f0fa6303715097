"""The sweep reads quiet objects' topics a chunk at a time and passes over only what changed."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping

import pytest

from durabletopic.core.configs import MIN_INSYNC_REPLICAS
from durabletopic.core.model import ObjectRef
from durabletopic.loop import chunks
from durabletopic.loop.controller import COMPLETE_CONFIGS_EVERY_SECONDS
from durabletopic.loop.ports import ChunkRead, KafkaUnavailable
from tests.unit.loop.conftest import Harness


async def sweep(harness: Harness) -> None:
    await harness.controller.sweep_once()
    await harness.settle()


async def anchored(harness: Harness, count: int) -> list[ObjectRef]:
    """Objects made, then swept until each is quiet and anchored to the sweep's read."""
    refs = [harness.apply(f"orders-{i}") for i in range(count)]
    await harness.settle()
    await sweep(harness)  # a pass that changes nothing: quiet
    await sweep(harness)  # the first chunk read: the pass plans on it, and is anchored to it
    assert set(harness.controller.quiet_check.anchors) == set(refs)
    return refs


async def test_an_idle_sweep_reads_one_chunk_and_passes_over_nothing(harness: Harness) -> None:
    refs = await anchored(harness, 50)
    calls, chunk_reads = len(harness.kafka.calls), len(harness.reassigner.chunk_reads)
    await harness.controller.sweep_once()
    assert harness.controller.queue.keys() == [], "nothing changed: no object is due"
    assert len(harness.reassigner.chunk_reads) == chunk_reads + 1, "one read for the chunk"
    assert len(harness.kafka.calls) == calls, "no DescribeTopics, DescribeConfigs or DescribeCluster"
    assert all(harness.ready(ref) for ref in refs)


async def test_the_controller_kafka_names_at_random_does_not_count_as_a_change(harness: Harness) -> None:
    await anchored(harness, 3)
    for _ in range(4):  # the fake names another controller in each answer, as Kafka does
        await harness.controller.sweep_once()
        assert harness.controller.queue.keys() == []


async def test_drift_in_a_chunk_is_read_afresh_and_put_right_and_the_rest_is_not_read(
    harness: Harness,
) -> None:
    refs = await anchored(harness, 20)
    weakened = refs[7]
    harness.kafka.topics["orders-7"].overrides[MIN_INSYNC_REPLICAS] = "1"
    await harness.controller.sweep_once()
    assert harness.controller.queue.keys() == [weakened], (
        "the chunk changed: the object whose topic changed is due, with its read; the others read as "
        "their last passes saw them and stay quiet, anchored to this read"
    )
    anchors = harness.controller.quiet_check.anchors
    (new_read,) = {anchors[ref] for ref in refs if ref != weakened}
    assert anchors.get(weakened) != new_read
    calls = len(harness.kafka.calls)
    await harness.settle()
    assert harness.kafka.topics["orders-7"].overrides[MIN_INSYNC_REPLICAS] == "2"
    reads = [names for op, names in harness.kafka.calls[calls:] if op == "describe_topics"]
    assert reads and all(tuple(names) == ("orders-7",) for names in reads), (
        "a prefetched read leads to no action: the changed topic is read afresh, the others not at all"
    )
    assert harness.metrics.drift_counts, "the drift is counted"
    assert all(harness.ready(ref) for ref in refs)
    await sweep(harness)  # the chunk changed back: read once more, anchored again
    await sweep(harness)
    await harness.controller.sweep_once()
    assert harness.controller.queue.keys() == []


async def test_a_topic_changed_in_a_chunk_is_passed_over_even_when_its_object_is_anchored_elsewhere(
    harness: Harness,
) -> None:
    """Two changes in one chunk between sweeps: each changed topic's object is due; none of the
    unchanged ones is, and none of them is anchored to a read that shows a change they did not see."""
    refs = await anchored(harness, 30)
    harness.kafka.topics["orders-3"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.kafka.topics["orders-21"].overrides["unclean.leader.election.enable"] = "true"
    await harness.controller.sweep_once()
    assert sorted(harness.controller.queue.keys(), key=str) == sorted([refs[21], refs[3]], key=str)
    await harness.settle()
    assert harness.kafka.topics["orders-3"].overrides[MIN_INSYNC_REPLICAS] == "2"
    assert harness.kafka.topics["orders-21"].overrides["unclean.leader.election.enable"] == "false"


async def test_a_change_undone_before_the_pass_is_not_taken_for_what_the_object_saw(harness: Harness) -> None:
    """The sweep reads a weakened topic; before its pass, the topic is put back; later it is weakened
    again, to exactly what that read saw: the object planned on that read and acted, so it is not
    anchored to it, and the weakening is put right."""
    await anchored(harness, 5)
    topic = harness.kafka.topics["orders-2"]
    topic.overrides[MIN_INSYNC_REPLICAS] = "1"
    await harness.controller.sweep_once()
    topic.overrides[MIN_INSYNC_REPLICAS] = "2"
    await harness.settle()
    topic.overrides[MIN_INSYNC_REPLICAS] = "1"
    for _ in range(2):
        await sweep(harness)
    assert topic.overrides[MIN_INSYNC_REPLICAS] == "2"


async def test_a_failed_chunk_read_leaves_its_objects_to_a_read_of_their_own(harness: Harness) -> None:
    refs = await anchored(harness, 10)
    harness.reassigner.fail = True
    reads_before = harness.kafka.count("describe_topics")
    await harness.controller.sweep_once()
    assert len(harness.controller.queue.keys()) == len(refs)
    harness.reassigner.fail = False
    await harness.settle()
    assert harness.kafka.count("describe_topics") > reads_before
    assert all(harness.ready(ref) for ref in refs)


async def test_one_chunk_read_that_times_out_leaves_only_its_own_objects_to_their_own_reads(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that times out once (a broker busy for a moment) sends one chunk's objects to reads of
    their own, not every object: the other chunks are read, and the next sweep reads by chunk again."""
    monkeypatch.setattr(chunks, "CHUNK_TOPICS", 10)
    refs = await anchored(harness, 30)
    read_chunk = harness.reassigner.read_chunk
    failing: list[tuple[str, ...]] = []

    async def second_read_times_out(keys: Mapping[str, Collection[str] | None]) -> ChunkRead:
        if len(harness.reassigner.chunk_reads) % 3 == 1 and not failing:
            failing.append(tuple(keys))
            raise KafkaUnavailable("describe_topics: RequestTimedOutError")
        return await read_chunk(keys)

    monkeypatch.setattr(harness.reassigner, "read_chunk", second_read_times_out)
    await harness.controller.sweep_once()
    queued = {ref.name for ref in sorted(harness.controller.queue.keys(), key=str)}
    assert failing and queued == set(failing[0]), "only the chunk that was not read"
    await harness.settle()
    assert all(harness.ready(ref) for ref in refs)
    reads = len(harness.reassigner.chunk_reads)
    await harness.controller.sweep_once()
    assert len(harness.reassigner.chunk_reads) == reads + 3, "read by chunk again, not paused"
    assert harness.controller.queue.keys() == []


async def test_every_config_is_compared_every_few_minutes_and_read_only_when_changed(
    harness: Harness,
) -> None:
    refs = await anchored(harness, 10)
    controller = harness.controller

    def age() -> None:
        """Past the interval between full reads: the objects stay in their chunk all the same."""
        for ref in refs:
            controller._complete_read_at[ref] -= COMPLETE_CONFIGS_EVERY_SECONDS * 1.1

    age()
    await sweep(harness)  # no full read yet that their passes planned on: read in full
    assert harness.reassigner.chunk_reads[-2] == tuple(f"orders-{i}" for i in sorted(range(10), key=str))
    assert all(ref in controller.quiet_check.full_anchors for ref in refs)
    await sweep(harness)  # read by key again: anchored to that read
    chunk_reads = len(harness.reassigner.chunk_reads)
    age()
    digests = harness.reassigner.configs_digests
    await harness.controller.sweep_once()
    assert harness.reassigner.configs_digests == digests + 1
    assert controller.queue.keys() == [], "every config as before: nothing to read or plan"
    assert all(controller._settled(controller.store.get(ref), time.monotonic()) for ref in refs)
    assert len(harness.reassigner.chunk_reads) == chunk_reads + 1, "only the sweep's own chunk read"
    harness.kafka.topics["orders-3"].overrides["segment.ms"] = "600000"  # set out of band
    age()
    await sweep(harness)
    assert "segment.ms" in str(harness.status(refs[3])), "the override set out of band is seen"
    assert "segment.ms" not in str(harness.status(refs[4]))


async def test_a_listing_of_the_same_objects_leaves_them_quiet(harness: Harness) -> None:
    refs = await anchored(harness, 5)
    await harness.controller.resync()  # every object listed again, each at the resource version held
    await harness.controller.sweep_once()
    assert harness.controller.queue.keys() == [], "the same objects: still quiet, still anchored"
    assert all(harness.ready(ref) for ref in refs)


async def test_objects_whose_pass_ends_before_the_last_chunk_is_read_stay_anchored(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With many chunks, the passes over the first chunks' objects run while the later chunks are read:
    the sweep does not queue those objects again, for a pass of their own that would drop the anchor."""
    monkeypatch.setattr(chunks, "CHUNK_TOPICS", 10)
    read_chunk = harness.reassigner.read_chunk

    async def read_while_passes_run(keys: Mapping[str, Collection[str] | None]) -> ChunkRead:
        await harness.step()  # the objects earlier chunks handed over are reconciled meanwhile
        return await read_chunk(keys)

    monkeypatch.setattr(harness.reassigner, "read_chunk", read_while_passes_run)
    refs = await anchored(harness, 30)
    assert len({chunk for chunk in harness.reassigner.chunk_reads[-3:]}) == 3, "three chunks"
    calls = len(harness.kafka.calls)
    await sweep(harness)
    assert harness.controller.queue.keys() == []
    assert len(harness.kafka.calls) == calls, "every object skipped: no read of its own"
    assert all(harness.ready(ref) for ref in refs)
