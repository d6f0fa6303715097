"""The status a DurableTopic reports: kstatus conditions and observed facts. Pure functions."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durabletopic.model import ObservedTopic
from durabletopic.plan import Action, AddPartitions, CreateTopic, Reason, Reassign, TopicPlan

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
PAUSED = "Paused"
DRIFTED = "Drifted"
REPLICAS_HEALTHY = "ReplicasHealthy"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def summary_conditions(
    *, ready: tuple[bool, str, str], reconciling: tuple[str, str] | None, stalled: tuple[str, str] | None
) -> list[Condition]:
    ready_ok, ready_reason, ready_message = ready
    conditions = [Condition(READY, ready_ok, ready_reason, ready_message)]
    if reconciling:
        conditions.append(Condition(RECONCILING, True, *reconciling))
    else:
        conditions.append(Condition(RECONCILING, False, ready_reason, "No work is under way."))
    if stalled:
        conditions.append(Condition(STALLED, True, *stalled))
    else:
        conditions.append(Condition(STALLED, False, ready_reason, "Nothing blocks reconciliation."))
    return conditions


def conditions_for_plan(plan: TopicPlan, topic_name: str) -> list[Condition]:
    """Conditions for the state the topic is in after the operator has acted on it.

    `plan` is planned against the topic as re-read after the actions: pending actions mean the work
    is still under way.
    """
    if plan.refusals:
        first = plan.refusals[0]
        message = " ".join(r.message.rstrip(".") + "." for r in plan.refusals)
        return summary_conditions(
            ready=(False, first.reason, message), reconciling=None, stalled=(first.reason, message)
        )
    if plan.moving:
        message = f"Kafka is moving replicas of topic {topic_name}; waiting for the reassignment to finish."
        reason = Reason.REASSIGNING
        return summary_conditions(ready=(False, reason, message), reconciling=(reason, message), stalled=None)
    if plan.actions:
        if any(isinstance(a, CreateTopic) for a in plan.actions):
            reason = Reason.CREATING
        elif any(isinstance(a, Reassign) for a in plan.actions):
            reason = Reason.REASSIGNING
        else:
            reason = Reason.UPDATING
        message = f"Kafka topic {topic_name}: " + "; ".join(_describe(a) for a in plan.actions) + "."
        return summary_conditions(ready=(False, reason, message), reconciling=(reason, message), stalled=None)
    if plan.differences:
        keys = ", ".join(d.key for d in plan.differences)
        message = f"Kafka topic {topic_name} differs from the spec ({keys}) and driftPolicy is Report: nothing is changed."
        return summary_conditions(ready=(False, "Drifted", message), reconciling=None, stalled=None)
    message = f"Kafka topic {topic_name} matches the spec and the durability policy."
    return summary_conditions(ready=(True, Reason.RECONCILED, message), reconciling=None, stalled=None)


def conditions_for_error(reason: str, message: str, *, retrying: bool) -> list[Condition]:
    if retrying:
        return summary_conditions(ready=(False, reason, message), reconciling=(reason, message), stalled=None)
    return summary_conditions(ready=(False, reason, message), reconciling=None, stalled=(reason, message))


def _describe(action: Action) -> str:
    if isinstance(action, CreateTopic):
        return (
            f"creating with {action.partitions} partitions and replication factor {action.replication_factor}"
        )
    if isinstance(action, AddPartitions):
        return f"adding partitions up to {action.total}"
    if isinstance(action, Reassign):
        return f"moving {len(action.assignment)} partitions to replication factor {action.target_replication_factor}"
    changes = [f"{k}={v}" if v is not None else f"removing {k}" for k, v in sorted(action.configs.items())]
    return "setting " + ", ".join(changes)


def merge_conditions(
    conditions: Sequence[Condition], previous: Sequence[Mapping[str, Any]], generation: int, now: str
) -> list[dict[str, Any]]:
    """Conditions as written to status: lastTransitionTime kept while a condition's status holds."""
    before = {c.get("type"): c for c in previous if isinstance(c, Mapping)}
    merged = []
    for condition in conditions:
        status = "True" if condition.status else "False"
        old = before.get(condition.type)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        merged.append(
            {
                "type": condition.type,
                "status": status,
                "reason": str(condition.reason),
                "message": condition.message,
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return merged


def observed_fields(
    topic_name: str, observed: ObservedTopic | None, unmanaged: Sequence[str]
) -> dict[str, Any]:
    fields: dict[str, Any] = {"topicName": topic_name}
    if observed is not None:
        fields.update(
            topicId=observed.topic_id,
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


def drift_entries(
    differences: Sequence[Any], previous: Sequence[Mapping[str, Any]], action: str, now: str
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
            "action": action,
        }
        for d in differences
    ]


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
            "state": "Failed",
            "partitionsDone": 0,
            "partitionsTotal": total,
            "message": f"Kafka refused the reassignment: {error}",
        }
    moving = set(moving_partitions or ())
    done = sum(1 for p in observed.partitions if p.partition not in moving and len(p.replicas) == target)
    if started:
        return {
            "targetReplicationFactor": target,
            "state": "Ongoing",
            "partitionsDone": total - started,
            "partitionsTotal": total,
            "message": f"moving {started} partitions to replication factor {target}, throttled",
        }
    if moving:
        state = (
            "Ongoing" if ours and previous and previous.get("state") in ("Ongoing", "Pending") else "Pending"
        )
        message = (
            f"{done} of {total} partitions at replication factor {target}"
            if state == "Ongoing"
            else "waiting for a reassignment Kafka is already running on this topic"
        )
        return {
            "targetReplicationFactor": target,
            "state": state,
            "partitionsDone": done,
            "partitionsTotal": total,
            "message": message,
        }
    if previous and ours and previous.get("state") in ("Ongoing", "Pending") and done == total:
        return {
            "targetReplicationFactor": target,
            "state": "Done",
            "partitionsDone": total,
            "partitionsTotal": total,
            "message": f"every partition has {target} replicas; the replication throttle is removed",
        }
    return dict(previous) if previous else None
