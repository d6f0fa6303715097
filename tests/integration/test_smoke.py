"""Smoke tests of the local test bed: Kafka and Kubernetes really work, and faults really happen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicCollection
from confluent_kafka.cimpl import NewTopic

from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

MESSAGES = 1000


def _create_topic(admin: Any, name: str, partitions: int = 1) -> None:
    futures = admin.create_topics(
        [NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})], request_timeout=30
    )
    futures[name].result(timeout=60)


def _isr(admin: Any, topic: str) -> list[int]:
    description = admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result(
        timeout=15
    )
    return sorted(node.id for node in description.partitions[0].isr)


def _wait_isr(admin: Any, topic: str, expected: list[int], timeout: float) -> float:
    began = time.monotonic()
    seen: list[int] | str = []
    while time.monotonic() - began < timeout:
        try:
            seen = _isr(admin, topic)
        except Exception as exc:  # a request sent to the broker that just died fails: ask again
            seen = str(exc)
        if seen == expected:
            return time.monotonic() - began
        time.sleep(0.5)
    raise AssertionError(f"ISR of {topic} is {seen} after {timeout} s, expected {expected}")


@pytest.fixture
def topic(kafka_admin: Any, unique: str) -> Iterator[str]:
    name = f"{unique}-smoke"
    _create_topic(kafka_admin, name)
    # Creation returns before every broker has the topic's metadata: wait until it is fully in sync.
    _wait_isr(kafka_admin, name, [1, 2, 3], timeout=30)
    yield name
    kafka_admin.delete_topics([name], request_timeout=30)[name].result(timeout=60)


def test_produce_and_consume_1000_messages(bootstrap_servers: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all", "enable.idempotence": True})
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    sent = [f"message-{i}".encode() for i in range(MESSAGES)]
    for value in sent:
        producer.produce(topic, value=value, on_delivery=delivered)
    assert producer.flush(60) == 0, "messages still in flight after 60 s"
    assert errors == []

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(received) < MESSAGES and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                assert message.error() is None, message.error()
                received.append(message.value() or b"")
        # Nothing beyond the 1,000: one more poll returns nothing new.
        received.extend(
            m.value() or b"" for m in consumer.consume(num_messages=10, timeout=1.0) if not m.error()
        )
    finally:
        consumer.close()
    assert received == sent


def test_cluster_has_three_brokers_in_three_racks(testbed: Testbed, kafka_admin: Any) -> None:
    nodes = kafka_admin.describe_cluster(request_timeout=10).result(timeout=15).nodes
    assert sorted((node.id, node.rack) for node in nodes) == [(1, "r1"), (2, "r2"), (3, "r3")]
    assert testbed.bootstrap_servers.count(",") == 2


def test_killed_broker_leaves_isr_and_rejoins(kafka_admin: Any, topic: str, testbed_faults: Testbed) -> None:
    # testbed_faults comes last so that its teardown (restart what is down) runs before the topic's.
    bed = testbed_faults
    # Every broker answers for the topic first: one whose metadata lags says it does not exist.
    _wait_isr(kafka_admin, topic, [1, 2, 3], timeout=30)
    victim = 2
    bed.kill_broker(victim)
    shrink = _wait_isr(kafka_admin, topic, [1, 3], timeout=45)
    bed.wait_broker_count(2, timeout=30)
    bed.start_broker(victim)
    rejoin = _wait_isr(kafka_admin, topic, [1, 2, 3], timeout=60)
    bed.wait_broker_count(3, timeout=30)
    print(f"ISR shrank {shrink:.1f} s after the kill, rejoined {rejoin:.1f} s after the restart")


CRD_GROUP = "smoke.durabletopic.dev"


def _crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{CRD_GROUP}"},
        "spec": {
            "group": CRD_GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_object_roundtrip_and_nobody_is_denied(testbed: Testbed, unique: str, tmp_path: Path) -> None:
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.client.exceptions import ApiException

    config: Any = kube_config  # the kubernetes client is untyped

    testbed.kubectl("apply", "-f", "-", input=json.dumps(_crd()))
    testbed.kubectl("wait", "--for=condition=Established", f"crd/widgets.{CRD_GROUP}", "--timeout=60s")
    widget = {
        "apiVersion": f"{CRD_GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": unique, "namespace": "default"},
        "spec": {"size": 3},
    }
    testbed.kubectl("apply", "-f", "-", input=json.dumps(widget))
    try:
        admin = client.CustomObjectsApi(config.new_client_from_config(config_file=str(testbed.kubeconfig)))
        got: Any = admin.get_namespaced_custom_object(CRD_GROUP, "v1", "default", "widgets", unique)
        assert got["spec"] == {"size": 3}
        assert got["metadata"]["name"] == unique

        # The schema is enforced: kubectl apply of an invalid object fails.
        bad = {**widget, "metadata": {"name": f"{unique}-bad", "namespace": "default"}, "spec": {"size": 0}}
        rejected = testbed.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
        assert rejected.returncode != 0 and "spec.size" in rejected.stderr

        nobody_config = testbed.kubeconfig_for_token(testbed.nobody_token, tmp_path / "nobody.kubeconfig")
        nobody = client.CustomObjectsApi(config.new_client_from_config(config_file=str(nobody_config)))
        with pytest.raises(ApiException) as denied:
            nobody.list_namespaced_custom_object(CRD_GROUP, "v1", "default", "widgets")
        assert denied.value.status == 403
        # ... and so is kubectl with that identity.
        forbidden = testbed.kubectl("get", "widgets", kubeconfig=nobody_config, check=False)
        assert forbidden.returncode != 0 and "forbidden" in forbidden.stderr.lower()
    finally:
        testbed.kubectl("delete", "widget", unique, "--ignore-not-found", "--wait=false")
