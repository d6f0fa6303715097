"""Helpers of the end-to-end tests: the Kubernetes objects, the Kafka topics and the metrics, read
the way the tests check what the operator did."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType
from kubernetes import client, config

from durabletopic.core import crd

# ----------------------------------------------------------------------------------- Kubernetes

T = TypeVar("T")


class Kube:
    def __init__(self, kubeconfig: str) -> None:
        self.api_client = config.new_client_from_config(config_file=kubeconfig)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def create(
        self, namespace: str, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        return dict(
            self.custom.create_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, body)
        )

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, name)
        )

    def exists(self, namespace: str, name: str) -> bool:
        try:
            self.get(namespace, name)
            return True
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.patch_namespaced_custom_object(
                crd.GROUP,
                crd.VERSION,
                namespace,
                crd.PLURAL,
                name,
                body,
                _content_type="application/merge-patch+json",
            )
        )

    def delete(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, name)

    def events(self, namespace: str, name: str) -> list[tuple[str, str, str]]:
        found = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        return [(e.type, e.reason, e.message) for e in found.items]


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30, interval: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last seen: {last!r}")


def ready(kube: Kube, namespace: str, name: str, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    def probe() -> dict | None:  # type: ignore[type-arg]
        obj = kube.get(namespace, name)
        c = condition(obj, "Ready")
        ok = (
            c
            and c["status"] == "True"
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        )
        return obj if ok else None

    return wait_for(f"{namespace}/{name} Ready", probe, timeout)


def reason_of(kube: Kube, namespace: str, name: str, kind: str, reason: str, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    def probe() -> dict | None:  # type: ignore[type-arg]
        obj = kube.get(namespace, name)
        c = condition(obj, kind)
        return obj if c and c["status"] == "True" and c["reason"] == reason else None

    try:
        return wait_for(f"{namespace}/{name} {kind}/{reason}", probe, timeout)
    except AssertionError as error:
        status = kube.get(namespace, name).get("status") or {}
        raise AssertionError(f"{error}; its conditions then: {status.get('conditions')}") from None


# ---------------------------------------------------------------------------------------- Kafka


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
    try:
        entries = admin.describe_configs([resource], request_timeout=10)[resource].result()
    except KafkaException as error:
        if error.args[0].name() == "UNKNOWN_TOPIC_OR_PART":  # not yet known to the broker asked
            return None
        raise
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


def snapshot(admin: AdminClient, timeout: float = 20) -> dict[str, Any]:
    """Every topic in the cluster: id, replica lists per partition, and every config with its source.

    Right after a topic is created, a broker that has not yet seen it answers UNKNOWN_TOPIC_OR_PART:
    that is retried for a while.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _snapshot(admin)
        except KafkaException as error:
            if error.args[0].name() != "UNKNOWN_TOPIC_OR_PART" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _snapshot(admin: AdminClient) -> dict[str, Any]:
    names = sorted(admin.list_topics(timeout=10).topics)
    if not names:
        return {}
    described = admin.describe_topics(TopicCollection(names), request_timeout=15)
    resources = {name: ConfigResource(ResourceType.TOPIC, name) for name in names}
    configured = admin.describe_configs(list(resources.values()), request_timeout=15)
    out: dict[str, Any] = {}
    for name in names:
        description = described[name].result()
        entries = configured[resources[name]].result()
        out[name] = {
            "id": str(description.topic_id),
            "partitions": sorted((p.id, tuple(r.id for r in p.replicas)) for p in description.partitions),
            "configs": {key: (entry.value, str(entry.source)) for key, entry in sorted(entries.items())},
        }
    return out


def produce(bootstrap: str, topic: str, count: int) -> None:
    """`count` numbered messages, acks=all and idempotent; fails the test if one is not acknowledged."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 20}
    )
    failures: list[str] = []
    payload = b"x" * 1000
    for number in range(count):
        producer.produce(
            topic,
            key=str(number).encode(),
            value=payload,
            on_delivery=lambda err, _: err and failures.append(str(err)),
        )
        if number % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures


def consume_all(bootstrap: str, topic: str, expected: int) -> set[int]:
    """The numbers (keys) of the messages read from the start of the topic, within a minute."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error() is None:
                    seen.add(int(message.key()))
    finally:
        consumer.close()
    return seen


def describe_partitions(admin: AdminClient, name: str) -> tuple[int, list[int]] | None:
    """The topic's min.insync.replicas in force and the ISR size of each partition, or None."""
    try:
        description = admin.describe_topics(TopicCollection([name]), request_timeout=10)[name].result()
        resource = ConfigResource(ResourceType.TOPIC, name)
        entries = admin.describe_configs([resource], request_timeout=10)[resource].result()
    except KafkaException:
        return None
    return int(entries["min.insync.replicas"].value), [len(p.isr) for p in description.partitions]


# -------------------------------------------------------------------------------------- metrics


def metric_value(text: str, metric: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(metric + "{") and not line.startswith(metric + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None
