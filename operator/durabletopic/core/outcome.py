"""What one reconcile pass concludes for one DurableTopic: its conditions, events and drift, and
when to look at it again. Every decision the loop makes about an object is a function here. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durabletopic.core.conditions import (
    Condition,
    condition_reason,
    conditions_for_error,
    conditions_for_plan,
    kept_condition,
)
from durabletopic.core.drift import Difference, judge_drift
from durabletopic.core.model import ObservedTopic, TopicError
from durabletopic.core.ownership import conflict_message
from durabletopic.core.plan import CreateTopic, TopicPlan
from durabletopic.core.reasons import ConditionType, DriftAction, EventType, Reason

Event = tuple[str, str, str]

# A topic just created is often not yet in every broker's metadata. The next pass, a moment later,
# writes Ready instead of this one writing Creating first, for at most this many passes.
DEFERRED_WRITES = 3
TOPIC_ALREADY_EXISTS = "TOPIC_ALREADY_EXISTS"
# Kafka's refusals that mean the cluster cannot hold the topic as asked, rather than a bad config.
KAFKA_ERROR_REASONS = {
    "INVALID_REPLICATION_FACTOR": Reason.INSUFFICIENT_BROKERS,
    "INVALID_REPLICA_ASSIGNMENT": Reason.INSUFFICIENT_BROKERS,
}
PAUSED_MESSAGE = (
    "The durabletopic.dev/paused annotation is true: the operator makes no Kafka calls for this object."
)
KEPT_WHILE_PAUSED = (
    ConditionType.READY,
    ConditionType.RECONCILING,
    ConditionType.STALLED,
    ConditionType.REPLICAS_HEALTHY,
    ConditionType.DRIFTED,
)


@dataclass(slots=True)
class Outcome:
    """What one pass concluded for one object, before it is written.

    `backoff`: look again after a delay that grows with each failure; `poll`: look again soon
    (Kafka is moving replicas); `settled`: the work is done, so the next failure starts the delay over.
    """

    conditions: list[Condition]
    observed: ObservedTopic | None = None
    plan: TopicPlan | None = None
    replicas_change: dict[str, Any] | None = None
    drift: list[dict[str, str]] | None = None
    drift_counted: tuple[Difference, ...] = ()
    drift_action: DriftAction | None = None
    events: list[Event] = field(default_factory=list)
    reconciled: bool = True
    defer_write: bool = False
    backoff: bool = False
    poll: bool = False
    settled: bool = False


def spec_already_applied(status: Mapping[str, Any], generation: int) -> bool:
    """This generation was reconciled before: a difference now is drift, not a spec change."""
    if status.get("observedGeneration") != generation:
        return False
    return any(
        (c.get("type") in (ConditionType.READY, ConditionType.DRIFTED) and c.get("status") == "True")
        or c.get("reason") == Reason.DRIFTED
        for c in status.get("conditions") or []
    )


def invalid_spec(problem: str) -> Outcome:
    """The API server let through a spec the operator cannot read."""
    return Outcome(conditions_for_error(Reason.INVALID_CONFIG, problem, retrying=False))


def paused(status: Mapping[str, Any]) -> Outcome:
    """The object's conditions as they are, plus Paused; the generation is not marked as applied."""
    previous = status.get("conditions") or []
    kept = [c for kind in KEPT_WHILE_PAUSED if (c := kept_condition(previous, kind))]
    return Outcome(
        [*kept, Condition(ConditionType.PAUSED, True, Reason.PAUSED, PAUSED_MESSAGE)], reconciled=False
    )


def conflict(topic: str, owner: str) -> Outcome:
    return Outcome(
        conditions_for_error(Reason.TOPIC_CONFLICT, conflict_message(topic, owner), retrying=False)
    )


def kafka_unavailable(problem: str) -> Outcome:
    message = f"Kafka cannot be reached ({problem}); retrying."
    return Outcome(conditions_for_error(Reason.KAFKA_UNAVAILABLE, message, retrying=True), backoff=True)


def after_pass(
    topic: str,
    status: Mapping[str, Any],
    generation: int,
    attempts: int,
    first: TopicPlan,
    final: TopicPlan,
    observed: ObservedTopic | None,
    error: TopicError | None,
    now: str,
) -> Outcome:
    """The outcome of a pass that reached Kafka.

    `first` is the plan against the topic as read before acting, `final` the plan against the topic
    as read back after; `error` is Kafka's answer to this topic's actions; `attempts` counts the
    passes since the object last settled.
    """
    stalled_reason = condition_reason(status.get("conditions") or [], ConditionType.STALLED)
    if error is not None and error.code != TOPIC_ALREADY_EXISTS:
        reason = KAFKA_ERROR_REASONS.get(error.code, Reason.INVALID_CONFIG)
        message = f"Kafka refused the change to topic {topic}: {error.code}: {error.message}"
        if error.retriable:
            return Outcome(
                conditions_for_error(Reason.UPDATING, message, retrying=True), observed, final, backoff=True
            )
        repeated = stalled_reason == str(reason)
        return Outcome(
            conditions_for_error(reason, message, retrying=False),
            observed,
            final,
            events=[] if repeated else [(EventType.WARNING, reason, message)],
        )

    outcome = Outcome(conditions_for_plan(final, topic), observed, final)
    if final.actions or error is not None:
        created_unseen = observed is None and any(isinstance(a, CreateTopic) for a in first.actions)
        outcome.defer_write = created_unseen and attempts < DEFERRED_WRITES
        outcome.backoff = True
    else:
        outcome.settled = True

    if spec_already_applied(status, generation) and first.differences:
        verdict = judge_drift(topic, first, final, status.get("drift") or [], now)
        outcome.drift_counted = verdict.counted
        outcome.drift_action = verdict.action
        outcome.events.extend(verdict.events)
        outcome.drift = verdict.entries
    if final.refusals and stalled_reason != str(final.refusals[0].reason):
        refusal = final.refusals[0]
        outcome.events.append((EventType.WARNING, refusal.reason, refusal.message))
    return outcome
