"""Drift: how Kafka differs from what the spec and the policy require, how much each difference
matters (its severity), and what the operator says and does about it. Pure.

Drift is a difference the planner finds while the object's current generation was already
reconciled: someone changed the topic behind the operator's back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from durabletopic.core.configs import (
    KAFKA_DEFAULT_MIN_INSYNC_REPLICAS,
    MIN_INSYNC_REPLICAS,
    UNCLEAN_LEADER_ELECTION,
    is_enabled,
    parse_int,
    same_value,
)
from durabletopic.core.model import DurableTopicSpec, ObservedTopic
from durabletopic.core.reasons import DriftAction, EventType, Reason, Severity

TOPIC_EXISTS_KEY = "topic"
PARTITIONS_KEY = "partitions"
REPLICATION_FACTOR_KEY = "replicationFactor"

REVERTED = DriftAction.REVERTED
REPORTED = DriftAction.REPORTED

Event = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Difference:
    """One way Kafka differs from what the spec and the policy require."""

    key: str
    expected: str
    actual: str
    severity: Severity


def find_differences(spec: DurableTopicSpec, observed: ObservedTopic | None) -> list[Difference]:
    if observed is None:
        return [Difference(TOPIC_EXISTS_KEY, "present", "absent", Severity.WEAKENING)]
    found: list[Difference] = []
    if observed.partition_count != spec.partitions:
        found.append(
            Difference(PARTITIONS_KEY, str(spec.partitions), str(observed.partition_count), Severity.BENIGN)
        )
    if observed.replication_factor != spec.replication_factor:
        found.append(
            Difference(
                REPLICATION_FACTOR_KEY,
                str(spec.replication_factor),
                str(observed.replication_factor),
                replication_factor_severity(observed.replication_factor, spec.replication_factor),
            )
        )
    for key, expected in spec.desired_configs().items():
        override = observed.overrides.get(key)
        if same_value(override, expected):
            continue
        in_force = override if override is not None else observed.effective.get(key)
        actual = (
            override if override is not None else f"{observed.effective.get(key, 'unset')} (broker default)"
        )
        found.append(Difference(key, expected, actual, config_severity(key, expected, in_force)))
    return found


def replication_factor_severity(actual: int, expected: int) -> Severity:
    """Fewer replicas than asked weaken the topic; more are benign."""
    return Severity.WEAKENING if actual < expected else Severity.BENIGN


def config_severity(key: str, expected: str, in_force: str | None) -> Severity:
    """A config in force that lets Kafka lose acknowledged messages, or accept them with fewer copies,
    than the spec asks for weakens the topic; any other difference is benign."""
    if key == UNCLEAN_LEADER_ELECTION:
        return Severity.WEAKENING if is_enabled(in_force) else Severity.BENIGN
    if key == MIN_INSYNC_REPLICAS:
        actual = parse_int(in_force) if in_force else KAFKA_DEFAULT_MIN_INSYNC_REPLICAS
        wanted = parse_int(expected)
        if actual is None or wanted is None:
            return Severity.WEAKENING
        return Severity.WEAKENING if actual < wanted else Severity.BENIGN
    return Severity.BENIGN


class PlanView(Protocol):
    """What a verdict needs of a plan."""

    @property
    def actions(self) -> tuple[object, ...]: ...
    @property
    def differences(self) -> tuple[Difference, ...]: ...
    @property
    def enforced(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class DriftVerdict:
    action: DriftAction
    counted: tuple[Difference, ...]
    events: tuple[Event, ...]
    entries: list[dict[str, str]]


def judge_drift(
    topic: str, first: PlanView, final: PlanView, previous: Sequence[Mapping[str, str]], now: str
) -> DriftVerdict:
    """`first` is the plan against the drifted topic, `final` the plan after the operator acted.

    Under `Report` a key is counted and announced once, when it starts to drift; under `Enforce`
    every revert is.
    """
    reverted = first.enforced and bool(first.actions) and not final.differences
    described = "; ".join(
        f"{d.key} is {d.actual}, expected {d.expected} ({d.severity})" for d in first.differences
    )
    if reverted:
        keys = ", ".join(d.key for d in first.differences)
        lost = any(d.key == TOPIC_EXISTS_KEY for d in first.differences)
        detail = " The topic had been deleted and was recreated empty: its data was lost." if lost else ""
        events: tuple[Event, ...] = (
            (
                EventType.WARNING,
                Reason.DRIFT_DETECTED,
                f"Kafka topic {topic} drifted from its spec: {described}.",
            ),
            (
                EventType.WARNING if lost else EventType.NORMAL,
                Reason.DRIFT_REVERTED,
                f"Kafka topic {topic}: put back {keys}.{detail}",
            ),
        )
        return DriftVerdict(REVERTED, first.differences, events, [])

    already = {d.get("key") for d in previous}
    new = tuple(d for d in first.differences if d.key not in already)
    events = ()
    if new:
        message = f"Kafka topic {topic} drifted from its spec: {described}; driftPolicy is Report, nothing was changed."
        events = ((EventType.WARNING, Reason.DRIFT_DETECTED, message),)
    return DriftVerdict(REPORTED, new, events, drift_entries(first.differences, previous, REPORTED, now))


def drift_entries(
    differences: Sequence[Difference], previous: Sequence[Mapping[str, str]], action: DriftAction, now: str
) -> list[dict[str, str]]:
    """`status.drift`: one entry per drifted key; firstSeen survives while the key stays drifted."""
    first_seen = {d.get("key"): d.get("firstSeen") for d in previous if isinstance(d, Mapping)}
    return [
        {
            "key": d.key,
            "expected": d.expected,
            "actual": d.actual,
            "severity": str(d.severity),
            "firstSeen": first_seen.get(d.key) or now,
            "action": str(action),
        }
        for d in differences
    ]


def reported_keys(entries: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """(key, severity) of every drift that stands reported: what the drift gauge shows."""
    return [(d["key"], d["severity"]) for d in entries if d.get("action") == REPORTED]
