"""Tenancy on the real test bed: DurabilityPolicies enforced at `kubectl apply` (the generated
admission policies, with every DurabilityPolicy as a parameter) and at reconcile time (the real
operator), read back from the API server and from Kafka."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from tests.e2e import helpers
from tests.e2e.helpers import Kube, condition, consume_all, metric_value, produce, ready, wait_for
from tests.testbed.operator_process import OperatorProcess

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("operator")]

ROOT = Path(__file__).resolve().parents[2]
ADMISSION_FILE = ROOT / "deploy" / "admissionpolicy.yaml"
TENANT_LABEL = "durabletopic.dev/e2e-tenant"
ADMISSION_LABEL = "durabletopic.dev/e2e-admission"
GROUP_PATH = "durabilitypolicy"


@dataclass(frozen=True)
class Teams:
    run: str
    a: str
    b: str

    def policy_name(self, team: str) -> str:
        return f"e2e-{self.run}-{team}"


def apply_policy(testbed: Any, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "durabletopic.dev/v1alpha1", "kind": "DurabilityPolicy", "metadata": {"name": name}}
    testbed.kubectl("apply", "-f", "-", input=json.dumps({**body, "spec": spec}))


def delete_policy(testbed: Any, name: str) -> None:
    testbed.kubectl("delete", GROUP_PATH, name, "--ignore-not-found", check=False)


def policy_status(testbed: Any, name: str) -> dict[str, Any]:
    result = testbed.kubectl("get", GROUP_PATH, name, "-o", "json")
    return dict(json.loads(result.stdout).get("status") or {})


def team_policy(teams: Teams, team: str, **extra: Any) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {TENANT_LABEL: f"{teams.run}-{team}"}},
        "topicNamePrefixes": ["{namespace}."],
        **extra,
    }


def apply_topic(testbed: Any, namespace: str, name: str, spec: dict[str, Any], *flags: str) -> Any:
    body = {"apiVersion": "durabletopic.dev/v1alpha1", "kind": "DurableTopic", "metadata": {"name": name}}
    return testbed.kubectl(
        "apply", "-n", namespace, *flags, "-f", "-", input=json.dumps({**body, "spec": spec}), check=False
    )


def stalled_message(kube: Kube, namespace: str, name: str, rule: str, timeout: float = 30) -> str:
    def probe() -> str | None:
        stalled = condition(kube.get(namespace, name), "Stalled")
        if stalled and stalled["status"] == "True" and stalled["reason"] == "PolicyViolation":
            message = str(stalled["message"])
            return message if f"rule {rule}" in message else None
        return None

    return wait_for(f"{namespace}/{name} Stalled by rule {rule}", probe, timeout)


@pytest.fixture(scope="module")
def admission(testbed: Any, crd_installed: None) -> Iterator[str]:
    """The generated admission policies, under names of this run, bound to namespaces labelled for it."""
    run = f"r{uuid.uuid4().hex[:6]}"  # a letter first: YAML reads 123456 or 12e456 as a number
    documents = [d for d in yaml.safe_load_all(ADMISSION_FILE.read_text()) if d]
    for document in documents:
        document["metadata"] = {"name": f"{document['metadata']['name']}-{run}"}
        if document["kind"] == "ValidatingAdmissionPolicyBinding":
            document["spec"]["policyName"] = f"{document['spec']['policyName']}-{run}"
            document["spec"]["matchResources"] = {
                "namespaceSelector": {"matchLabels": {ADMISSION_LABEL: run}}
            }
    testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    probe_namespace = f"e2e-adm-{run}"
    testbed.kubectl("create", "namespace", probe_namespace)
    testbed.kubectl("label", "namespace", probe_namespace, f"{ADMISSION_LABEL}={run}")
    deadline = time.monotonic() + 60
    while (
        apply_topic(
            testbed, probe_namespace, "probe", {"partitions": 1, "topicName": "__x"}, "--dry-run=server"
        ).returncode
        == 0
    ):
        assert time.monotonic() < deadline, "the admission policies did not take effect within 60 s"
        time.sleep(0.5)
    yield run
    for document in reversed(documents):
        testbed.kubectl(
            "delete",
            document["kind"].lower(),
            document["metadata"]["name"],
            "--ignore-not-found",
            check=False,
        )
    testbed.kubectl("delete", "namespace", probe_namespace, "--wait=false", check=False)


@pytest.fixture
def teams(testbed: Any, namespace: str, second_namespace: str) -> Iterator[Teams]:
    """Two namespaces, labelled as two teams; their policies are the test's to create."""
    run = uuid.uuid4().hex[:6]
    testbed.kubectl("label", "namespace", namespace, f"{TENANT_LABEL}={run}-a")
    testbed.kubectl("label", "namespace", second_namespace, f"{TENANT_LABEL}={run}-b")
    teams = Teams(run, namespace, second_namespace)
    yield teams
    for team in ("a", "b"):
        delete_policy(testbed, teams.policy_name(team))


@pytest.fixture
def second_namespace(testbed: Any) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    testbed.kubectl("create", "namespace", name)
    yield name
    testbed.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_two_teams_each_own_their_orders_and_an_intruder_changes_nothing(
    testbed: Any, kube: Kube, teams: Teams, kafka_admin: AdminClient, admission: str
) -> None:
    theirs = f"{teams.b}.orders"
    # Before any policy: an object in team a declares team b's topic, with a retention of one second.
    kube.create(teams.a, "steal", {"partitions": 2, "topicName": theirs, "config": {"retention.ms": "1000"}})
    ready(kube, teams.a, "steal")
    apply_policy(testbed, teams.policy_name("a"), team_policy(teams, "a"))
    apply_policy(testbed, teams.policy_name("b"), team_policy(teams, "b"))
    message = stalled_message(kube, teams.a, "steal", "topic-name-prefix")
    assert f"must start with '{teams.a}.'" in message and teams.policy_name("a") in message
    before = helpers.describe(kafka_admin, theirs)

    kube.create(teams.a, "orders", {"partitions": 1, "topicName": f"{teams.a}.orders"})
    kube.create(
        teams.b, "orders", {"partitions": 2, "topicName": theirs, "config": {"retention.ms": "86400000"}}
    )
    ready(kube, teams.a, "orders")
    owned = ready(kube, teams.b, "orders")
    assert owned["status"]["topicId"] == before.topic_id if before else False
    after = helpers.describe(kafka_admin, theirs)
    assert after is not None and after.overrides["retention.ms"] == "86400000", "team b's own spec applies"
    assert helpers.describe(kafka_admin, f"{teams.a}.orders") is not None

    # With admission on, the same intrusion is refused at apply, naming the rule's field and policy.
    testbed.kubectl("label", "namespace", teams.a, f"{ADMISSION_LABEL}={admission}")
    result = apply_topic(testbed, teams.a, "steal-2", {"partitions": 1, "topicName": theirs})
    assert result.returncode != 0
    assert f"spec.topicName ({theirs}) must start with '{teams.a}.'" in result.stderr
    assert teams.policy_name("a") in result.stderr

    # Deleting the intruder keeps team b's topic.
    kube.delete(teams.a, "steal")
    wait_for("steal gone", lambda: not kube.exists(teams.a, "steal") or None)
    assert helpers.describe(kafka_admin, theirs) is not None


def test_adoption_forbidden_leaves_the_topic_byte_for_byte_then_annotated_adopts_it(
    testbed: Any, kube: Kube, teams: Teams, kafka_admin: AdminClient
) -> None:
    legacy = f"{teams.a}.legacy"
    facts = helpers.create(
        kafka_admin, legacy, 2, 3, {"retention.ms": "123456789", "cleanup.policy": "compact,delete"}
    )
    produce(testbed.bootstrap_servers, legacy, 50)
    before = helpers.snapshot(kafka_admin)[legacy]
    apply_policy(testbed, teams.policy_name("a"), team_policy(teams, "a"))
    kube.create(teams.a, "legacy", {"partitions": 4, "topicName": legacy, "config": {"retention.ms": "1000"}})
    message = stalled_message(kube, teams.a, "legacy", "adoption")
    assert facts.topic_id in message and "adoption Forbidden" in message
    time.sleep(3)  # a few passes and a sweep
    assert helpers.snapshot(kafka_admin)[legacy] == before
    assert consume_all(testbed.bootstrap_servers, legacy, 50) == set(range(50))

    apply_policy(testbed, teams.policy_name("a"), team_policy(teams, "a", adoption="Annotated"))
    accept = "durabletopic.dev/accept-topic-id"
    kube.patch(teams.a, "legacy", {"metadata": {"annotations": {accept: "not-the-id"}}})
    wait_for(
        "annotation message",
        lambda: f"{accept}={facts.topic_id}" in stalled_message(kube, teams.a, "legacy", "adoption") or None,
    )
    assert helpers.snapshot(kafka_admin)[legacy] == before
    kube.patch(teams.a, "legacy", {"metadata": {"annotations": {accept: facts.topic_id}}})
    adopted = ready(kube, teams.a, "legacy")
    assert adopted["status"]["topicId"] == facts.topic_id
    after = helpers.describe(kafka_admin, legacy)
    assert after is not None and after.partitions == 4 and after.overrides["retention.ms"] == "1000"


def test_internal_topics_are_refused_at_apply_and_at_reconcile(
    testbed: Any, kube: Kube, namespace: str, kafka_admin: AdminClient, admission: str, second_namespace: str
) -> None:
    if helpers.describe(kafka_admin, "_schemas") is None:
        helpers.create(kafka_admin, "_schemas", 1, 3, {"cleanup.policy": "compact"})
    before = helpers.snapshot(kafka_admin)
    offsets_before = before.get("__consumer_offsets")

    testbed.kubectl("label", "namespace", second_namespace, f"{ADMISSION_LABEL}={admission}")
    for topic in ("__consumer_offsets", "_schemas"):
        result = apply_topic(
            testbed, second_namespace, "internal", {"partitions": 60, "topicName": topic}, "--dry-run=server"
        )
        assert result.returncode != 0 and "is an internal or system topic" in result.stderr, result.stderr

    kube.create(namespace, "offsets", {"partitions": 60, "topicName": "__consumer_offsets"})
    kube.create(
        namespace,
        "schemas",
        {"partitions": 1, "topicName": "_schemas", "config": {"cleanup.policy": "delete"}},
    )
    assert "internal or system topic" in stalled_message(kube, namespace, "offsets", "internal-topic")
    stalled_message(kube, namespace, "schemas", "internal-topic")
    time.sleep(2)
    after = helpers.snapshot(kafka_admin)
    assert after["_schemas"] == before["_schemas"]
    assert after.get("__consumer_offsets") == offsets_before


def test_config_partition_deletion_rules_and_the_topic_quota(
    testbed: Any,
    kube: Kube,
    teams: Teams,
    kafka_admin: AdminClient,
    admission: str,
    operator: OperatorProcess,
) -> None:
    name = teams.policy_name("a")
    rules = {
        "config": {
            "deniedKeys": ["segment.bytes"],
            "bounds": {"retention.ms": {"min": 3600000, "max": 2592000000}},
        },
        "maxPartitionsPerTopic": 6,
        "maxTopicsPerNamespace": 10,
        "deletionPolicies": ["Retain"],
    }
    apply_policy(testbed, name, team_policy(teams, "a", **rules))
    testbed.kubectl("label", "namespace", teams.a, f"{ADMISSION_LABEL}={admission}")
    topic = f"{teams.a}.t"
    refused = {
        "config-bounds": (
            {"config": {"retention.ms": "1000"}},
            "spec.config[retention.ms] (1000) is outside the bounds",
        ),
        "config-key-denied": (
            {"config": {"segment.bytes": "1048576"}},
            "spec.config[segment.bytes] is a key",
        ),
        "max-partitions-per-topic": (
            {"partitions": 12},
            "spec.partitions (12) is above the 6 partitions per topic",
        ),
        "deletion-policy": ({"deletionPolicy": "Delete"}, "spec.deletionPolicy (Delete) is not one"),
    }
    for rule, (spec, words) in refused.items():
        result = apply_topic(
            testbed, teams.a, "bad", {"partitions": 1, "topicName": topic, **spec}, "--dry-run=server"
        )
        assert result.returncode != 0, rule
        assert words in result.stderr and name in result.stderr, (rule, result.stderr)

    for i in range(11):
        kube.create(teams.a, f"t{i:02d}", {"partitions": 1, "topicName": f"{topic}{i:02d}"})
        time.sleep(1.1 if i == 9 else 0)  # creation timestamps have one-second resolution
    for i in range(10):
        ready(kube, teams.a, f"t{i:02d}", timeout=60)
    message = stalled_message(kube, teams.a, "t10", "max-topics-per-namespace")
    assert "maxTopicsPerNamespace" in message and "10 DurableTopics" in message
    assert helpers.describe(kafka_admin, f"{topic}10") is None

    def counted() -> dict[str, Any] | None:
        status = policy_status(testbed, name)
        return status if status.get("violations") == 1 and status.get("durableTopics") == 11 else None

    status = wait_for("the policy's status counts", counted)
    assert status["namespaces"] == 1
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {
        "Ready": "Enforced",
        "Conflicting": "NoOverlap",
    }

    def violation_counted() -> str | None:
        text = operator.metrics()
        counted = metric_value(
            text, "durabletopic_policy_violations", policy=name, rule="max-topics-per-namespace"
        )
        return text if counted == 1 else None

    metrics = wait_for("violation metric", violation_counted)
    assert metric_value(metrics, "durabletopic_policy_governed_durabletopics", policy=name) == 11
    assert metric_value(metrics, "durabletopic_policy_governed_namespaces", policy=name) == 1

    kube.delete(teams.a, "t00")
    ready(kube, teams.a, "t10", timeout=60)


def test_stricter_floors_stall_existing_objects_and_weaken_or_delete_nothing(
    testbed: Any, kube: Kube, teams: Teams, kafka_admin: AdminClient
) -> None:
    name = teams.policy_name("a")
    apply_policy(testbed, name, team_policy(teams, "a", minReplicationFactor=3))
    topic = f"{teams.a}.orders"
    kube.create(teams.a, "orders", {"partitions": 2, "topicName": topic, "deletionPolicy": "Delete"})
    ready(kube, teams.a, "orders")
    before = helpers.snapshot(kafka_admin)[topic]
    apply_policy(testbed, name, team_policy(teams, "a", minReplicationFactor=4, minInSyncReplicas=3))
    message = stalled_message(kube, teams.a, "orders", "min-replication-factor")
    assert f"spec.replicationFactor (3) is below the floor of 4 set by DurabilityPolicy {name}" in message
    time.sleep(2)
    assert helpers.snapshot(kafka_admin)[topic] == before
    kube.delete(teams.a, "orders")
    wait_for("orders gone", lambda: not kube.exists(teams.a, "orders") or None)
    assert helpers.snapshot(kafka_admin)[topic]["id"] == before["id"], "a violating object deletes nothing"


def _described_paths(schema: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    for name, prop in (schema.get("properties") or {}).items():
        field = f"{path}.{name}"
        yield field, prop["description"]
        nested = prop.get("items") or prop.get("additionalProperties") or prop
        yield from _described_paths(nested, field)


def test_kubectl_explain_documents_every_field(testbed: Any) -> None:
    from durabletopic.core.tenancy import crd as policy_crd

    schema = policy_crd.spec_schema()
    paths = list(_described_paths(schema, "durabilitypolicy.spec"))
    assert len(paths) >= 20
    for path, description in paths:
        explained = " ".join(testbed.kubectl("explain", path).stdout.split())
        assert " ".join(description.split())[:60] in explained, (path, explained[:400])
