"""KafkaCluster in the core: the CRD generated from its model, the rules over several fields, and the
status the operator writes from what it saw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from durabletopic.core.clusters import crd
from durabletopic.core.clusters.model import ClusterObject
from durabletopic.core.clusters.status import ClusterObservation, cluster_status
from durabletopic.core.conditions import MAX_MESSAGE
from durabletopic.core.model import Broker, ClusterInfo
from durabletopic.core.reasons import Reason

SASL = {"mechanism": "SCRAM-SHA-512", "secretRef": {"namespace": "kafka", "name": "dto-user"}}
MUTUAL_TLS = {"secretRef": {"namespace": "kafka", "name": "dto-cert"}}
T0, T1, T2 = "2026-11-28T12:00:00Z", "2026-11-28T12:01:00Z", "2026-11-28T12:02:00Z"
BROKERS = (Broker(3, "r3"), Broker(1, "r1"), Broker(2, None))


def version() -> dict[str, Any]:
    document = crd.build()
    versions = document["spec"]["versions"]
    assert len(versions) == 1
    return dict(versions[0])


def properties(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property under `schema`, with its path, as `kubectl explain` walks them."""
    for key, sub in (schema.get("properties") or {}).items():
        yield f"{path}.{key}", sub
        yield from properties(sub, f"{path}.{key}")
        if isinstance(sub.get("items"), dict):
            yield from properties(sub["items"], f"{path}.{key}[]")


def test_crd_names_scope_and_columns() -> None:
    document = crd.build()
    assert document["metadata"]["name"] == "kafkaclusters.durabletopic.dev"
    names = document["spec"]["names"]
    assert (names["kind"], names["plural"], names["singular"], names["shortNames"]) == (
        "KafkaCluster",
        "kafkaclusters",
        "kafkacluster",
        ["kc"],
    )
    assert document["spec"]["scope"] == "Cluster"
    v = version()
    assert (v["name"], v["subresources"]) == ("v1alpha1", {"status": {}})
    columns = {c["name"].upper(): (c["type"], c["jsonPath"]) for c in v["additionalPrinterColumns"]}
    assert columns == {
        "READY": ("string", '.status.conditions[?(@.type=="Ready")].status'),
        "CLUSTER-ID": ("string", ".status.clusterId"),
        "BROKERS": ("integer", ".status.brokerCount"),
        "TOPICS": ("integer", ".status.durableTopics"),
        "AGE": ("date", ".metadata.creationTimestamp"),
    }
    # Every column reads a field the status schema declares, with the column's type.
    status = v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["brokerCount"]["type"] == status["durableTopics"]["type"] == "integer"
    assert status["clusterId"]["type"] == "string"


def test_kubectl_explain_documents_every_spec_field() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["description"] and spec["required"] == ["bootstrapServers"]
    found = dict(properties(spec))
    undocumented = [path for path, schema in found.items() if not schema.get("description")]
    assert undocumented == []
    # Every field of the model is in the schema, by its alias.
    assert {
        ".bootstrapServers",
        ".clusterId",
        ".authentication.sasl.mechanism",
        ".authentication.sasl.secretRef.passwordKey",
        ".authentication.mutualTls.secretRef.keyKey",
        ".tls.enabled",
        ".tls.caRef.kind",
        ".floors.minInSyncReplicas",
        ".sweepIntervalSeconds",
        ".auditIntervalSeconds",
    } <= set(found)
    assert found[".authentication.sasl.mechanism"]["enum"] == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    assert found[".tls.caRef.kind"]["default"] == "Secret"
    assert found[".tls.caRef"]["required"] == ["namespace", "name"]
    assert found[".sweepIntervalSeconds"] == {
        "type": "number",
        "description": found[".sweepIntervalSeconds"]["description"],
        "minimum": 1,
    }
    # Structural: no node of pydantic's JSON schema the API server refuses.
    assert not [p for p, s in found.items() if {"anyOf", "$ref", "title"} & set(s)]


def test_crd_cel_rules_sit_on_the_objects_they_judge() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    [one_method] = spec["authentication"]["x-kubernetes-validations"]
    assert one_method["rule"] == "has(self.sasl) != has(self.mutualTls)"
    assert one_method["message"].startswith("spec.authentication")
    [ordered] = spec["floors"]["x-kubernetes-validations"]
    assert ordered["fieldPath"] == ".minInSyncReplicas"


def test_status_schema_holds_what_the_builder_writes() -> None:
    status = version()["schema"]["openAPIV3Schema"]["properties"]["status"]
    written = cluster_status(
        "prod",
        2,
        ClusterObservation.connected(ClusterInfo(BROKERS, 1, "abc"), T0, 4, {("rule-a", "high"): 1}),
        {},
        T0,
    )
    assert set(written) <= set(status["properties"])
    assert set(status["properties"]) == set(written), "the builder writes every field (when known)"
    for reason in crd.READY_REASONS:
        assert str(reason) in status["properties"]["conditions"]["description"]
    assert status["properties"]["conditions"]["items"]["properties"]["type"]["description"] == "Ready."


@pytest.mark.parametrize(
    ("authentication", "readable"),
    [
        ({"sasl": SASL}, True),
        ({"mutualTls": MUTUAL_TLS}, True),
        ({"sasl": SASL, "mutualTls": MUTUAL_TLS}, False),
        ({}, False),
    ],
)
def test_authentication_is_one_of_sasl_and_mutual_tls(authentication: dict[str, Any], readable: bool) -> None:
    body = {
        "metadata": {"name": "c"},
        "spec": {"bootstrapServers": "b:9093", "authentication": authentication},
    }
    cluster = ClusterObject.from_body(body)
    assert (cluster.problem is None) is readable
    if not readable:
        assert cluster.spec is None
        assert cluster.problem == "spec.authentication must set exactly one of sasl and mutualTls"


def test_floors_must_leave_room_for_a_topic() -> None:
    body = {
        "spec": {"bootstrapServers": "b:9093", "floors": {"minReplicationFactor": 3, "minInSyncReplicas": 3}}
    }
    problem = ClusterObject.from_body(body).problem
    assert problem is not None and problem.startswith("spec.floors.minInSyncReplicas must be less than")
    body["spec"]["floors"] = {"minReplicationFactor": 3, "minInSyncReplicas": 2}
    assert ClusterObject.from_body(body).problem is None


# -------------------------------------------------------------------------------------------- status


def connected(topics: int = 4, audit: dict[tuple[str, str], int] | None = None) -> ClusterObservation:
    return ClusterObservation.connected(ClusterInfo(BROKERS, 1, "abc"), T0, topics, audit)


def test_connected_status() -> None:
    audit = {("replication-factor-below-floor", "high"): 2, ("a-low-rule", "low"): 1, ("m", "medium"): 0}
    status = cluster_status("prod", 3, connected(audit=audit), {}, T0)
    assert status == {
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Connected",
                "message": "KafkaCluster prod reaches Kafka cluster abc: 3 broker(s), controller 1.",
                "lastTransitionTime": T0,
                "observedGeneration": 3,
            }
        ],
        "clusterId": "abc",
        "brokers": [{"id": 1, "rack": "r1"}, {"id": 2}, {"id": 3, "rack": "r3"}],
        "brokerCount": 3,
        "controllerId": 1,
        "lastContactTime": T0,
        "durableTopics": 4,
        "auditFindings": [
            {"rule": "replication-factor-below-floor", "severity": "high", "count": 2},
            {"rule": "a-low-rule", "severity": "low", "count": 1},
        ],
    }


def test_a_problem_keeps_the_last_facts_and_the_transition_times_follow_ready() -> None:
    first = cluster_status("prod", 1, connected(audit={("rule-a", "high"): 1}), {}, T0)
    again = cluster_status(
        "prod", 1, ClusterObservation.connected(ClusterInfo(BROKERS, 2, "abc"), T1, 5), first, T1
    )
    assert again["conditions"][0]["lastTransitionTime"] == T0, "Ready held: its transition time too"
    assert (again["controllerId"], again["lastContactTime"], again["durableTopics"]) == (2, T1, 5)
    assert (
        again["auditFindings"]
        == first["auditFindings"]
        == [{"rule": "rule-a", "severity": "high", "count": 1}]
    )

    lost = cluster_status(
        "prod", 1, ClusterObservation.failed(Reason.UNREACHABLE, "No broker answers.", 5), again, T2
    )
    [ready] = lost["conditions"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "Unreachable",
        "No broker answers.",
    )
    assert ready["lastTransitionTime"] == T2
    for key in ("clusterId", "brokers", "brokerCount", "controllerId", "lastContactTime"):
        assert lost[key] == again[key], key
    # The id of another cluster is never recorded: the status keeps the pinned one.
    other = ClusterObservation(
        ClusterObservation.failed(Reason.CLUSTER_ID_MISMATCH, "Kafka reports xyz.", 5).problem,
        cluster_id="xyz",
        brokers=(Broker(9, None),),
    )
    mismatch = cluster_status("prod", 1, other, lost, T2)
    assert (mismatch["clusterId"], mismatch["brokerCount"]) == ("abc", 3)
    assert mismatch["conditions"][0]["lastTransitionTime"] == T2


def test_a_status_before_any_contact_says_only_what_is_known() -> None:
    status = cluster_status(
        "dev", 1, ClusterObservation.failed(Reason.SECRET_NOT_FOUND, "Secret kafka/dto not found.", 0), {}, T0
    )
    assert set(status) == {"observedGeneration", "conditions", "durableTopics"}
    assert status["conditions"][0]["reason"] == "SecretNotFound"


def test_cluster_id_is_kept_when_kafka_does_not_report_one_and_messages_are_bounded() -> None:
    pinned = cluster_status("prod", 1, connected(), {}, T0)
    anonymous = ClusterObservation.connected(ClusterInfo(BROKERS, None, None), T1, 1)
    status = cluster_status("prod", 1, anonymous, pinned, T1)
    assert status["clusterId"] == "abc" and "controllerId" not in status
    assert status["conditions"][0]["message"] == "KafkaCluster prod reaches Kafka cluster abc: 3 broker(s)."
    long = ClusterObservation.failed(Reason.INVALID_SPEC, "x" * 10_000, 0)
    assert len(cluster_status("prod", 2, long, status, T2)["conditions"][0]["message"]) == MAX_MESSAGE
