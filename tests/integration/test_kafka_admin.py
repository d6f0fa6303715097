"""KafkaAdmin against the real Kafka of the test bed (3 brokers, racks r1..r3)."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any, TypeVar

import pytest

from durabletopic.adapters.kafka import KafkaAdmin, KafkaUnavailable, TopicError
from durabletopic.core.configs import MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION
from durabletopic.core.model import ObservedTopic
from durabletopic.core.plan import CreateTopic
from tests.testbed import Testbed

T = TypeVar("T")
RETENTION = "retention.ms"


class Requests(list[tuple[str, str, float]]):
    def __call__(self, op: str, result: str, seconds: float) -> None:
        self.append((op, result, seconds))

    def ops(self, *names: str) -> list[str]:
        return [op for op, _, _ in self if not names or op in names]


@pytest.fixture
def requests() -> Requests:
    return Requests()


@pytest.fixture
async def admin(bootstrap_servers: str, requests: Requests, unique: str) -> AsyncIterator[KafkaAdmin]:
    client = KafkaAdmin(bootstrap_servers, request_timeout_s=15, on_request=requests)
    yield client
    leftovers = [name for name in await client.list_topics() if name.startswith(f"{unique}-")]
    if leftovers:
        await client.delete_topics(leftovers)
    client.close()


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], within_s: float = 20
) -> T:
    """Metadata takes a moment to reach every broker after a change: ask until the answer fits."""
    deadline = time.monotonic() + within_s
    while True:
        value = await probe()
        if accept(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


def code(error: TopicError | None) -> str | None:
    return error.code if error is not None else None


def topic_where(
    name: str, check: Callable[[ObservedTopic], bool]
) -> Callable[[dict[str, ObservedTopic | None]], bool]:
    return lambda result: (topic := result.get(name)) is not None and check(topic)


async def describe_existing(admin: KafkaAdmin, names: Collection[str]) -> dict[str, ObservedTopic]:
    found = await eventually(
        lambda: admin.describe_topics(names), lambda r: all(r[n] is not None for n in names)
    )
    assert all(found[n] is not None for n in names), found
    return {n: t for n, t in found.items() if t is not None}


async def create(admin: KafkaAdmin, *topics: CreateTopic) -> None:
    assert await admin.create_topics(topics) == {t.name: None for t in topics}
    await describe_existing(admin, [t.name for t in topics])


@pytest.mark.testbed
async def test_describe_several_topics_in_one_call(
    admin: KafkaAdmin, requests: Requests, unique: str
) -> None:
    durable, plain, missing = f"{unique}-durable", f"{unique}-plain", f"{unique}-missing"
    await create(
        admin,
        CreateTopic(durable, 3, 3, {MIN_INSYNC_REPLICAS: "2", RETENTION: "3600000"}),
        CreateTopic(plain, 1, 2, {}),
    )
    await eventually(
        lambda: admin.describe_topics([durable]),
        topic_where(durable, lambda t: all(len(p.isr) == 3 for p in t.partitions)),
    )
    requests.clear()

    observed = await admin.describe_topics([durable, plain, missing])

    assert requests.ops() == ["describe_topics", "describe_configs"]
    assert {result for _, result, _ in requests} == {"ok"}
    assert observed[missing] is None
    topic, other = observed[durable], observed[plain]
    assert topic is not None and other is not None
    assert topic.name == durable
    assert topic.partition_count == 3 and [p.partition for p in topic.partitions] == [0, 1, 2]
    assert topic.replication_factor == 3
    for p in topic.partitions:
        assert set(p.replicas) == {1, 2, 3}
        assert set(p.isr) == {1, 2, 3}
        assert p.leader in p.replicas
    assert topic.topic_id and other.topic_id and topic.topic_id != other.topic_id
    assert topic.overrides == {MIN_INSYNC_REPLICAS: "2", RETENTION: "3600000"}
    assert topic.effective[MIN_INSYNC_REPLICAS] == "2"
    assert UNCLEAN_LEADER_ELECTION not in topic.overrides
    assert topic.effective[UNCLEAN_LEADER_ELECTION] == "false"
    assert other.partition_count == 1 and other.replication_factor == 2
    assert other.overrides == {}
    assert MIN_INSYNC_REPLICAS in other.effective and "cleanup.policy" in other.effective


@pytest.mark.testbed
async def test_create_batch_reports_errors_per_topic(
    admin: KafkaAdmin, requests: Requests, unique: str
) -> None:
    good = [f"{unique}-good-{i}" for i in range(3)]
    bad_config, bad_rf = f"{unique}-bad-config", f"{unique}-bad-rf"
    batch = [CreateTopic(name, 2, 3, {MIN_INSYNC_REPLICAS: "2"}) for name in good]
    batch.insert(1, CreateTopic(bad_config, 1, 3, {MIN_INSYNC_REPLICAS: "two"}))
    batch.append(CreateTopic(bad_rf, 1, 5, {}))

    results = await admin.create_topics(batch)

    assert requests.ops() == ["create_topics"]
    assert all(results[name] is None for name in good)
    config_error, rf_error = results[bad_config], results[bad_rf]
    assert config_error is not None and config_error.code == "INVALID_CONFIG"
    assert MIN_INSYNC_REPLICAS in config_error.message and not config_error.retriable
    assert rf_error is not None and rf_error.code == "INVALID_REPLICATION_FACTOR"
    observed = await describe_existing(admin, good)
    assert all(t.overrides[MIN_INSYNC_REPLICAS] == "2" for t in observed.values())
    assert (await admin.describe_topics([bad_config, bad_rf])) == {bad_config: None, bad_rf: None}
    assert set(good) <= await admin.list_topics()

    again = await admin.create_topics([CreateTopic(good[0], 2, 3, {})])
    assert code(again[good[0]]) == "TOPIC_ALREADY_EXISTS"


@pytest.mark.testbed
async def test_alter_configs_is_incremental(admin: KafkaAdmin, requests: Requests, unique: str) -> None:
    name, missing = f"{unique}-alter", f"{unique}-missing"
    await create(
        admin,
        CreateTopic(name, 1, 3, {MIN_INSYNC_REPLICAS: "1", RETENTION: "3600000", "segment.ms": "600000"}),
    )
    requests.clear()

    results = await admin.alter_configs(
        {
            name: {MIN_INSYNC_REPLICAS: "2", UNCLEAN_LEADER_ELECTION: "false", "segment.ms": None},
            missing: {MIN_INSYNC_REPLICAS: "2"},
        }
    )

    assert requests.ops() == ["alter_configs"]
    assert results[name] is None
    error = results[missing]
    assert error is not None and error.code == "UNKNOWN_TOPIC_OR_PART"
    expected = {MIN_INSYNC_REPLICAS: "2", UNCLEAN_LEADER_ELECTION: "false", RETENTION: "3600000"}
    described = await eventually(
        lambda: admin.describe_topics([name]), topic_where(name, lambda t: t.overrides == expected)
    )
    topic = described[name]
    assert topic is not None
    assert topic.overrides == expected
    assert topic.effective["segment.ms"] != "600000"

    invalid = await admin.alter_configs({name: {MIN_INSYNC_REPLICAS: "many"}})
    assert code(invalid[name]) == "INVALID_CONFIG"


@pytest.mark.testbed
async def test_create_partitions(admin: KafkaAdmin, requests: Requests, unique: str) -> None:
    grow, shrink = f"{unique}-grow", f"{unique}-shrink"
    await create(admin, CreateTopic(grow, 1, 3, {}), CreateTopic(shrink, 3, 3, {}))
    requests.clear()

    results = await admin.create_partitions({grow: 4, shrink: 2})

    assert requests.ops() == ["create_partitions"]
    assert results[grow] is None
    error = results[shrink]
    assert error is not None and error.code == "INVALID_PARTITIONS"
    observed = await eventually(
        lambda: admin.describe_topics([grow, shrink]), topic_where(grow, lambda t: t.partition_count == 4)
    )
    grown, kept = observed[grow], observed[shrink]
    assert grown is not None and kept is not None
    assert grown.partition_count == 4
    assert all(len(p.replicas) == 3 for p in grown.partitions)
    assert kept.partition_count == 3


@pytest.mark.testbed
async def test_delete_topics(admin: KafkaAdmin, requests: Requests, unique: str) -> None:
    doomed, missing = f"{unique}-doomed", f"{unique}-missing"
    await create(admin, CreateTopic(doomed, 1, 3, {}))
    requests.clear()

    results = await admin.delete_topics([doomed, missing])

    assert requests.ops() == ["delete_topics"]
    assert results[doomed] is None
    error = results[missing]
    assert error is not None and error.code == "UNKNOWN_TOPIC_OR_PART"
    gone = await eventually(lambda: admin.describe_topics([doomed]), lambda r: r[doomed] is None)
    assert gone == {doomed: None}
    assert doomed not in await eventually(admin.list_topics, lambda names: doomed not in names)


@pytest.mark.testbed
async def test_describe_request_count_is_two_per_chunk(bootstrap_servers: str, unique: str) -> None:
    requests = Requests()
    admin = KafkaAdmin(bootstrap_servers, chunk_size=3, on_request=requests)
    names = [f"{unique}-n{i}" for i in range(7)]
    try:
        assert await admin.create_topics([CreateTopic(n, 1, 3, {}) for n in names]) == dict.fromkeys(names)
        assert requests.ops() == ["create_topics"] * math.ceil(len(names) / 3)
        await describe_existing(admin, names)
        requests.clear()

        observed = await admin.describe_topics([*names, f"{unique}-missing"])

        assert sorted(requests.ops()) == sorted(["describe_topics", "describe_configs"] * math.ceil(8 / 3))
        assert all(observed[n] is not None for n in names)
        assert observed[f"{unique}-missing"] is None
    finally:
        await admin.delete_topics(names)
        admin.close()


@pytest.mark.testbed
async def test_describe_cluster_and_broker_configs(admin: KafkaAdmin, testbed: Testbed) -> None:
    cluster = await admin.describe_cluster()
    assert [b.node_id for b in cluster.brokers] == [1, 2, 3]
    assert cluster.racks == {"r1", "r2", "r3"}

    configs = await admin.broker_configs()
    assert configs["broker.id"] == "1"
    assert configs["broker.rack"] == "r1"
    assert {MIN_INSYNC_REPLICAS, "default.replication.factor", UNCLEAN_LEADER_ELECTION} <= configs.keys()

    # A harmless key: changing any log.cleaner.* default restarts the log cleaner, whose new 128 MB
    # dedupe buffer killed small-heap test brokers with OutOfMemoryError.
    key, value = "background.threads", "9"
    assert (await admin.cluster_default_configs()).get(key) is None
    testbed.set_broker_default(key, value)
    try:
        defaults = await eventually(admin.cluster_default_configs, lambda d: d.get(key) == value)
        assert defaults[key] == value
        assert (await admin.broker_configs())[key] == value
    finally:
        testbed.delete_broker_default(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_cluster_raises_kafka_unavailable_in_time(requests: Requests) -> None:
    admin = KafkaAdmin(
        f"127.0.0.1:{free_port()}",
        {"sasl.username": "app", "sasl.password": "hunter2-secret"},
        request_timeout_s=1,
        on_request=requests,
    )
    calls: list[Callable[[], Awaitable[Any]]] = [
        admin.describe_cluster,
        lambda: admin.describe_topics(["a", "b"]),
        admin.list_topics,
        lambda: admin.create_topics([CreateTopic("a", 1, 1, {})]),
        lambda: admin.alter_configs({"a": {MIN_INSYNC_REPLICAS: "2"}}),
    ]
    try:
        for call in calls:
            start = time.monotonic()
            with pytest.raises(KafkaUnavailable) as caught:
                await asyncio.wait_for(call(), 10)
            assert time.monotonic() - start < 4
            assert "hunter2-secret" not in str(caught.value)
        assert "hunter2-secret" not in repr(admin)
        assert {result for _, result, _ in requests} == {"unreachable"}
        assert requests.ops() == [
            "describe_cluster",
            "describe_topics",
            "describe_configs",
            "list_topics",
            "create_topics",
            "alter_configs",
        ]
    finally:
        admin.close()
