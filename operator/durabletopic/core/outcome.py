"""What one reconcile pass concludes for one DurableTopic: its conditions, events and drift, and
when to look at it again. Every decision the loop makes about an object is a function here. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from durabletopic.core.model import DurableTopicSpec, ObservedTopic, Recorded, TopicError
from durabletopic.core.ownership import (
    ACCEPT_CLUSTER_ID,
    ACCEPT_TOPIC_ID,
    conflict_message,
    delete_pending_message,
)
from durabletopic.core.plan import CreateTopic, TopicPlan, fixed_keys
from durabletopic.core.reasons import ConditionType, DriftAction, EventType, Reason
from durabletopic.core.record import managed_after, pinned_cluster_id, pinned_topic_id, record_fields
from durabletopic.core.rules import Violation

Event = tuple[str, str, str]

# A topic just created is often not yet in every broker's metadata. The next pass, a moment later,
# writes Ready instead of this one writing Creating first, for at most this many passes: with the
# retry delays (0.5, 1, 2, 4, 4 s) about 11.5 s, as long as metadata lagged under a burst of 10,000.
DEFERRED_WRITES = 5
TOPIC_ALREADY_EXISTS = "TOPIC_ALREADY_EXISTS"
# Kafka's refusals that mean the cluster cannot hold the topic as asked, rather than a bad config.
KAFKA_ERROR_REASONS = {
    "INVALID_REPLICATION_FACTOR": Reason.INSUFFICIENT_BROKERS,
    "INVALID_REPLICA_ASSIGNMENT": Reason.INSUFFICIENT_BROKERS,
    "INVALID_CONFIG": Reason.INVALID_CONFIG,
    "POLICY_VIOLATION": Reason.INVALID_CONFIG,
    "INVALID_REQUEST": Reason.INVALID_CONFIG,
    "TOPIC_AUTHORIZATION_FAILED": Reason.AUTHORIZATION_FAILED,
    "CLUSTER_AUTHORIZATION_FAILED": Reason.AUTHORIZATION_FAILED,
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
    drift_reverted: bool = False
    drift_counted: tuple[tuple[Difference, DriftAction], ...] = ()
    events: list[Event] = field(default_factory=list)
    reconciled: bool = True
    defer_write: bool = False
    backoff: bool = False
    poll: bool = False
    settled: bool = False
    record: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """The object a pass concludes about, as the pass saw it."""

    topic: str
    status: Mapping[str, Any]
    generation: int
    record: Recorded
    attempts: int = 0
    accepted_topic_id: str | None = None
    accepted_cluster_id: str | None = None
    # An earlier pass created the topic, and it was not yet visible to record its id.
    created_unseen: bool = False


def spec_already_applied(record: Recorded, generation: int) -> bool:
    """This generation was fully applied before: a difference now is drift, not a spec change."""
    return record.applied_generation == generation


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


def unreadable(subject: Subject, error: TopicError) -> Outcome:
    """Kafka answered for the other topics but not for this one."""
    message = f"Kafka topic {subject.topic} cannot be read: {error.code}: {error.message}"
    if error.retriable:
        return Outcome(conditions_for_error(Reason.KAFKA_UNAVAILABLE, message, retrying=True), backoff=True)
    reason = error_reason(error)
    return Outcome(
        conditions_for_error(reason, message, retrying=False),
        events=_announce(subject, reason, message),
        backoff=True,
    )


def failed(problem: str) -> Outcome:
    """The pass itself failed (a fault of the operator): the object is looked at again, and its Ready
    does not stand on a check that did not happen."""
    message = f"the operator could not check this object ({problem}); retrying."
    return Outcome(conditions_for_error(Reason.RECONCILE_FAILED, message, retrying=True), backoff=True)


def identity_mismatch(
    subject: Subject, observed: ObservedTopic | None, cluster_id: str | None
) -> Outcome | None:
    """Stalled when Kafka's topic or cluster is not the one this object recorded, unless a person accepted it.

    Nothing is written to such a topic and it is never deleted: it may hold someone else's data.
    """
    record = subject.record
    if (
        record.cluster_id
        and cluster_id
        and cluster_id != record.cluster_id
        and subject.accepted_cluster_id != cluster_id
    ):
        message = (
            f"Kafka reports cluster id {cluster_id}, but this object manages topic {subject.topic} on cluster "
            f"{record.cluster_id}: the operator now talks to another cluster and writes nothing. If that is "
            f"intended, annotate the object {ACCEPT_CLUSTER_ID}={cluster_id}."
        )
        return _stalled(subject, Reason.CLUSTER_CHANGED, message)
    if (
        observed is not None
        and record.topic_id
        and observed.topic_id != record.topic_id
        and subject.accepted_topic_id != observed.topic_id
        and not subject.created_unseen
    ):
        message = (
            f"Kafka topic {subject.topic} has id {observed.topic_id}, but this object manages the topic with id "
            f"{record.topic_id}: the topic was deleted and created again by someone else. The operator writes "
            f"nothing to it and never deletes it. To take it over, annotate the object "
            f"{ACCEPT_TOPIC_ID}={observed.topic_id}."
        )
        return _stalled(subject, Reason.TOPIC_REPLACED, message)
    return None


def cluster_not_ready(subject: Subject, problem: str) -> Outcome:
    """The object's Kafka cluster cannot be used (no such KafkaCluster, its Secret missing): a person
    must act; nothing is asked of Kafka."""
    return _stalled(
        subject, Reason.CLUSTER_NOT_READY, f"{problem}. Kafka topic {subject.topic} is not touched."
    )


def wrong_cluster(subject: Subject, problem: str) -> Outcome:
    """Kafka at the cluster's address is another cluster than the KafkaCluster must reach."""
    return _stalled(subject, Reason.CLUSTER_ID_MISMATCH, problem)


def policy_violation(subject: Subject, violations: Sequence[Violation]) -> Outcome:
    """The object breaks a rule of the operator or of a DurabilityPolicy: Stalled, and its topic untouched."""
    broken = "; ".join(f"{v.message} (rule {v.rule})" for v in violations)
    return _stalled(
        subject, Reason.POLICY_VIOLATION, f"{broken}. Kafka topic {subject.topic} is left untouched."
    )


def _stalled(subject: Subject, reason: Reason, message: str) -> Outcome:
    return Outcome(
        conditions_for_error(reason, message, retrying=False), events=_announce(subject, reason, message)
    )


def _announce(subject: Subject, reason: Reason, message: str) -> list[Event]:
    """A Warning event, once: not again while the object is Stalled for the same reason."""
    stalled = condition_reason(subject.status.get("conditions") or [], ConditionType.STALLED)
    return [] if stalled == str(reason) else [(EventType.WARNING, reason, message)]


def error_reason(error: TopicError) -> Reason:
    return KAFKA_ERROR_REASONS.get(error.code, Reason.KAFKA_ERROR)


def after_pass(
    subject: Subject,
    spec: DurableTopicSpec,
    first: TopicPlan,
    final: TopicPlan,
    observed: ObservedTopic | None,
    error: TopicError | None,
    now: str,
    cluster_id: str | None = None,
) -> Outcome:
    """The outcome of a pass that reached Kafka.

    `first` is the plan against the topic as read before acting, `final` the plan against the topic
    as read back after; `error` is Kafka's answer to this topic's actions.
    """
    topic, record = subject.topic, subject.record
    refused = error is not None and error.code != TOPIC_ALREADY_EXISTS
    # The read said a topic this object already has was absent, and Kafka's controller says it exists: a
    # broker whose metadata lags answered the read. Nothing was recreated and nothing was lost (unless
    # the topic that exists is the one this operator has just created and not seen yet).
    stale_absence = (
        error is not None
        and error.code == TOPIC_ALREADY_EXISTS
        and record.topic_id is not None
        and not subject.created_unseen
        and any(isinstance(a, CreateTopic) for a in first.actions)
    )
    created_here = subject.created_unseen or (
        not refused and error is None and any(isinstance(a, CreateTopic) for a in first.actions)
    )
    applied = first.enforced and not refused and not final.actions and not final.refusals
    applied = applied and not final.waiting and not final.moving
    new_record = record_fields(
        topic_id=pinned_topic_id(
            record, observed, created_here=created_here, accepted_topic_id=subject.accepted_topic_id
        ),
        cluster_id=pinned_cluster_id(record, cluster_id, subject.accepted_cluster_id),
        applied_generation=subject.generation if applied else record.applied_generation,
        applied_replication_factor=spec.replication_factor if applied else record.applied_replication_factor,
        managed_configs=managed_after(record, frozenset(spec.config), first.enforced and not refused),
    )
    if refused:
        assert error is not None
        reason = error_reason(error)
        message = f"Kafka refused the change to topic {topic}: {error.code}: {error.message}"
        if error.retriable:
            return Outcome(
                conditions_for_error(Reason.UPDATING, message, retrying=True),
                observed,
                final,
                backoff=True,
                record=new_record,
            )
        return Outcome(
            conditions_for_error(reason, message, retrying=False),
            observed,
            final,
            events=_announce(subject, reason, message),
            record=new_record,
        )

    outcome = Outcome(conditions_for_plan(final, topic), observed, final, record=new_record)
    if stale_absence:
        outcome.defer_write = subject.attempts < DEFERRED_WRITES
        outcome.backoff = True
        return outcome
    if final.actions or final.waiting or error is not None:
        created_unseen = observed is None and any(isinstance(a, CreateTopic) for a in first.actions)
        outcome.defer_write = created_unseen and subject.attempts < DEFERRED_WRITES
        outcome.backoff = True
    else:
        outcome.settled = True

    previous_drift = subject.status.get("drift") or []
    if spec_already_applied(record, subject.generation):
        verdict = judge_drift(
            topic, first, final, previous_drift, now, fixed_keys(first.actions, first.differences)
        )
        outcome.drift_counted = verdict.counted
        outcome.events.extend(verdict.events)
        if verdict.entries or previous_drift or verdict.reverted or _drifted(subject.status):
            outcome.drift = verdict.entries
            outcome.drift_reverted = verdict.reverted
    elif previous_drift or _drifted(subject.status):
        outcome.drift = []
    if final.refusals:
        refusal = final.refusals[0]
        outcome.events += _announce(subject, refusal.reason, refusal.message)
    return outcome


def _drifted(status: Mapping[str, Any]) -> bool:
    return condition_reason(status.get("conditions") or [], ConditionType.DRIFTED) is not None


def delete_pending(subject: Subject, problem: str) -> Outcome:
    """A `deletionPolicy: Delete` object whose topic could not be deleted yet: it says so, and how to
    let it go while keeping the topic."""
    message = delete_pending_message(subject.topic, problem)
    announced = condition_reason(subject.status.get("conditions") or [], ConditionType.RECONCILING)
    events: list[Event] = []
    if announced != Reason.DELETE_PENDING:
        events.append((EventType.WARNING, Reason.DELETE_FAILED, message))
    return Outcome(
        conditions_for_error(Reason.DELETE_PENDING, message, retrying=True),
        events=events,
        backoff=True,
        reconciled=False,
    )
