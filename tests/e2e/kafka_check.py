"""Reads a topic back from Kafka, the way the tests check what the operator did."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType


@dataclass(frozen=True)
class TopicFacts:
    topic_id: str
    partitions: int
    replication_factor: int
    overrides: dict[str, str]
    effective: dict[str, str]


def describe(admin: AdminClient, name: str) -> TopicFacts | None:
    try:
        description = admin.describe_topics(TopicCollection([name]), request_timeout=10)[name].result()
    except KafkaException as error:
        if error.args[0].name() == "UNKNOWN_TOPIC_OR_PART":
            return None
        raise
    resource = ConfigResource(ResourceType.TOPIC, name)
    entries = admin.describe_configs([resource], request_timeout=10)[resource].result()
    overrides = {
        key: entry.value
        for key, entry in entries.items()
        if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    }
    return TopicFacts(
        topic_id=str(description.topic_id),
        partitions=len(description.partitions),
        replication_factor=min(len(p.replicas) for p in description.partitions),
        overrides=overrides,
        effective={key: entry.value for key, entry in entries.items()},
    )


def create(admin: AdminClient, name: str, partitions: int, rf: int, configs: dict[str, str]) -> TopicFacts:
    """Creates a topic directly, as someone working behind the operator's back would, and waits for it."""
    admin.create_topics([NewTopic(name, partitions, rf, config=configs)], request_timeout=15)[name].result()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        facts = describe(admin, name)
        if facts is not None:
            return facts
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not visible 15 s after its creation")


def set_config(admin: AdminClient, name: str, key: str, value: str) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    resource = ConfigResource(
        ResourceType.TOPIC,
        name,
        incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)],
    )
    admin.incremental_alter_configs([resource])[resource].result()


def delete(admin: AdminClient, name: str) -> None:
    admin.delete_topics([name], operation_timeout=15)[name].result()


def list_topics(admin: AdminClient) -> set[str]:
    return set(admin.list_topics(timeout=10).topics)
