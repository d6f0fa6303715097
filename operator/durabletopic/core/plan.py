"""What to do with one topic: a pure function of the desired spec, what Kafka has, and the policy.

Nothing here does I/O. The controller reads Kafka, asks the planner, carries out the actions,
and writes the outcome to status.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durabletopic.core import placement, rules
from durabletopic.core.configs import (
    DURABILITY_KEYS,
    MIN_INSYNC_REPLICAS,
    THROTTLE_ALL_REPLICAS,
    THROTTLE_KEYS,
    same_value,
)
from durabletopic.core.drift import PARTITIONS_KEY, REPLICATION_FACTOR_KEY, Difference, find_differences
from durabletopic.core.model import (
    ClusterInfo,
    DriftPolicy,
    DurableTopicSpec,
    ObservedTopic,
    PartitionMove,
    Policy,
    Recorded,
)
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
    """What to do to one topic.

    `differences` are every way Kafka differs from the spec; `kept` are those the operator leaves as
    they are on purpose (more replicas than asked: more durable, so not taken away); `waiting` says
    what the plan holds back until Kafka is ready for it (raising min.insync.replicas before enough
    replicas are in sync would stop every acks=all producer).
    """

    actions: tuple[Action, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    differences: tuple[Difference, ...] = ()
    unmanaged_configs: tuple[str, ...] = ()
    enforced: bool = True
    moving: bool = False
    kept: tuple[Difference, ...] = ()
    waiting: str | None = None

    @property
    def open_differences(self) -> tuple[Difference, ...]:
        """The differences the operator has not accepted."""
        return tuple(d for d in self.differences if d not in self.kept)

    @property
    def in_sync(self) -> bool:
        return not self.open_differences and not self.refusals


def plan_topic(
    spec: DurableTopicSpec,
    topic_name: str,
    observed: ObservedTopic | None,
    cluster: ClusterInfo,
    policy: Policy,
    *,
    spec_already_applied: bool = False,
    reassigning: bool = False,
    moves: Mapping[int, PartitionMove] | None = None,
    recorded: Recorded | None = None,
) -> TopicPlan:
    """Decide what to do to bring `observed` to `spec` under `policy`.

    `spec_already_applied` says this generation of the spec was reconciled before, so any
    difference now is drift; under `driftPolicy: Report` drift is reported, not reverted.
    `reassigning` says Kafka is moving replicas of this topic (`moves`, by partition, when Kafka's
    list of running reassignments was read): no second move is started, and the replicas being added
    do not count. `recorded` is what earlier passes recorded: the replication factor the operator
    last applied (it lowers one only when the spec asks for less than that) and the config keys it
    set (a key no longer in the spec loses its override).
    """
    recorded = recorded or Recorded()
    moving = reassigning or bool(moves)
    settled = observed.settled_replicas(moves) if observed is not None else {}
    settled_rf = min((len(r) for r in settled.values()), default=0)
    violations = rules.check_spec(spec.model_dump(by_alias=True, exclude_none=True), topic_name)
    violations += rules.check_policy(spec.replication_factor, spec.min_insync_replicas, policy)
    differences = tuple(find_differences(spec, observed, settled_rf))
    if violations:
        shrinking = observed is not None and settled_rf > spec.replication_factor
        return TopicPlan(
            refusals=tuple(_refusal_for(v, shrinking) for v in violations),
            differences=differences,
            unmanaged_configs=_unmanaged(spec, observed, recorded),
            enforced=False,
            moving=moving,
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

    kept: list[Difference] = []
    if not moving and {len(r) for r in settled.values()} != {spec.replication_factor}:
        move = _replication_change(spec, observed, cluster, recorded)
        if isinstance(move, Refusal):
            refusals.append(move)
        elif move is not None:
            actions.append(move)
        else:
            kept += [d for d in differences if d.key == REPLICATION_FACTOR_KEY]
    moving = moving or any(isinstance(a, Reassign) for a in actions)

    changes: dict[str, str | None] = {
        key: value
        for key, value in spec.desired_configs().items()
        if not same_value(observed.overrides.get(key), value)
    }
    waiting = None
    if MIN_INSYNC_REPLICAS in changes:
        waiting = _min_isr_wait(spec.min_insync_replicas, observed, settled, moving)
        if waiting is not None:
            del changes[MIN_INSYNC_REPLICAS]
    changes.update(
        {
            key: None
            for key in sorted(recorded.managed_configs - set(spec.config) - DURABILITY_KEYS)
            if key in observed.overrides
        }
    )
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
        unmanaged_configs=_unmanaged(spec, observed, recorded),
        enforced=enforce,
        moving=reassigning or bool(moves),
        kept=tuple(kept),
        waiting=waiting if enforce else None,
    )


def _min_isr_wait(
    wanted: int, observed: ObservedTopic, settled: Mapping[int, tuple[int, ...]], moving: bool
) -> str | None:
    """Why min.insync.replicas cannot be set to `wanted` now, or None when it can.

    A value at or above the replicas that hold the data would stop every acks=all producer as soon
    as one replica is down; raising it above the replicas in sync now, or while replicas are still
    being added, would stop them at once.
    """
    settled_rf = min((len(r) for r in settled.values()), default=0)
    if wanted >= settled_rf:
        return (
            f"min.insync.replicas is set to {wanted} once every partition has more than {wanted} "
            "replicas holding its data"
        )
    if wanted <= observed.effective_min_insync_replicas():
        return None
    if moving:
        return f"min.insync.replicas is raised to {wanted} once the new replicas have caught up"
    short = [p for p in observed.partitions if len(p.isr) < wanted]
    if short:
        return (
            f"min.insync.replicas is raised to {wanted} once every partition has {wanted} replicas in sync "
            f"(partition {short[0].partition} has {len(short[0].isr)})"
        )
    return None


def _replication_change(
    spec: DurableTopicSpec, observed: ObservedTopic, cluster: ClusterInfo, recorded: Recorded
) -> Reassign | Refusal | None:
    """The move to spec.replicationFactor, a refusal, or None to keep replicas above it.

    Replicas are taken away only when the spec asks for fewer than the operator last applied: more
    replicas than asked, on an adopted topic or added out of band, are more durable and stay.
    """
    target = spec.replication_factor
    current = observed.replication_factor
    if all(len(p.replicas) >= target for p in observed.partitions):
        explicit = (
            recorded.applied_replication_factor is not None and target < recorded.applied_replication_factor
        )
        if not explicit:
            return None
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


def _unmanaged(spec: DurableTopicSpec, observed: ObservedTopic | None, recorded: Recorded) -> tuple[str, ...]:
    """Configs set on the topic that the spec does not name and the operator did not set: left alone.
    From a read of only the planner's keys, what the last complete read found."""
    if observed is None:
        return ()
    desired = spec.desired_configs()
    found = observed.overrides if observed.configs_complete else recorded.unmanaged_configs
    return tuple(sorted(key for key in found if key not in desired and key not in recorded.managed_configs))


def keys_to_read(spec: DurableTopicSpec, recorded: Recorded) -> frozenset[str]:
    """The config keys every decision of the planner, drift and health rests on: the durability keys,
    the spec's, the ones the operator set before (a key removed from the spec) and the throttles."""
    return frozenset(spec.desired_configs()) | recorded.managed_configs | frozenset(THROTTLE_KEYS)


_RULE_REASONS = {
    "durability-keys-not-in-config": Reason.INVALID_CONFIG,
    "config-type": Reason.INVALID_CONFIG,
    "config-size": Reason.INVALID_CONFIG,
    "config-value-length": Reason.INVALID_CONFIG,
    "config-key-length": Reason.INVALID_CONFIG,
    "config-total-size": Reason.INVALID_CONFIG,
}


def _refusal_for(violation: rules.Violation, shrinking: bool) -> Refusal:
    reason = _RULE_REASONS.get(violation.rule, Reason.POLICY_VIOLATION)
    if shrinking and violation.rule == "replication-factor-floor":
        reason = Reason.REPLICATION_FACTOR_DECREASE_REFUSED
    return Refusal(reason, violation.message, violation.field)


def replication_in_question(
    spec: DurableTopicSpec, observed: ObservedTopic | None, replicas_change: Mapping[str, Any]
) -> bool:
    """Kafka's running reassignments matter to this topic: its replicas differ from the spec, a
    change the operator reported as under way may still be running, or a replication throttle the
    operator sets for a move is on the topic (a move started just before the operator was killed,
    with nothing written to status yet)."""
    if observed is None:
        return False
    throttled = any(observed.overrides.get(key) == THROTTLE_ALL_REPLICAS for key in THROTTLE_KEYS)
    return (
        throttled
        or observed.replica_counts != {spec.replication_factor}
        or replicas_change.get("state") in (ReplicasChangeState.PENDING, ReplicasChangeState.ONGOING)
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


def fixed_keys(actions: Sequence[Action], differences: Sequence[Difference]) -> frozenset[str]:
    """The difference keys that `actions`, once Kafka accepted them, put back."""
    keys: set[str] = set()
    for action in actions:
        if isinstance(action, CreateTopic):
            keys |= {d.key for d in differences}
        elif isinstance(action, AddPartitions):
            keys.add(PARTITIONS_KEY)
        elif isinstance(action, Reassign):
            keys.add(REPLICATION_FACTOR_KEY)
        else:
            keys |= {key for key, value in action.configs.items() if value is not None}
    return frozenset(keys)
