"""The cluster audit's rules."""

from __future__ import annotations

from durabletopic.commands.audit import render_table
from durabletopic.core.audit import audit_cluster
from durabletopic.core.model import ObservedTopic, PartitionState, Policy


def topic(name: str, rf: int, min_isr: str, unclean: str = "false") -> ObservedTopic:
    replicas = tuple(range(1, rf + 1))
    return ObservedTopic(
        name,
        "id",
        (PartitionState(0, 1, replicas, replicas),),
        {},
        {"min.insync.replicas": min_isr, "unclean.leader.election.enable": unclean},
    )


SAFE_BROKER = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "auto.create.topics.enable": "false",
}


def test_compliant_cluster_has_no_findings() -> None:
    assert audit_cluster([topic("ok", 3, "2")], SAFE_BROKER, Policy()) == []
    assert render_table([]) == "compliant: no findings"


def test_weak_topics_and_defaults_are_findings() -> None:
    broker = dict(
        SAFE_BROKER, **{"unclean.leader.election.enable": "true", "auto.create.topics.enable": "true"}
    )
    findings = audit_cluster(
        [topic("rf1", 1, "1"), topic("unclean", 3, "2", "true"), topic("stuck", 3, "3")], broker, Policy()
    )
    rules = {(f.subject, f.rule) for f in findings}
    assert ("topic/rf1", "replication-factor-below-floor") in rules
    assert ("topic/rf1", "min-insync-below-floor") in rules
    assert ("topic/rf1", "min-insync-not-below-replication-factor") in rules
    assert ("topic/unclean", "unclean-leader-election-enabled") in rules
    assert ("topic/stuck", "min-insync-not-below-replication-factor") in rules
    assert (
        "broker-default/unclean.leader.election.enable",
        "broker-default-unclean-leader-election-enabled",
    ) in rules
    assert ("broker-default/auto.create.topics.enable", "broker-auto-create-topics-enabled") in rules
    critical = {f.rule for f in findings if f.severity == "critical"}
    assert critical == {"unclean-leader-election-enabled", "broker-default-unclean-leader-election-enabled"}


def test_a_cluster_default_min_isr_below_the_floor_is_critical() -> None:
    findings = audit_cluster([], dict(SAFE_BROKER, **{"min.insync.replicas": "1"}), Policy())
    assert [(f.subject, f.rule, f.severity, f.actual) for f in findings] == [
        ("cluster-default/min.insync.replicas", "cluster-default-min-insync-below-floor", "critical", "1")
    ]
    table = render_table(findings)
    assert table.splitlines()[0].split() == ["SUBJECT", "RULE", "ACTUAL", "REQUIRED", "SEVERITY"]
