"""The status a DurableTopic reports: its conditions for a plan, the observed facts, the progress of
a replication-factor change, and the whole next status document. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from durabletopic.core.conditions import (
    Condition,
    drifted_condition,
    kept_condition,
    merge_conditions,
    truncated,
)
from durabletopic.core.health import replica_health
from durabletopic.core.model import ObservedTopic
from durabletopic.core.outcome import Outcome
from durabletopic.core.reasons import ConditionType, ReplicasChangeState

COUNTED_CONDITIONS = (
    ConditionType.READY,
    ConditionType.STALLED,
    ConditionType.RECONCILING,
    ConditionType.PAUSED,
)


def observed_fields(
    topic_name: str, observed: ObservedTopic | None, unmanaged: Sequence[str]
) -> dict[str, Any]:
    fields: dict[str, Any] = {"topicName": topic_name}
    if observed is not None:
        fields.update(
            partitions=observed.partition_count,
            replicationFactor=observed.replication_factor,
            minInSyncReplicas=observed.effective_min_insync_replicas(),
            unmanagedConfigs=list(unmanaged),
        )
    return fields


def without_volatile(status: Mapping[str, Any]) -> dict[str, Any]:
    """`status` less the fields that change on every write, to tell whether a write is needed."""
    stripped = {k: v for k, v in status.items() if k != "lastReconcileTime"}
    if isinstance(stripped.get("conditions"), list):
        stripped["conditions"] = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in stripped["conditions"]
        ]
    return stripped


def next_status(
    current: Mapping[str, Any], topic_name: str, generation: int, outcome: Outcome, now: str
) -> dict[str, Any] | None:
    """The object's new status after `outcome`, or None when nothing but timestamps would change."""
    conditions = list(outcome.conditions)
    status: dict[str, Any] = dict(current)
    previous_conditions = current.get("conditions") or []
    observed_generation = generation if outcome.reconciled else int(current.get("observedGeneration") or 0)
    status["observedGeneration"] = observed_generation
    if outcome.plan is not None:
        status.update(observed_fields(topic_name, outcome.observed, outcome.plan.unmanaged_configs))
    else:
        status.setdefault("topicName", topic_name)
    if outcome.record is not None:
        status.update(outcome.record)
    if outcome.observed is not None:
        health = replica_health(outcome.observed)
        status["health"] = health.as_status()
        conditions.append(
            Condition(
                ConditionType.REPLICAS_HEALTHY, health.healthy, health.reason, health.message(topic_name)
            )
        )
    elif outcome.plan is not None:
        status.pop("health", None)
    if outcome.replicas_change is not None:
        status["replicasChange"] = outcome.replicas_change
    if outcome.drift is not None:
        status["drift"] = outcome.drift
        conditions.append(drifted_condition(outcome.drift, reverted=outcome.drift_reverted))
    elif (kept_drift := kept_condition(previous_conditions, ConditionType.DRIFTED)) is not None:
        conditions.append(kept_drift)
    if outcome.plan is None and not any(c.type == ConditionType.REPLICAS_HEALTHY for c in conditions):
        kept = kept_condition(previous_conditions, ConditionType.REPLICAS_HEALTHY)
        if kept is not None:
            conditions.append(kept)
    status["conditions"] = merge_conditions(
        [truncated(c) for c in conditions], previous_conditions, observed_generation, now
    )
    if without_volatile(status) == without_volatile(current):
        return None
    status["lastReconcileTime"] = now
    return status


def replicas_change(
    previous: Mapping[str, Any] | None,
    target: int,
    observed: ObservedTopic | None,
    moving_partitions: Collection[int] | None,
    started: int | None,
    error: str | None,
) -> dict[str, Any] | None:
    """`status.replicasChange`: progress of a replication-factor change.

    `moving_partitions` are the topic's partitions Kafka is moving now (None when unknown);
    `started` is the number of partitions whose move this pass started; `error` is Kafka's refusal.
    """
    ours = previous is not None and previous.get("targetReplicationFactor") == target
    if observed is None:
        return dict(previous) if previous else None
    total = observed.partition_count
    if error is not None:
        return {
            "targetReplicationFactor": target,
            "state": str(ReplicasChangeState.FAILED),
            "partitionsDone": 0,
            "partitionsTotal": total,
            "message": f"Kafka refused the reassignment: {error}",
        }
    moving = set(moving_partitions or ())
    done = sum(1 for p in observed.partitions if p.partition not in moving and len(p.replicas) == target)
    running = (ReplicasChangeState.ONGOING, ReplicasChangeState.PENDING)
    if started:
        return {
            "targetReplicationFactor": target,
            "state": str(ReplicasChangeState.ONGOING),
            "partitionsDone": total - started,
            "partitionsTotal": total,
            "message": f"moving {started} partitions to replication factor {target}, throttled",
        }
    if moving:
        state = (
            ReplicasChangeState.ONGOING
            if ours and previous and previous.get("state") in running
            else ReplicasChangeState.PENDING
        )
        message = (
            f"{done} of {total} partitions at replication factor {target}"
            if state is ReplicasChangeState.ONGOING
            else "waiting for a reassignment Kafka is already running on this topic"
        )
        return {
            "targetReplicationFactor": target,
            "state": str(state),
            "partitionsDone": done,
            "partitionsTotal": total,
            "message": message,
        }
    if previous and ours and previous.get("state") in running and done == total:
        return {
            "targetReplicationFactor": target,
            "state": str(ReplicasChangeState.DONE),
            "partitionsDone": total,
            "partitionsTotal": total,
            "message": f"every partition has {target} replicas; the replication throttle is removed",
        }
    return dict(previous) if previous else None
