"""The validation rules for a DurableTopic, in one place.

The CRD's CEL rules, the admission policy, the offline `validate` command and the planner's
refusals all come from the rules listed here. The bounds of single fields (ranges, lengths) are
declared once, on the model (`model.py`), and checked here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from durabletopic.core.configs import DURABILITY_KEYS
from durabletopic.core.model import (
    CLUSTER_NAME_MAX_LENGTH,
    MAX_CONFIG_ENTRIES,
    MAX_CONFIG_KEY_LENGTH,
    MAX_CONFIG_TOTAL_SIZE,
    MAX_CONFIG_VALUE_LENGTH,
    TOPIC_NAME_MAX_LENGTH,
    TOPIC_NAME_PATTERN,
    DeletionPolicy,
    DriftPolicy,
    Policy,
    spec_bounds,
    spec_default,
)

_topic_name_re = re.compile(TOPIC_NAME_PATTERN.removeprefix("^").removesuffix("$"))


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which field, which rule, and a sentence a user can act on."""

    field: str
    rule: str
    message: str
    policy: str = ""  # the DurabilityPolicy that sets the rule, for a tenancy rule

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (rule {self.rule})"


@dataclass(frozen=True, slots=True)
class CelRule:
    """A rule as the API server checks it: placed on a schema path, with its message."""

    rule: str
    path: str
    expression: str
    message: str
    field: str


def topic_name_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > TOPIC_NAME_MAX_LENGTH:
        return f"must be at most {TOPIC_NAME_MAX_LENGTH} characters, got {len(name)}"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if not _topic_name_re.fullmatch(name):
        return "may contain only ASCII letters, digits, '.', '_' and '-'"
    return None


CLUSTER_REF_IMMUTABLE_MESSAGE = (
    "spec.clusterRef is immutable (set or absent): a topic does not move between Kafka clusters; "
    "create a new DurableTopic for the other cluster"
)
TOPIC_NAME_MESSAGE = (
    "spec.topicName must be a legal Kafka topic name: 1 to 249 characters of [a-zA-Z0-9._-], not '.' or '..'"
)

# Rules the CRD carries, checked by the API server at admission. `path` is where the rule sits in
# the schema: "spec" for rules over several fields, "spec.topicName" for one field.
CEL_RULES: tuple[CelRule, ...] = (
    CelRule(
        rule="min-insync-below-replication-factor",
        path="spec",
        expression="!has(self.minInSyncReplicas) || !has(self.replicationFactor) "
        "|| self.minInSyncReplicas < self.replicationFactor",
        message="spec.minInSyncReplicas must be less than spec.replicationFactor, "
        "or producers with acks=all fail as soon as one replica is down",
        field="spec.minInSyncReplicas",
    ),
    CelRule(
        rule="partitions-may-only-grow",
        path="spec",
        expression="self.partitions >= oldSelf.partitions",
        message="spec.partitions may only grow: Kafka cannot remove partitions from a topic",
        field="spec.partitions",
    ),
    CelRule(
        rule="topic-name-immutable",
        path="spec",
        expression="has(self.topicName) == has(oldSelf.topicName) "
        "&& (!has(self.topicName) || self.topicName == oldSelf.topicName)",
        message="spec.topicName is immutable: create a new DurableTopic for another topic",
        field="spec.topicName",
    ),
    CelRule(
        rule="cluster-ref-immutable",
        path="spec",
        expression="has(self.clusterRef) == has(oldSelf.clusterRef) "
        "&& (!has(self.clusterRef) || self.clusterRef.name == oldSelf.clusterRef.name)",
        message=CLUSTER_REF_IMMUTABLE_MESSAGE,
        field="spec.clusterRef",
    ),
    CelRule(
        rule="durability-keys-not-in-config",
        path="spec.config",
        expression="!('min.insync.replicas' in self) && !('unclean.leader.election.enable' in self)",
        message="spec.config must not set min.insync.replicas or unclean.leader.election.enable: "
        "use spec.minInSyncReplicas; unclean leader election is always off",
        field="spec.config",
    ),
    CelRule(
        rule="config-key-length",
        path="spec.config",
        expression=f"self.all(k, size(k) <= {MAX_CONFIG_KEY_LENGTH})",
        message=f"spec.config keys may be at most {MAX_CONFIG_KEY_LENGTH} characters",
        field="spec.config",
    ),
    CelRule(
        rule="config-total-size",
        path="spec.config",
        expression=f"self.map(k, size(k) + size(self[k])).sum() <= {MAX_CONFIG_TOTAL_SIZE}",
        message=f"spec.config may hold at most {MAX_CONFIG_TOTAL_SIZE} characters of keys and values in all",
        field="spec.config",
    ),
    CelRule(
        rule="topic-name-legal",
        path="",
        expression=f"has(self.spec.topicName) || size(self.metadata.name) <= {TOPIC_NAME_MAX_LENGTH}",
        message=f"metadata.name is the Kafka topic name when spec.topicName is absent, and a topic name is at most "
        f"{TOPIC_NAME_MAX_LENGTH} characters: set spec.topicName",
        field="metadata.name",
    ),
    CelRule(
        rule="topic-name-legal",
        path="spec.topicName",
        expression="self != '.' && self != '..'",
        message=TOPIC_NAME_MESSAGE,
        field="spec.topicName",
    ),
)


def check_spec(spec: Mapping[str, Any], object_name: str | None = None) -> list[Violation]:
    """Rules of the spec alone, the ones the CRD enforces (schema and CEL)."""
    violations: list[Violation] = []
    topic_name = spec.get("topicName")
    if topic_name is None and object_name is not None:
        topic_name = object_name
        name_field = "metadata.name"
    else:
        name_field = "spec.topicName"
    if topic_name is not None:
        if not isinstance(topic_name, str):
            violations.append(Violation(name_field, "topic-name-legal", f"{name_field} must be a string"))
        elif (problem := topic_name_problem(topic_name)) is not None:
            violations.append(
                Violation(
                    name_field, "topic-name-legal", f"{name_field} is not a legal Kafka topic name: {problem}"
                )
            )

    partitions = spec.get("partitions")
    if partitions is None:
        violations.append(Violation("spec.partitions", "partitions-required", "spec.partitions is required"))
    else:
        violations += _integer_in_range(partitions, "partitions", "partitions-range")
    rf = spec.get("replicationFactor", spec_default("replicationFactor"))
    violations += _integer_in_range(rf, "replicationFactor", "replication-factor-range")
    min_isr = spec.get("minInSyncReplicas", spec_default("minInSyncReplicas"))
    violations += _integer_in_range(min_isr, "minInSyncReplicas", "min-insync-range")
    if _is_int(rf) and _is_int(min_isr) and min_isr >= rf:
        violations.append(
            Violation(
                "spec.minInSyncReplicas",
                "min-insync-below-replication-factor",
                f"spec.minInSyncReplicas ({min_isr}) must be less than spec.replicationFactor ({rf}), "
                "or producers with acks=all fail as soon as one replica is down",
            )
        )
    violations += _check_config(spec.get("config", {}))
    violations += _check_cluster_ref(spec.get("clusterRef"))
    for field, enum in (("deletionPolicy", DeletionPolicy), ("driftPolicy", DriftPolicy)):
        allowed = [str(member) for member in enum]
        value = spec.get(field)
        if value is not None and value not in allowed:
            violations.append(
                Violation(
                    f"spec.{field}", f"{field}-enum", f"spec.{field} must be one of {', '.join(allowed)}"
                )
            )
    return violations


def check_transition(old_spec: Mapping[str, Any], new_spec: Mapping[str, Any]) -> list[Violation]:
    """Rules of a change from one spec to the next (CEL transition rules)."""
    violations: list[Violation] = []
    old_partitions, new_partitions = old_spec.get("partitions"), new_spec.get("partitions")
    if (
        isinstance(old_partitions, int)
        and isinstance(new_partitions, int)
        and new_partitions < old_partitions
    ):
        violations.append(
            Violation(
                "spec.partitions",
                "partitions-may-only-grow",
                f"spec.partitions may only grow: Kafka cannot remove partitions ({old_partitions} -> {new_partitions})",
            )
        )
    if old_spec.get("topicName") != new_spec.get("topicName"):
        violations.append(
            Violation(
                "spec.topicName",
                "topic-name-immutable",
                "spec.topicName is immutable: create a new DurableTopic for another topic",
            )
        )
    if _cluster_ref_name(old_spec) != _cluster_ref_name(new_spec):
        violations.append(
            Violation("spec.clusterRef", "cluster-ref-immutable", CLUSTER_REF_IMMUTABLE_MESSAGE)
        )
    return violations


def _cluster_ref_name(spec: Mapping[str, Any]) -> Any:
    """spec.clusterRef.name as the transition rule compares it; None when there is no clusterRef."""
    ref = spec.get("clusterRef")
    return ("clusterRef", ref.get("name")) if isinstance(ref, Mapping) else ref


def _check_cluster_ref(ref: Any) -> list[Violation]:
    if ref is None:
        return []
    field, rule = "spec.clusterRef.name", "cluster-ref-name"
    if not isinstance(ref, Mapping):
        return [
            Violation("spec.clusterRef", rule, "spec.clusterRef must be an object: {name: <KafkaCluster>}")
        ]
    name = ref.get("name")
    if name is None:
        return [Violation(field, rule, f"{field} is required: the name of a KafkaCluster")]
    if not isinstance(name, str):
        return [Violation(field, rule, f"{field} must be a string: the name of a KafkaCluster")]
    if not 1 <= len(name) <= CLUSTER_NAME_MAX_LENGTH:
        return [
            Violation(
                field,
                rule,
                f"{field} must be 1 to {CLUSTER_NAME_MAX_LENGTH} characters, the name of a KafkaCluster, "
                f"got {len(name)}",
            )
        ]
    return []


@dataclass(frozen=True, slots=True)
class FloorRule:
    """A floor of the platform policy: a spec field that may not go below a value the platform sets."""

    rule: str
    field: str  # the spec field, as named in the CRD
    floor: str  # the Policy attribute that holds the floor

    def message(self, value: object, floor: object) -> str:
        return f"spec.{self.field} ({value}) is below the floor of {floor} set by the platform policy"


# Checked by the admission policy at `kubectl apply` (generated from these, see admission.py) and by
# the operator at reconcile time.
FLOOR_RULES: tuple[FloorRule, ...] = (
    FloorRule("replication-factor-floor", "replicationFactor", "min_replication_factor"),
    FloorRule("min-insync-floor", "minInSyncReplicas", "min_insync_replicas"),
)


def check_policy(replication_factor: int, min_insync_replicas: int, policy: Policy) -> list[Violation]:
    """The platform team's floors (the admission policy and the reconcile-time check)."""
    values = {"replicationFactor": replication_factor, "minInSyncReplicas": min_insync_replicas}
    violations: list[Violation] = []
    for floor_rule in FLOOR_RULES:
        value, floor = values[floor_rule.field], getattr(policy, floor_rule.floor)
        if value < floor:
            violations.append(
                Violation(f"spec.{floor_rule.field}", floor_rule.rule, floor_rule.message(value, floor))
            )
    return violations


def _check_config(config: Any) -> list[Violation]:
    if not isinstance(config, Mapping):
        return [Violation("spec.config", "config-type", "spec.config must be a map of string to string")]
    violations: list[Violation] = []
    if len(config) > MAX_CONFIG_ENTRIES:
        violations.append(
            Violation(
                "spec.config", "config-size", f"spec.config may hold at most {MAX_CONFIG_ENTRIES} entries"
            )
        )
        return violations
    total = sum(len(str(k)) + (len(v) if isinstance(v, str) else 0) for k, v in config.items())
    if total > MAX_CONFIG_TOTAL_SIZE:
        violations.append(
            Violation(
                "spec.config",
                "config-total-size",
                f"spec.config may hold at most {MAX_CONFIG_TOTAL_SIZE} characters of keys and values in all, "
                f"got {total}",
            )
        )
    for key in sorted(set(config) & DURABILITY_KEYS):
        violations.append(
            Violation(
                f"spec.config[{key}]",
                "durability-keys-not-in-config",
                f"spec.config must not set {key}: use spec.minInSyncReplicas; "
                "unclean leader election is always off",
            )
        )
    for key, value in config.items():
        if not isinstance(value, str):
            violations.append(
                Violation(f"spec.config[{key}]", "config-type", f"spec.config[{key}] must be a string")
            )
        elif len(value) > MAX_CONFIG_VALUE_LENGTH:
            violations.append(
                Violation(
                    f"spec.config[{key}]",
                    "config-value-length",
                    f"spec.config[{key}] may be at most {MAX_CONFIG_VALUE_LENGTH} characters",
                )
            )
        if len(str(key)) > MAX_CONFIG_KEY_LENGTH:
            violations.append(
                Violation(
                    "spec.config",
                    "config-key-length",
                    f"spec.config keys may be at most {MAX_CONFIG_KEY_LENGTH} characters",
                )
            )
    return violations


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer_in_range(value: Any, alias: str, rule: str) -> list[Violation]:
    field = f"spec.{alias}"
    low, high = spec_bounds(alias)
    if not _is_int(value):
        return [Violation(field, f"{rule}", f"{field} must be an integer")]
    if not low <= value <= high:
        return [Violation(field, rule, f"{field} must be between {low} and {high}, got {value}")]
    return []
