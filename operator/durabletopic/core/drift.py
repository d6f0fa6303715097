"""Drift: how Kafka differs from what the spec and the policy require, how much each difference
matters (its severity), and what the operator says and does about it. Pure.

Drift is a difference the planner finds while the object's current generation was already
reconciled: someone changed the topic behind the operator's back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
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
# Drift entries written to status: the first ones, weakening first; values cut to this length.
MAX_DRIFT_ENTRIES = 50
MAX_DRIFT_VALUE = 256

Event = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Difference:
    """One way Kafka differs from what the spec and the policy require."""

    key: str
    expected: str
    actual: str
    severity: Severity


def find_differences(
    spec: DurableTopicSpec, observed: ObservedTopic | None, replication_factor: int | None = None
) -> list[Difference]:
    """Every way `observed` differs from `spec`. `replication_factor` is the replicas that hold the
    data (a reassignment's new replicas do not count until they are in); by default, all of them."""
    if observed is None:
        return [Difference(TOPIC_EXISTS_KEY, "present", "absent", Severity.WEAKENING)]
    found: list[Difference] = []
    if observed.partition_count != spec.partitions:
        found.append(
            Difference(PARTITIONS_KEY, str(spec.partitions), str(observed.partition_count), Severity.BENIGN)
        )
    rf = observed.replication_factor if replication_factor is None else replication_factor
    if rf != spec.replication_factor:
        found.append(
            Difference(
                REPLICATION_FACTOR_KEY,
                str(spec.replication_factor),
                str(rf),
                replication_factor_severity(rf, spec.replication_factor),
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
    def differences(self) -> tuple[Difference, ...]: ...


@dataclass(frozen=True, slots=True)
class DriftVerdict:
    """What a pass concludes about drift: which keys it counts (put back, or newly reported), the
    events, and `status.drift` (the keys that still differ, reported)."""

    counted: tuple[tuple[Difference, DriftAction], ...]
    events: tuple[Event, ...]
    entries: list[dict[str, str]]
    reverted: bool

    @property
    def action(self) -> DriftAction:
        return REVERTED if self.reverted else REPORTED


def judge_drift(
    topic: str,
    first: PlanView,
    final: PlanView,
    previous: Sequence[Mapping[str, str]],
    now: str,
    fixed: Collection[str] = (),
) -> DriftVerdict:
    """`first` is the plan against the drifted topic, `final` the plan after the operator acted, and
    `fixed` the keys this pass's actions put back (Kafka accepted them).

    A put-back key is judged by the action, not by reading Kafka again: a read right after a change
    may still show the old value. Every revert is counted and announced; a key that stays different
    (driftPolicy Report, or more durable than asked) is counted and announced once, when it starts.
    """
    reverted = tuple(d for d in first.differences if d.key in fixed)
    remaining = tuple(d for d in final.differences if d.key not in fixed)
    already = {d.get("key") for d in previous}
    new = tuple(d for d in remaining if d.key not in already)
    events: list[Event] = []
    if reverted:
        keys = ", ".join(d.key for d in reverted)
        lost = any(d.key == TOPIC_EXISTS_KEY for d in reverted)
        detail = " The topic had been deleted and was recreated empty: its data was lost." if lost else ""
        events += [
            (
                EventType.WARNING,
                Reason.DRIFT_DETECTED,
                f"Kafka topic {topic} drifted from its spec: {_described(reverted)}.",
            ),
            (
                EventType.WARNING if lost else EventType.NORMAL,
                Reason.DRIFT_REVERTED,
                f"Kafka topic {topic}: put back {keys}.{detail}",
            ),
        ]
    if new:
        events.append(
            (
                EventType.WARNING,
                Reason.DRIFT_DETECTED,
                f"Kafka topic {topic} drifted from its spec: {_described(new)}; reported, nothing was changed.",
            )
        )
    counted = tuple((d, REVERTED) for d in reverted) + tuple((d, REPORTED) for d in new)
    return DriftVerdict(
        counted, tuple(events), drift_entries(remaining, previous, REPORTED, now), bool(reverted)
    )


def _described(differences: Sequence[Difference]) -> str:
    return "; ".join(f"{d.key} is {d.actual}, expected {d.expected} ({d.severity})" for d in differences)


def drift_entries(
    differences: Sequence[Difference], previous: Sequence[Mapping[str, str]], action: DriftAction, now: str
) -> list[dict[str, str]]:
    """`status.drift`: one entry per drifted key; firstSeen survives while the key stays drifted."""
    first_seen = {d.get("key"): d.get("firstSeen") for d in previous if isinstance(d, Mapping)}
    ordered = sorted(differences, key=lambda d: d.severity is not Severity.WEAKENING)[:MAX_DRIFT_ENTRIES]
    return [
        {
            "key": _cut(d.key),
            "expected": _cut(d.expected),
            "actual": _cut(d.actual),
            "severity": str(d.severity),
            "firstSeen": first_seen.get(_cut(d.key)) or now,
            "action": str(action),
        }
        for d in ordered
    ]


def _cut(value: str) -> str:
    return value if len(value) <= MAX_DRIFT_VALUE else value[: MAX_DRIFT_VALUE - 1] + "…"


def reported_keys(entries: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """(key, severity) of every drift that stands reported: what the drift gauge shows."""
    return [(d["key"], d["severity"]) for d in entries if d.get("action") == REPORTED]
