"""The tenancy rules of the core: selectors, each rule, the strictest-wins merge, quotas, adoption,
prefix conflicts and the policy's status."""

from __future__ import annotations

from typing import Any

import pytest

from durabletopic.core.conditions import says_nothing_new
from durabletopic.core.model import DurableTopicSpec
from durabletopic.core.tenancy import internal
from durabletopic.core.tenancy.model import Adoption, NamespaceSelector, TenantPolicy
from durabletopic.core.tenancy.rules import (
    RULE_NAMES,
    TopicRequest,
    adoption_mode,
    check_adoption,
    check_quotas,
    check_request,
    governing,
)
from durabletopic.core.tenancy.status import Governed, conflicts, policy_status


def tenant(name: str = "p", **spec: Any) -> TenantPolicy:
    spec.setdefault("namespaceSelector", {"matchLabels": {}})
    return TenantPolicy.from_body({"metadata": {"name": name, "generation": 1}, "spec": spec})


def request(namespace: str = "team-a", name: str = "orders", **spec: Any) -> TopicRequest:
    spec.setdefault("partitions", 3)
    return TopicRequest.of(namespace, name, DurableTopicSpec.model_validate(spec))


def rules_of(policies: list[TenantPolicy], req: TopicRequest) -> list[tuple[str, str, str]]:
    return [(v.policy, v.rule, v.field) for v in check_request(policies, req)]


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {"a": "1"}, False),
        ({"matchLabels": {}}, {}, True),
        ({"matchLabels": {"tenant": "a"}}, {"tenant": "a"}, True),
        ({"matchLabels": {"tenant": "a"}}, {"tenant": "b"}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod"]}]},
            {"tier": "prod"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]},
            {"tier": "prod"},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "x"}, False),
    ],
)
def test_namespace_selector(selector: dict[str, Any], labels: dict[str, str], selected: bool) -> None:
    assert NamespaceSelector.model_validate(selector).selects(labels) is selected


def test_each_rule_names_its_field_and_policy() -> None:
    policy = tenant(
        "team",
        minReplicationFactor=4,
        minInSyncReplicas=3,
        topicNamePrefixes=["{namespace}."],
        config={
            "allowedKeys": ["retention.ms", "segment.ms"],
            "deniedKeys": ["segment.ms"],
            "bounds": {"retention.ms": {"min": 3600000, "max": 2592000000}},
        },
        maxPartitionsPerTopic=6,
        deletionPolicies=["Retain"],
    )
    req = request(
        partitions=12,
        replicationFactor=3,
        minInSyncReplicas=2,
        deletionPolicy="Delete",
        config={"retention.ms": "1", "segment.ms": "5", "flush.ms": "1"},
    )
    assert rules_of([policy], req) == [
        ("team", "min-replication-factor", "spec.replicationFactor"),
        ("team", "min-insync-replicas", "spec.minInSyncReplicas"),
        ("team", "topic-name-prefix", "metadata.name"),
        ("team", "config-key-allowed", "spec.config[flush.ms]"),
        ("team", "config-key-denied", "spec.config[segment.ms]"),
        ("team", "config-bounds", "spec.config[retention.ms]"),
        ("team", "max-partitions-per-topic", "spec.partitions"),
        ("team", "deletion-policy", "spec.deletionPolicy"),
    ]
    assert (
        rules_of(
            [policy],
            request(
                topicName="team-a.orders",
                replicationFactor=4,
                minInSyncReplicas=3,
                config={"retention.ms": "3600000"},
            ),
        )
        == []
    )


@pytest.mark.parametrize(
    ("value", "bound", "ok"),
    [
        ("-1", {"min": 1}, False),
        ("-1", {"min": 1, "allowUnlimited": True}, True),
        ("7d", {"min": 1}, False),
        ("99999999999999999999", {"min": 1}, False),
        ("5", {"max": 5}, True),
        ("6", {"max": 5}, False),
    ],
)
def test_config_bounds(value: str, bound: dict[str, Any], ok: bool) -> None:
    policy = tenant(config={"bounds": {"retention.ms": bound}})
    assert (rules_of([policy], request(config={"retention.ms": value})) == []) is ok


def test_several_policies_the_strictest_wins() -> None:
    loose = tenant("loose", minReplicationFactor=3, topicNamePrefixes=["team-"], maxTopicsPerNamespace=10)
    strict = tenant("strict", minReplicationFactor=5, topicNamePrefixes=["team-a."], maxTopicsPerNamespace=2)
    req = request(topicName="team-b.orders", replicationFactor=4, minInSyncReplicas=2)
    assert rules_of([loose, strict], req) == [
        ("strict", "min-replication-factor", "spec.replicationFactor"),
        ("strict", "topic-name-prefix", "spec.topicName"),
    ], "a name must start with a prefix of every policy: the intersection"
    refused = check_quotas([loose, strict], [(i, request(name=f"t{i}")) for i in range(3)])
    assert list(refused) == [2] and refused[2].policy == "strict"


def test_partition_quota_skips_what_it_refuses() -> None:
    policy = tenant(maxPartitionsPerNamespace=10)
    sizes = [8, 3, 2]
    refused = check_quotas([policy], [(i, request(partitions=n)) for i, n in enumerate(sizes)])
    assert list(refused) == [1]
    assert "would bring namespace team-a to 11 partitions" in refused[1].message


def test_governing_policies_by_namespace_labels() -> None:
    a = tenant("a", namespaceSelector={"matchLabels": {"tenant": "a"}})
    everyone = tenant("all")
    broken = TenantPolicy.from_body({"metadata": {"name": "x"}, "spec": {"minReplicationFactor": "many"}})
    assert broken.problem is not None
    assert [p.name for p in governing([a, everyone, broken], {"tenant": "a"})] == ["a", "all"]
    assert [p.name for p in governing([a, everyone, broken], {})] == ["all"]


def test_adoption_is_the_strictest_and_allowed_without_policies() -> None:
    assert adoption_mode([]) == (Adoption.ALLOWED, None)
    annotated, forbidden = tenant("ann", adoption="Annotated"), tenant("forb")
    assert adoption_mode([annotated, forbidden]) == (Adoption.FORBIDDEN, "forb")
    assert check_adoption([annotated], "t", "id-1", "id-1", "accept") is None
    refused = check_adoption([annotated], "t", "id-1", "id-2", "accept")
    assert refused is not None and "accept=id-1" in refused.message
    assert check_adoption([tenant(adoption="Allowed")], "t", "id-1", None, "accept") is None


@pytest.mark.parametrize(
    ("name", "internal_topic"),
    [
        ("__consumer_offsets", True),
        ("__transaction_state", True),
        ("_schemas", True),
        ("connect-offsets", True),
        ("connect-status", True),
        ("connect-configs", True),
        ("orders", False),
        ("_orders", False),
    ],
)
def test_internal_topics(name: str, internal_topic: bool) -> None:
    assert internal.is_internal(name) is internal_topic
    assert not internal.is_internal(name, {name})


def test_prefix_conflicts_only_between_namespaces_not_shared() -> None:
    namespaces = {
        "team-a": {"tenant": "a"},
        "team-b": {"tenant": "b"},
        "shared": {"tenant": "a", "also": "b"},
    }
    a = tenant("a", namespaceSelector={"matchLabels": {"tenant": "a"}}, topicNamePrefixes=["{namespace}."])
    b = tenant("b", namespaceSelector={"matchLabels": {"tenant": "b"}}, topicNamePrefixes=["{namespace}."])
    shop = tenant(
        "shop", namespaceSelector={"matchLabels": {"tenant": "b"}}, topicNamePrefixes=["team-a.orders"]
    )
    floors_only = tenant("floors", minReplicationFactor=3)
    found = conflicts([a, b, shop, floors_only], namespaces)
    assert found == {"a": ["shop"], "b": [], "shop": ["a"], "floors": []}


def test_policy_status() -> None:
    policy = tenant("a")
    status = policy_status(policy, Governed(2, 5, 1), ["b"], {}, "2026-11-28T12:00:00Z")
    assert (status["namespaces"], status["durableTopics"], status["violations"]) == (2, 5, 1)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Ready", "True", "Enforced"),
        ("Conflicting", "True", "OverlappingPrefixes"),
    ]
    later = policy_status(policy, Governed(2, 5, 1), ["b"], status, "2026-11-28T13:00:00Z")
    assert says_nothing_new(later, status)
    assert later["conditions"][0]["lastTransitionTime"] == "2026-11-28T12:00:00Z"
    broken = TenantPolicy.from_body({"metadata": {"name": "x"}, "spec": {"adoption": "Sometimes"}})
    assert policy_status(broken, Governed(), [], {}, "t")["conditions"][0]["reason"] == "InvalidPolicy"


def test_allowed_clusters() -> None:
    prod = tenant("prod-only", allowedClusters=["prod-eu", "prod-us"])
    assert rules_of([prod], request(clusterRef={"name": "prod-us"})) == []
    assert rules_of([prod], request(clusterRef={"name": "dev"})) == [
        ("prod-only", "allowed-clusters", "spec.clusterRef.name")
    ]
    [violation] = check_request([prod], request(clusterRef={"name": "dev"}))
    assert "(dev) is not among the KafkaClusters DurabilityPolicy prod-only allows (prod-eu, prod-us)" in (
        violation.message
    )
    # Without clusterRef the topic goes to the default cluster: always allowed, even by an empty list.
    nothing_named = tenant("default-only", allowedClusters=[])
    assert rules_of([prod, nothing_named], request()) == []
    assert request().cluster is None
    assert rules_of([nothing_named], request(clusterRef={"name": "prod-eu"})) == [
        ("default-only", "allowed-clusters", "spec.clusterRef.name")
    ]
    # Absent: any cluster. With several policies, a cluster every one allows.
    assert rules_of([tenant("any")], request(clusterRef={"name": "dev"})) == []
    eu = tenant("eu", allowedClusters=["prod-eu"])
    assert rules_of([prod, eu], request(clusterRef={"name": "prod-us"})) == [
        ("eu", "allowed-clusters", "spec.clusterRef.name")
    ]


def test_every_rule_has_a_name_for_the_metrics() -> None:
    assert len(set(RULE_NAMES)) == len(RULE_NAMES) == 12
