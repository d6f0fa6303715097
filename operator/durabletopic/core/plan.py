"""What to do with one topic: a pure function of the desired spec, what Kafka has, and the policy.

Nothing here does I/O. The controller reads Kafka, asks the planner, carries out the actions,
and writes the outcome to status.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from durabletopic.core import placement, rules
from durabletopic.core.configs import (
    MIN_INSYNC_REPLICAS,
    THROTTLE_ALL_REPLICAS,
    THROTTLE_KEYS,
    same_value,
)
from durabletopic.core.drift import Difference, find_differences
from durabletopic.core.model import ClusterInfo, DriftPolicy, DurableTopicSpec, ObservedTopic, Policy
from durabletopic.core.reasons import Reason, ReplicasChangeState


@dataclass(frozen=True, slots=True)
class CreateTopic:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class AlterConfigs:
    """Incremental change of these keys (a None value removes the override); nothing else is touched."""

    name: str
    configs: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class Reassign:
    """Move partitions to these replica lists (KIP-455), throttled, leaders kept."""

    name: str
    target_replication_factor: int
    assignment: dict[int, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class AddPartitions:
    name: str
    total: int


Action = CreateTopic | AlterConfigs | AddPartitions | Reassign


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class TopicPlan:
    actions: tuple[Action, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    differences: tuple[Difference, ...] = ()
    unmanaged_configs: tuple[str, ...] = ()
    enforced: bool = True
    moving: bool = False

    @property
    def in_sync(self) -> bool:
        return not self.differences and not self.refusals


def plan_topic(
    spec: DurableTopicSpec,
    topic_name: str,
    observed: ObservedTopic | None,
    cluster: ClusterInfo,
    policy: Policy,
    *,
    spec_already_applied: bool = False,
    reassigning: bool = False,
) -> TopicPlan:
    """Decide what to do to bring `observed` to `spec` under `policy`.

    `spec_already_applied` says this generation of the spec was reconciled before, so any
    difference now is drift; under `driftPolicy: Report` drift is reported, not reverted.
    `reassigning` says Kafka is moving replicas of this topic: no second move is started.
    """
    violations = rules.check_spec(spec.model_dump(by_alias=True, exclude_none=True), topic_name)
    violations += rules.check_policy(spec.replication_factor, spec.min_insync_replicas, policy)
    differences = tuple(find_differences(spec, observed))
    if violations:
        shrinking = observed is not None and observed.replication_factor > spec.replication_factor
        return TopicPlan(
            refusals=tuple(_refusal_for(v, shrinking) for v in violations),
            differences=differences,
            unmanaged_configs=_unmanaged(spec, observed),
            enforced=False,
        )

    enforce = not (spec_already_applied and spec.drift_policy is DriftPolicy.REPORT)
    if observed is None:
        if cluster.live_broker_count < spec.replication_factor:
            refusal = Refusal(
                Reason.INSUFFICIENT_BROKERS,
                f"spec.replicationFactor is {spec.replication_factor} but only {cluster.live_broker_count} "
                "brokers are live: the topic is not created until enough brokers are up",
                "spec.replicationFactor",
            )
            return TopicPlan(refusals=(refusal,), differences=differences, enforced=enforce)
        if not enforce:
            return TopicPlan(differences=differences, enforced=False)
        create = CreateTopic(topic_name, spec.partitions, spec.replication_factor, spec.desired_configs())
        return TopicPlan(actions=(create,), differences=differences)

    actions: list[Action] = []
    refusals: list[Refusal] = []

    if observed.partition_count > spec.partitions:
        refusals.append(
            Refusal(
                Reason.PARTITION_DECREASE_REFUSED,
                f"the topic has {observed.partition_count} partitions and spec.partitions asks for "
                f"{spec.partitions}: Kafka cannot remove partitions; set spec.partitions to at least "
                f"{observed.partition_count}",
                "spec.partitions",
            )
        )
    elif observed.partition_count < spec.partitions:
        actions.append(AddPartitions(topic_name, spec.partitions))

    observed_rf = observed.replication_factor
    if reassigning:
        pass
    elif observed.replica_counts != {spec.replication_factor}:
        move = _replication_change(spec, observed, cluster)
        if isinstance(move, Refusal):
            refusals.append(move)
        else:
            actions.append(move)

    to_set = {
        key: value
        for key, value in spec.desired_configs().items()
        if not same_value(observed.overrides.get(key), value)
    }
    # A min.insync.replicas at or above the replicas the topic really has would stop every
    # acks=all producer, so it waits until the replication factor is raised.
    if MIN_INSYNC_REPLICAS in to_set and spec.min_insync_replicas >= observed_rf:
        del to_set[MIN_INSYNC_REPLICAS]
    changes: dict[str, str | None] = dict(to_set)
    moving = reassigning or any(isinstance(a, Reassign) for a in actions)
    if not moving:
        changes.update(
            {key: None for key in THROTTLE_KEYS if observed.overrides.get(key) == THROTTLE_ALL_REPLICAS}
        )
    if changes:
        actions.append(AlterConfigs(topic_name, changes))

    if not enforce:
        actions = []
    return TopicPlan(
        actions=tuple(actions),
        refusals=tuple(refusals),
        differences=differences,
        unmanaged_configs=_unmanaged(spec, observed),
        enforced=enforce,
        moving=reassigning,
    )


def _replication_change(
    spec: DurableTopicSpec, observed: ObservedTopic, cluster: ClusterInfo
) -> Reassign | Refusal:
    target = spec.replication_factor
    current = observed.replication_factor
    if max(len(p.replicas) for p in observed.partitions) > target:
        if target <= spec.min_insync_replicas:
            return Refusal(
                Reason.REPLICATION_FACTOR_DECREASE_REFUSED,
                f"the topic has replication factor {current}; lowering it to {target} would leave no replica "
                f"to spare above spec.minInSyncReplicas ({spec.min_insync_replicas})",
                "spec.replicationFactor",
            )
        return Reassign(
            observed.name, target, placement.remove_replicas(observed.partitions, cluster, target)
        )
    try:
        assignment = placement.add_replicas(observed.partitions, cluster, target)
    except placement.PlacementError as error:
        return Refusal(
            Reason.INSUFFICIENT_BROKERS,
            f"the topic has replication factor {current} and spec.replicationFactor asks for {target}, but {error}: "
            "nothing is moved",
            "spec.replicationFactor",
        )
    return Reassign(observed.name, target, assignment)


def _unmanaged(spec: DurableTopicSpec, observed: ObservedTopic | None) -> tuple[str, ...]:
    if observed is None:
        return ()
    desired = spec.desired_configs()
    return tuple(sorted(key for key in observed.overrides if key not in desired))


_RULE_REASONS = {
    "durability-keys-not-in-config": Reason.INVALID_CONFIG,
    "config-type": Reason.INVALID_CONFIG,
    "config-size": Reason.INVALID_CONFIG,
    "config-value-length": Reason.INVALID_CONFIG,
    "config-key-length": Reason.INVALID_CONFIG,
}


def _refusal_for(violation: rules.Violation, shrinking: bool) -> Refusal:
    reason = _RULE_REASONS.get(violation.rule, Reason.POLICY_VIOLATION)
    if shrinking and violation.rule == "replication-factor-floor":
        reason = Reason.REPLICATION_FACTOR_DECREASE_REFUSED
    return Refusal(reason, violation.message, violation.field)


def needs_cluster(spec: DurableTopicSpec, observed: ObservedTopic | None) -> bool:
    """Brokers and racks matter only to create a topic or to change its replication factor."""
    return observed is None or observed.replica_counts != {spec.replication_factor}


def replication_in_question(
    spec: DurableTopicSpec, observed: ObservedTopic | None, replicas_change: Mapping[str, Any]
) -> bool:
    """Kafka's running reassignments matter to this topic: its replicas differ from the spec, or a
    change the operator reported as under way may still be running."""
    if observed is None:
        return False
    return observed.replica_counts != {spec.replication_factor} or replicas_change.get("state") in (
        ReplicasChangeState.PENDING,
        ReplicasChangeState.ONGOING,
    )


def broker_throttle_removable(
    move_finished: bool, moving_topics: Collection[str], started_topics: Collection[str]
) -> bool:
    """The brokers' throttle rate goes once a move the operator reported has finished and no other
    move is running in Kafka, except those this pass started (which set the rate again)."""
    return move_finished and all(topic in started_topics for topic in moving_topics)


def action_view(action: Action, current: ObservedTopic | None) -> dict[str, Any]:
    """An action as data a person is shown: what changes, from what (as `current` has it) to what.

    The status message (`conditions.describe_action`) and the `plan` command render this.
    """
    if isinstance(action, CreateTopic):
        return {
            "action": "create",
            "partitions": action.partitions,
            "replicationFactor": action.replication_factor,
            "configs": dict(sorted(action.configs.items())),
        }
    if isinstance(action, AlterConfigs):
        return {
            "action": "alter",
            "configs": {
                key: {"from": _current_value(key, current), "to": value}
                for key, value in sorted(action.configs.items())
            },
        }
    if isinstance(action, AddPartitions):
        return {
            "action": "add-partitions",
            "from": current.partition_count if current else 0,
            "to": action.total,
        }
    return {
        "action": "reassign",
        "from": current.replication_factor if current else 0,
        "to": action.target_replication_factor,
        "assignment": {str(p): list(replicas) for p, replicas in sorted(action.assignment.items())},
    }


def _current_value(key: str, current: ObservedTopic | None) -> str:
    if current is None:
        return "unset"
    if key in current.overrides:
        return current.overrides[key]
    if key in current.effective:
        return f"{current.effective[key]} (broker default)"
    return "unset"
