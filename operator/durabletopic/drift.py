"""What a drift means: reverted or reported, which events say so, what status.drift holds. Pure.

Drift is a difference the planner finds while the object's current generation was already
reconciled: someone changed the topic behind the operator's back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from durabletopic.plan import TOPIC_EXISTS_KEY, Difference, TopicPlan
from durabletopic.status import DRIFTED, Condition, drift_entries

REVERTED = "reverted"
REPORTED = "reported"

Event = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class DriftVerdict:
    action: str
    counted: tuple[Difference, ...]
    events: tuple[Event, ...]
    entries: list[dict[str, str]]


def judge_drift(
    topic: str, first: TopicPlan, final: TopicPlan, previous: Sequence[Mapping[str, str]], now: str
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
            ("Warning", "DriftDetected", f"Kafka topic {topic} drifted from its spec: {described}."),
            (
                "Warning" if lost else "Normal",
                "DriftReverted",
                f"Kafka topic {topic}: put back {keys}.{detail}",
            ),
        )
        return DriftVerdict(REVERTED, first.differences, events, [])

    already = {d.get("key") for d in previous}
    new = tuple(d for d in first.differences if d.key not in already)
    events = ()
    if new:
        message = f"Kafka topic {topic} drifted from its spec: {described}; driftPolicy is Report, nothing was changed."
        events = (("Warning", "DriftDetected", message),)
    return DriftVerdict(REPORTED, new, events, drift_entries(first.differences, previous, REPORTED, now))


def drifted_condition(entries: Sequence[Mapping[str, str]]) -> Condition:
    if entries:
        keys = ", ".join(f"{d['key']} ({d['severity']})" for d in entries)
        return Condition(
            DRIFTED, True, "DriftDetected", f"Kafka differs from the spec in {keys}; driftPolicy is Report."
        )
    return Condition(DRIFTED, False, "DriftReverted", "Drift was detected and put right.")
