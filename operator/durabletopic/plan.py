"""What to do with one topic: a pure function of the desired spec, what Kafka has, and the policy.

Nothing here does I/O. The controller reads Kafka, asks the planner, carries out the actions,
and writes the outcome to status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from durabletopic import placement, rules
from durabletopic.model import (
    MIN_INSYNC_REPLICAS,
    UNCLEAN_LEADER_ELECTION,
    ClusterInfo,
    DeletionPolicy,
    DriftPolicy,
    DurableTopicSpec,
    ObservedTopic,
    Policy,
)


class Reason(StrEnum):
    """Condition reasons; a contract with users, dashboards and GitOps tools."""

    RECONCILED = "Reconciled"
    CREATING = "Creating"
    UPDATING = "Updating"
    REASSIGNING = "Reassigning"
    KAFKA_UNAVAILABLE = "KafkaUnavailable"
    POLICY_VIOLATION = "PolicyViolation"
    INSUFFICIENT_BROKERS = "InsufficientBrokers"
    PARTITION_DECREASE_REFUSED = "PartitionDecreaseRefused"
    REPLICATION_FACTOR_DECREASE_REFUSED = "ReplicationFactorDecreaseRefused"
    TOPIC_CONFLICT = "TopicConflict"
    INVALID_CONFIG = "InvalidConfig"
    PAUSED = "Paused"


class Severity(StrEnum):
    WEAKENING = "weakening"
    BENIGN = "benign"


TOPIC_EXISTS_KEY = "topic"
PARTITIONS_KEY = "partitions"
REPLICATION_FACTOR_KEY = "replicationFactor"


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


@dataclass(frozen=True, slots=True)
class DeleteTopic:
    name: str
    topic_id: str


Action = CreateTopic | AlterConfigs | AddPartitions | Reassign

# Topic configs the operator sets while it moves replicas, and removes afterwards.
THROTTLE_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
THROTTLE_ALL_REPLICAS = "*"


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Difference:
    """One way Kafka differs from what the spec and the policy require."""

    key: str
    expected: str
    actual: str
    severity: Severity


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
    differences = tuple(_differences(spec, observed))
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
    replica_counts = {len(p.replicas) for p in observed.partitions}
    if reassigning:
        pass
    elif replica_counts != {spec.replication_factor}:
        move = _replication_change(spec, observed, cluster)
        if isinstance(move, Refusal):
            refusals.append(move)
        else:
            actions.append(move)

    to_set = {
        key: value
        for key, value in spec.desired_configs().items()
        if not _same_value(observed.overrides.get(key), value)
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


def plan_deletion(
    spec: DurableTopicSpec, observed: ObservedTopic | None, recorded_topic_id: str | None, *, owner: bool
) -> tuple[DeleteTopic | None, str]:
    """Whether deleting the DurableTopic deletes the Kafka topic, and why."""
    if spec.deletion_policy is not DeletionPolicy.DELETE:
        return None, "deletionPolicy is Retain: the topic and its data are kept"
    if not owner:
        return None, "another DurableTopic owns this topic: it is kept"
    if observed is None:
        return None, "the topic no longer exists in Kafka"
    if not recorded_topic_id or observed.topic_id != recorded_topic_id:
        return None, (
            f"the topic's id {observed.topic_id} is not the one this DurableTopic recorded "
            f"({recorded_topic_id or 'none'}): it is kept"
        )
    return DeleteTopic(observed.name, observed.topic_id), "deletionPolicy is Delete: the topic is deleted"


def _differences(spec: DurableTopicSpec, observed: ObservedTopic | None) -> list[Difference]:
    if observed is None:
        return [Difference(TOPIC_EXISTS_KEY, "present", "absent", Severity.WEAKENING)]
    found: list[Difference] = []
    if observed.partition_count != spec.partitions:
        found.append(
            Difference(PARTITIONS_KEY, str(spec.partitions), str(observed.partition_count), Severity.BENIGN)
        )
    if observed.replication_factor != spec.replication_factor:
        severity = (
            Severity.WEAKENING if observed.replication_factor < spec.replication_factor else Severity.BENIGN
        )
        found.append(
            Difference(
                REPLICATION_FACTOR_KEY,
                str(spec.replication_factor),
                str(observed.replication_factor),
                severity,
            )
        )
    for key, expected in spec.desired_configs().items():
        override = observed.overrides.get(key)
        if _same_value(override, expected):
            continue
        if override is None:
            actual = f"{observed.effective.get(key, 'unset')} (broker default)"
            found.append(Difference(key, expected, actual, _severity(key, expected, override, observed)))
        else:
            found.append(Difference(key, expected, override, _severity(key, expected, override, observed)))
    return found


def _severity(key: str, expected: str, override: str | None, observed: ObservedTopic) -> Severity:
    actual = override if override is not None else observed.effective.get(key)
    if key == UNCLEAN_LEADER_ELECTION:
        return Severity.WEAKENING if (actual or "").lower() == "true" else Severity.BENIGN
    if key == MIN_INSYNC_REPLICAS:
        try:
            return Severity.WEAKENING if int(actual or "1") < int(expected) else Severity.BENIGN
        except ValueError:
            return Severity.WEAKENING
    return Severity.BENIGN


def _unmanaged(spec: DurableTopicSpec, observed: ObservedTopic | None) -> tuple[str, ...]:
    if observed is None:
        return ()
    desired = spec.desired_configs()
    return tuple(sorted(key for key in observed.overrides if key not in desired))


def _same_value(actual: str | None, expected: str) -> bool:
    if actual is None:
        return False
    return actual == expected or actual.strip().lower() == expected.strip().lower()


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


@dataclass(frozen=True, slots=True)
class Claim:
    """A DurableTopic's claim on a Kafka topic name."""

    namespace: str
    name: str
    uid: str
    created: str = field(compare=False)


def owner_of(claims: list[Claim]) -> Claim:
    """The oldest claim owns the topic; ties go to the lexically first namespace/name."""
    return min(claims, key=lambda c: (c.created, c.namespace, c.name, c.uid))
