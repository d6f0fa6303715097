"""The sweep's chunk reads on real brokers: Kafka's answer to the same request is the same digest while
nothing changes, another one when a config or the ISR changes, and its decoding is what a pass reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from durabletopic.adapters.kafka.admin import KafkaAdmin
from durabletopic.adapters.kafka.reassign import Reassigner
from durabletopic.core.configs import MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION
from tests.testbed import Testbed

KEYS = frozenset({MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION, "retention.ms"})


def make_topics(kafka_admin: Any, names: list[str]) -> None:
    config = {MIN_INSYNC_REPLICAS: "2", "retention.ms": "3600000"}
    futures = kafka_admin.create_topics([NewTopic(n, 2, 3, config=config) for n in names])
    for future in futures.values():
        future.result(timeout=60)


def set_config(kafka_admin: Any, name: str, key: str, value: str) -> None:
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        name,
        incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)],
    )
    for future in kafka_admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_the_digest_holds_while_nothing_changes_and_moves_with_a_config(
    testbed: Testbed, kafka_admin: Any, unique: str
) -> None:
    names = [f"{unique}-{i}" for i in range(30)]
    make_topics(kafka_admin, names)
    reader = Reassigner(testbed.bootstrap_servers)

    async def digests(count: int) -> set[bytes]:
        return {(await reader.read_chunk(dict.fromkeys(names, KEYS))).digest for _ in range(count)}

    try:
        time.sleep(1)  # every broker's metadata has the new topics
        quiet = asyncio.run(digests(8))  # eight answers, each naming a controller picked at random
        assert len(quiet) == 1
        set_config(kafka_admin, names[17], MIN_INSYNC_REPLICAS, "1")
        time.sleep(1)
        weakened = asyncio.run(digests(3))
        assert len(weakened) == 1 and weakened != quiet
        full_before = asyncio.run(reader.configs_digest(names))
        set_config(kafka_admin, names[3], "segment.ms", "600000")  # a key the sweep does not read
        time.sleep(1)
        assert asyncio.run(digests(1)) == weakened, "only the keys read are compared by key"
        assert asyncio.run(reader.configs_digest(names)) != full_before, "every config, every few minutes"
    finally:
        reader.close()


def test_a_decoded_chunk_is_what_a_pass_reads_through_the_other_clients(
    testbed: Testbed, kafka_admin: Any, unique: str
) -> None:
    names = [f"{unique}-{i}" for i in range(5)]
    make_topics(kafka_admin, names)
    absent = f"{unique}-absent"
    reader = Reassigner(testbed.bootstrap_servers)
    admin = KafkaAdmin(testbed.bootstrap_servers)

    async def both() -> Any:
        chunk = await reader.read_chunk({**dict.fromkeys(names, KEYS), absent: KEYS, names[0]: None})
        reads, cluster = chunk.decode()
        by_key = await admin.read_topics([*names, absent], configs_of=[names[0]])
        configs = await reader.topic_configs(dict.fromkeys(names[1:], KEYS))
        return reads, cluster, by_key, configs, await admin.describe_cluster()

    try:
        time.sleep(1)
        reads, cluster, by_key, configs, described = asyncio.run(both())
    finally:
        reader.close()
        admin.close()
    assert reads.observed[absent] is None
    assert reads.observed[names[0]] == by_key.observed[names[0]], "every config read: the same topic"
    for name in names[1:]:
        observed, expected = reads.observed[name], by_key.observed[name]
        assert observed is not None and expected is not None
        assert (observed.overrides, observed.effective) == configs[name]
        assert observed.topic_id == expected.topic_id and observed.partitions == expected.partitions
        assert not observed.configs_complete
    assert cluster.cluster_id == described.cluster_id and cluster.brokers == described.brokers
