"""The cluster-wide durability audit: every topic, managed or not, and the broker defaults.

`audit_cluster` is pure; `read_cluster` gathers its input with batched admin requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Protocol

from durabletopic.model import MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION, ObservedTopic, Policy

INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


class AuditSeverity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Finding:
    subject: str
    rule: str
    actual: str
    required: str
    severity: AuditSeverity

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


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
            Finding(
                subject,
                "replication-factor-below-floor",
                str(rf),
                f">= {policy.min_replication_factor}",
                AuditSeverity.HIGH,
            )
        )
    if min_isr < policy.min_insync_replicas:
        found.append(
            Finding(
                subject,
                "min-insync-below-floor",
                str(min_isr),
                f">= {policy.min_insync_replicas}",
                AuditSeverity.HIGH,
            )
        )
    if min_isr >= rf and rf > 0:
        found.append(
            Finding(
                subject,
                "min-insync-not-below-replication-factor",
                str(min_isr),
                f"< {rf}",
                AuditSeverity.MEDIUM,
            )
        )
    if topic.effective.get(UNCLEAN_LEADER_ELECTION, "false").lower() == "true":
        found.append(Finding(subject, "unclean-leader-election-enabled", "true", "false", AuditSeverity.HIGH))
    return found


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _audit_broker(config: Mapping[str, str], policy: Policy) -> list[Finding]:
    found: list[Finding] = []
    floors = (
        (
            "default.replication.factor",
            policy.min_replication_factor,
            "broker-default-replication-factor-below-floor",
        ),
        (MIN_INSYNC_REPLICAS, policy.min_insync_replicas, "broker-default-min-insync-below-floor"),
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
        if key in config and _int(config[key], floor) < floor:
            found.append(
                Finding(f"broker-default/{key}", rule, config[key], f">= {floor}", AuditSeverity.MEDIUM)
            )
    if config.get(UNCLEAN_LEADER_ELECTION, "false").lower() == "true":
        found.append(
            Finding(
                f"broker-default/{UNCLEAN_LEADER_ELECTION}",
                "broker-default-unclean-leader-election-enabled",
                "true",
                "false",
                AuditSeverity.HIGH,
            )
        )
    if config.get("auto.create.topics.enable", "false").lower() == "true":
        found.append(
            Finding(
                "broker-default/auto.create.topics.enable",
                "broker-auto-create-topics-enabled",
                "true",
                "false",
                AuditSeverity.LOW,
            )
        )
    return found


def counts_by_rule(findings: Iterable[Finding]) -> Counter[tuple[str, str]]:
    return Counter((f.rule, str(f.severity)) for f in findings)


class ClusterReader(Protocol):
    async def list_topics(self) -> set[str]: ...
    async def describe_topics(self, names: list[str]) -> dict[str, ObservedTopic | None]: ...
    async def broker_configs(self) -> dict[str, str]: ...


async def read_cluster(kafka: ClusterReader) -> tuple[list[ObservedTopic], dict[str, str]]:
    names = sorted(await kafka.list_topics())
    described = await kafka.describe_topics(names)
    topics = [t for t in described.values() if t is not None]
    return topics, await kafka.broker_configs()


def render_table(findings: list[Finding]) -> str:
    if not findings:
        return "compliant: no findings"
    header = ("SUBJECT", "RULE", "ACTUAL", "REQUIRED", "SEVERITY")
    rows = [header] + [(f.subject, f.rule, f.actual, f.required, str(f.severity)) for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
