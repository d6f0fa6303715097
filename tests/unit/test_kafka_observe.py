"""Conversion of confluent-kafka describe results into model types, with hand-built confluent objects."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, Node, TopicPartitionInfo, Uuid
from confluent_kafka.admin import ConfigEntry, ConfigSource, DescribeClusterResult, TopicDescription

from durabletopic.adapters.kafka import KafkaAdmin, KafkaAdminError, TopicError
from durabletopic.adapters.kafka.admin import all_done, chunks, redact, topic_error
from durabletopic.adapters.kafka.observe import (
    config_values,
    observe_cluster,
    observe_partition,
    observe_topic,
    split_configs,
)
from durabletopic.core.model import Broker, PartitionState


def node(node_id: int, rack: str | None = None) -> Node:
    return Node(node_id, "127.0.0.1", 9000 + node_id, rack)


def partition(pid: int, leader: int | None, replicas: list[int], isr: list[int]) -> TopicPartitionInfo:
    return TopicPartitionInfo(
        pid, node(leader) if leader is not None else None, [node(r) for r in replicas], [node(i) for i in isr]
    )


def entry(name: str, value: str | None, source: Any, **kwargs: Any) -> ConfigEntry:
    return ConfigEntry(name, value, source=source, **kwargs)


TOPIC_CONFIGS = {
    # describe_configs hands the source over as a bare int: keep one entry that way.
    "min.insync.replicas": entry("min.insync.replicas", "2", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
    "retention.ms": entry("retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG),
    "unclean.leader.election.enable": entry(
        "unclean.leader.election.enable", "false", ConfigSource.DEFAULT_CONFIG, is_default=True
    ),
    "cleanup.policy": entry("cleanup.policy", "delete", ConfigSource.STATIC_BROKER_CONFIG),
    "secret.thing": entry("secret.thing", None, ConfigSource.DYNAMIC_TOPIC_CONFIG, is_sensitive=True),
}


def test_partition_with_leader_replicas_and_isr() -> None:
    assert observe_partition(partition(2, 3, [3, 1, 2], [3, 1])) == PartitionState(
        partition=2, leader=3, replicas=(3, 1, 2), isr=(3, 1)
    )


@pytest.mark.parametrize("leader", [None, node(-1)])
def test_partition_without_leader_is_offline(leader: Node | None) -> None:
    info = TopicPartitionInfo(0, leader, [node(1), node(2)], [])
    state = observe_partition(info)
    assert state.leader is None
    assert state.isr == ()
    assert state.replicas == (1, 2)


def test_overrides_are_the_topics_own_settings_and_effective_is_everything() -> None:
    overrides, effective = split_configs(TOPIC_CONFIGS)
    assert overrides == {"min.insync.replicas": "2", "retention.ms": "3600000"}
    assert effective == {
        "min.insync.replicas": "2",
        "retention.ms": "3600000",
        "unclean.leader.election.enable": "false",
        "cleanup.policy": "delete",
    }


def test_topics_read_apart_hold_one_string_for_each_config_name_and_value() -> None:
    def fresh(text: str) -> str:  # a string object of its own, as each decoded answer brings
        return "".join(list(text))

    def read() -> dict[str, ConfigEntry]:
        return {
            fresh(name): entry(fresh(name), fresh(e.value) if e.value else None, e.source)
            for name, e in TOPIC_CONFIGS.items()
        }

    (first_overrides, first), (_, second) = split_configs(read()), split_configs(read())
    assert first == second
    for (first_name, first_value), (second_name, second_value) in zip(
        first.items(), second.items(), strict=True
    ):
        assert first_name is second_name and first_value is second_value, first_name
    assert all(first_overrides[name] is first[name] for name in first_overrides)


def test_topics_with_the_same_configs_share_one_dict_and_a_different_topic_has_its_own() -> None:
    def read(**changed: str) -> dict[str, ConfigEntry]:
        return {
            name: entry(name, changed.get(name.replace(".", "_"), e.value), e.source)
            for name, e in TOPIC_CONFIGS.items()
        }

    first_overrides, first = split_configs(read())
    second_overrides, second = split_configs(read())
    assert second is first and second_overrides is first_overrides
    _, weakened = split_configs(read(min_insync_replicas="1"))
    assert weakened is not first
    assert weakened["min.insync.replicas"] == "1" and first["min.insync.replicas"] == "2"


def test_topic_description_becomes_observed_topic() -> None:
    topic_id = Uuid(0x0123456789ABCDEF, 0x0FEDCBA987654321)
    description = TopicDescription(
        "orders",
        topic_id,
        False,
        [partition(1, 2, [2, 3, 1], [2, 3]), partition(0, 1, [1, 2, 3], [1, 2, 3])],
    )
    topic = observe_topic(description, TOPIC_CONFIGS)
    assert topic.name == "orders"
    assert topic.topic_id == str(topic_id)
    assert topic.topic_id  # Kafka's base64 form, never empty for a real id
    assert [p.partition for p in topic.partitions] == [0, 1]
    assert topic.partition_count == 2
    assert topic.replication_factor == 3
    assert topic.partitions[1].isr == (2, 3)
    assert topic.overrides["min.insync.replicas"] == "2"
    assert "unclean.leader.election.enable" not in topic.overrides
    assert topic.effective["unclean.leader.election.enable"] == "false"
    assert topic.effective_min_insync_replicas() == 2


def test_cluster_brokers_sorted_with_racks_and_controller() -> None:
    result = DescribeClusterResult(node(2), [node(3, "r3"), node(1, "r1"), node(2, "")], cluster_id="abc")
    info = observe_cluster(result)
    assert info.brokers == (Broker(1, "r1"), Broker(2, None), Broker(3, "r3"))
    assert info.controller_id == 2
    assert info.racks == frozenset({"r1", "r3"})


def test_cluster_without_controller() -> None:
    assert observe_cluster(DescribeClusterResult(None, [node(1)])).controller_id is None


def test_config_values_by_source() -> None:
    entries = {
        "min.insync.replicas": entry(
            "min.insync.replicas", "2", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
        ),
        "default.replication.factor": entry("default.replication.factor", "1", ConfigSource.DEFAULT_CONFIG),
        "sasl.jaas.config": entry("sasl.jaas.config", None, ConfigSource.DEFAULT_CONFIG, is_sensitive=True),
    }
    assert config_values(entries) == {"min.insync.replicas": "2", "default.replication.factor": "1"}
    assert config_values(entries, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG) == {"min.insync.replicas": "2"}


def test_topic_error_from_kafka_error() -> None:
    error = topic_error(KafkaError(KafkaError.INVALID_CONFIG, "Invalid value x"))
    assert error == TopicError(code="INVALID_CONFIG", message="Invalid value x", retriable=False)
    assert topic_error(KafkaError(KafkaError.NOT_CONTROLLER, "moved")).retriable


def test_chunks() -> None:
    assert list(chunks(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == []


def test_secrets_are_redacted() -> None:
    config = {"sasl.password": "hunter2", "ssl.key.password": "pem-pass", "security.protocol": "SASL_SSL"}
    assert redact("bad hunter2 and pem-pass over SASL_SSL", config) == "bad *** and *** over SASL_SSL"


def test_invalid_client_config_error_does_not_show_the_secret() -> None:
    with pytest.raises(KafkaAdminError) as caught:
        KafkaAdmin("127.0.0.1:1", {"security.protocol": "s3cr3t-value", "sasl.password": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(caught.value)
    assert "security.protocol" in str(caught.value)


def test_repr_does_not_show_client_config() -> None:
    admin = KafkaAdmin("127.0.0.1:1", {"sasl.password": "hunter2"})
    try:
        assert "hunter2" not in repr(admin)
        assert "hunter2" not in str(vars(admin))
    finally:
        admin.close()


async def test_all_done_wakes_once_every_future_is_done_from_other_threads() -> None:
    futures: list[Future[int]] = [Future() for _ in range(50)]
    waiter = asyncio.ensure_future(all_done(futures))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    threads = [threading.Thread(target=f.set_result, args=(i,)) for i, f in enumerate(futures)]
    for t in threads:
        t.start()
    await asyncio.wait_for(waiter, 5)
    assert [f.result() for f in futures] == list(range(50))
    await all_done([])
