"""The rules of the cluster-wide durability audit: every topic, managed or not, and the broker defaults. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from durabletopic.core.configs import MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION, is_enabled, parse_int
from durabletopic.core.findings import Finding
from durabletopic.core.model import ObservedTopic, Policy
from durabletopic.core.reasons import Severity

INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


def _finding(subject: str, rule: str, actual: str, required: str, severity: Severity) -> Finding:
    return Finding(subject, rule, severity, actual=actual, required=required)


def audit_cluster(
    topics: Iterable[ObservedTopic], broker_config: Mapping[str, str], policy: Policy
) -> list[Finding]:
    findings: list[Finding] = []
    for topic in sorted(topics, key=lambda t: t.name):
        findings += _audit_topic(topic, policy)
    findings += _audit_broker(broker_config, policy)
    return findings


def _audit_topic(topic: ObservedTopic, policy: Policy) -> list[Finding]:
    subject = f"topic/{topic.name}"
    found: list[Finding] = []
    rf = topic.replication_factor
    min_isr = topic.effective_min_insync_replicas()
    if rf < policy.min_replication_factor:
        found.append(
            _finding(
                subject,
                "replication-factor-below-floor",
                str(rf),
                f">= {policy.min_replication_factor}",
                Severity.HIGH,
            )
        )
    if min_isr < policy.min_insync_replicas:
        found.append(
            _finding(
                subject,
                "min-insync-below-floor",
                str(min_isr),
                f">= {policy.min_insync_replicas}",
                Severity.HIGH,
            )
        )
    if min_isr >= rf and rf > 0:
        found.append(
            _finding(
                subject,
                "min-insync-not-below-replication-factor",
                str(min_isr),
                f"< {rf}",
                Severity.MEDIUM,
            )
        )
    if is_enabled(topic.effective.get(UNCLEAN_LEADER_ELECTION)):
        found.append(_finding(subject, "unclean-leader-election-enabled", "true", "false", Severity.CRITICAL))
    return found


def _audit_broker(config: Mapping[str, str], policy: Policy) -> list[Finding]:
    found: list[Finding] = []
    # Kafka 4.1+ with eligible leader replicas (KIP-966) keeps min.insync.replicas at cluster level
    # only (copied from the controller's static config, 1 unless set; broker-level values removed):
    # every topic without an override gets it, and at 1 no replica is ever kept electable.
    min_isr = parse_int(config.get(MIN_INSYNC_REPLICAS))
    if min_isr is not None and min_isr < policy.min_insync_replicas:
        found.append(
            _finding(
                f"cluster-default/{MIN_INSYNC_REPLICAS}",
                "cluster-default-min-insync-below-floor",
                config[MIN_INSYNC_REPLICAS],
                f">= {policy.min_insync_replicas}",
                Severity.CRITICAL,
            )
        )
    floors = (
        (
            "default.replication.factor",
            policy.min_replication_factor,
            "broker-default-replication-factor-below-floor",
        ),
        (
            "offsets.topic.replication.factor",
            policy.min_replication_factor,
            "offsets-topic-replication-factor-below-floor",
        ),
        (
            "transaction.state.log.replication.factor",
            policy.min_replication_factor,
            "transaction-log-replication-factor-below-floor",
        ),
        (
            "transaction.state.log.min.isr",
            policy.min_insync_replicas,
            "transaction-log-min-insync-below-floor",
        ),
    )
    for key, floor, rule in floors:
        value = parse_int(config.get(key))
        if value is not None and value < floor:
            found.append(_finding(f"broker-default/{key}", rule, config[key], f">= {floor}", Severity.MEDIUM))
    if is_enabled(config.get(UNCLEAN_LEADER_ELECTION)):
        found.append(
            _finding(
                f"broker-default/{UNCLEAN_LEADER_ELECTION}",
                "broker-default-unclean-leader-election-enabled",
                "true",
                "false",
                Severity.CRITICAL,
            )
        )
    if is_enabled(config.get("auto.create.topics.enable")):
        found.append(
            _finding(
                "broker-default/auto.create.topics.enable",
                "broker-auto-create-topics-enabled",
                "true",
                "false",
                Severity.LOW,
            )
        )
    return found


def counts_by_rule(findings: Iterable[Finding]) -> Counter[tuple[str, str]]:
    return Counter((f.rule, str(f.severity)) for f in findings)
