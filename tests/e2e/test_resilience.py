"""The operator under failure: Kafka outages, API server restarts, operator crashes, failover."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator

import pytest

from tests.e2e import helpers
from tests.e2e.helpers import Kube, condition, metric_value, ready, reason_of, wait_for
from tests.testbed.operator_process import OPERATOR_NAMESPACE, OperatorProcess

pytestmark = [pytest.mark.testbed]

OUTAGE_SECONDS = float(os.environ.get("DURABLETOPIC_TEST_OUTAGE_SECONDS", "20"))


@pytest.mark.usefixtures("operator")
def test_kafka_outage(
    kube: Kube, namespace: str, testbed_faults, operator: OperatorProcess, kafka_admin
) -> None:  # type: ignore[no-untyped-def]
    before = f"{namespace}.before-outage"
    during = f"{namespace}.during-outage"
    kube.create(namespace, "before", {"topicName": before, "partitions": 1})
    ready(kube, namespace, "before")

    testbed_faults.kill_all_brokers()
    down_since = time.monotonic()
    kube.create(namespace, "during", {"topicName": during, "partitions": 1})
    obj = reason_of(kube, namespace, "during", "Reconciling", "KafkaUnavailable", timeout=40)
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    reason_of(kube, namespace, "before", "Reconciling", "KafkaUnavailable", timeout=40)
    wait_for("kafka_up 0", lambda: metric_value(operator.metrics(), "durabletopic_kafka_up") == 0.0, 20)
    pid = operator.process.pid if operator.process else None
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
    assert operator.alive and operator.process is not None and operator.process.pid == pid, (
        "no crash, no restart"
    )

    testbed_faults.start_all_brokers()
    back = time.monotonic()
    ready(kube, namespace, "during", timeout=15)
    ready(kube, namespace, "before", timeout=max(1.0, 15 - (time.monotonic() - back)))
    # the test's own long-lived client may need a moment to find the restarted brokers
    facts = wait_for("topic readable", lambda: helpers.describe(kafka_admin, during), 30)
    assert facts.overrides["min.insync.replicas"] == "2"
    assert metric_value(operator.metrics(), "durabletopic_kafka_up") == 1.0


@pytest.mark.usefixtures("operator")
def test_api_server_restart(kube: Kube, namespace: str, testbed_faults, operator: OperatorProcess) -> None:  # type: ignore[no-untyped-def]
    testbed_faults.kill_apiserver()
    time.sleep(2)
    testbed_faults.start_apiserver()
    kube.create(namespace, "after-restart", {"topicName": f"{namespace}.after-restart", "partitions": 1})
    ready(kube, namespace, "after-restart", timeout=60)
    assert operator.alive


@pytest.fixture
def two_operators(testbed, operator: OperatorProcess, tmp_path) -> Iterator[list[OperatorProcess]]:  # type: ignore[no-untyped-def]
    operator.stop()
    replicas = [
        OperatorProcess(
            bootstrap_servers=testbed.bootstrap_servers,
            kubeconfig=operator.kubeconfig,
            log_path=tmp_path / f"replica-{i}.log",
            env=operator.extra_env,
        )
        for i in range(2)
    ]
    for replica in replicas:
        replica.start()
    try:
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()
        operator.start()


def leaders(replicas: list[OperatorProcess]) -> list[int]:
    found = []
    for index, replica in enumerate(replicas):
        if replica.alive and metric_value(replica.metrics(), "durabletopic_leader") == 1.0:
            found.append(index)
    return found


def lease_holder(testbed) -> str | None:  # type: ignore[no-untyped-def]
    lease = json.loads(
        testbed.kubectl(
            "get", "lease", "durable-topic-operator", "-n", OPERATOR_NAMESPACE, "-o", "json"
        ).stdout
    )
    return lease["spec"].get("holderIdentity")


def test_leader_election_failover(
    kube: Kube, namespace: str, testbed, two_operators: list[OperatorProcess]
) -> None:  # type: ignore[no-untyped-def]
    current = wait_for(
        "one leader", lambda: leaders(two_operators) if len(leaders(two_operators)) == 1 else None, 30
    )
    (leader_index,) = current
    holder = lease_holder(testbed)
    assert holder
    kube.create(namespace, "ha-1", {"topicName": f"{namespace}.ha-1", "partitions": 1})
    ready(kube, namespace, "ha-1")

    follower = two_operators[1 - leader_index]
    follower_reconciles = metric_value(follower.metrics(), "durabletopic_reconcile_total", result="ok")
    assert follower_reconciles in (None, 0.0), "only the leader reconciles"

    two_operators[leader_index].kill()
    killed_at = time.monotonic()
    samples_with_two_leaders = 0
    while time.monotonic() - killed_at < 20:
        now_leading = leaders(two_operators)
        samples_with_two_leaders += len(now_leading) > 1
        if now_leading == [1 - leader_index]:
            break
        time.sleep(0.25)
    took = time.monotonic() - killed_at
    assert leaders(two_operators) == [1 - leader_index], "the other replica takes over"
    assert took <= 15, f"failover took {took:.1f} s"
    assert samples_with_two_leaders == 0
    assert lease_holder(testbed) not in (None, holder)

    kube.create(namespace, "ha-2", {"topicName": f"{namespace}.ha-2", "partitions": 1})
    ready(kube, namespace, "ha-2", timeout=30)


CRASH_OBJECTS = int(os.environ.get("DURABLETOPIC_TEST_CRASH_OBJECTS", "100"))


@pytest.mark.usefixtures("operator")
def test_operator_crashes_during_a_bulk_apply(
    kube: Kube, namespace: str, operator: OperatorProcess, kafka_admin, testbed
) -> None:  # type: ignore[no-untyped-def]
    names = [f"bulk-{i:04d}" for i in range(CRASH_OBJECTS)]
    manifest = "\n---\n".join(
        json.dumps(
            {
                "apiVersion": "durabletopic.dev/v1alpha1",
                "kind": "DurableTopic",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"topicName": f"{namespace}.{name}", "partitions": 1},
            }
        )
        for name in names
    )
    rng = random.Random(7)
    testbed.kubectl("apply", "-f", "-", input=manifest)
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 2.0))
        operator.kill()
        operator.start()

    def all_ready() -> bool:
        items = json.loads(testbed.kubectl("get", "dt", "-n", namespace, "-o", "json").stdout)["items"]
        return len(items) == len(names) and all(
            (condition(item, "Ready") or {}).get("status") == "True" for item in items
        )

    wait_for("all Ready after the crashes", all_ready, 120 + CRASH_OBJECTS // 2, interval=1)
    items = json.loads(testbed.kubectl("get", "dt", "-n", namespace, "-o", "json").stdout)["items"]
    assert not [
        i["metadata"]["name"] for i in items if (condition(i, "Stalled") or {}).get("status") == "True"
    ]
    for name in rng.sample(names, 10):
        facts = helpers.describe(kafka_admin, f"{namespace}.{name}")
        assert facts is not None
        assert (facts.partitions, facts.replication_factor) == (1, 3)
        assert facts.overrides["min.insync.replicas"] == "2"
        assert facts.overrides["unclean.leader.election.enable"] == "false"
    topics = helpers.list_topics(kafka_admin)
    assert {f"{namespace}.{name}" for name in names} <= topics
