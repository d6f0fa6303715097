"""The rules a DurabilityPolicy sets, each written twice side by side: in Python, for the operator and
`validate`, and in CEL, for the admission policy that takes DurabilityPolicy objects as its parameters.

Every policy that selects a namespace is checked on its own, so the strictest value of each rule
wins: the highest floors, a name that starts with a prefix of every policy (the intersection), keys
allowed by every policy and denied by none (the union of denied keys), the lowest quotas, a
KafkaCluster every policy allows. The corpus test feeds the same manifests to the admission policy on
a real API server, to the operator and to `validate`, and expects the same verdicts.

Quotas (counts over a namespace) and adoption (what Kafka holds) cannot be written in CEL: they
are checked at reconcile time only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from durabletopic.core.model import DeletionPolicy, DurableTopicSpec
from durabletopic.core.rules import Violation
from durabletopic.core.tenancy.model import Adoption, ConfigBound, TenantPolicy

INTEGER = re.compile(r"-?[0-9]{1,18}")
UNLIMITED = "-1"
_CEL_INTEGER = "^-?[0-9]{1,18}$"

# Rules checked at reconcile time only.
MAX_TOPICS_PER_NAMESPACE = "max-topics-per-namespace"
MAX_PARTITIONS_PER_NAMESPACE = "max-partitions-per-namespace"
ADOPTION = "adoption"


@dataclass(frozen=True, slots=True)
class TopicRequest:
    """What a DurableTopic asks for, as the tenancy rules read it."""

    namespace: str
    name: str  # metadata.name
    topic_name: str
    topic_field: str  # spec.topicName, or metadata.name when the topic is named after the object
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    config: Mapping[str, str]
    deletion_policy: str
    cluster: str | None = None  # spec.clusterRef.name; None: the default cluster

    @classmethod
    def of(cls, namespace: str, object_name: str, spec: DurableTopicSpec) -> TopicRequest:
        return cls(
            namespace=namespace,
            name=object_name,
            topic_name=spec.resolved_topic_name(object_name),
            topic_field="spec.topicName" if spec.topic_name else "metadata.name",
            partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            min_insync_replicas=spec.min_insync_replicas,
            config=dict(spec.config),
            deletion_policy=str(spec.deletion_policy),
            cluster=spec.cluster_ref.name if spec.cluster_ref is not None else None,
        )


Check = Callable[[TenantPolicy, TopicRequest], list[Violation]]


@dataclass(frozen=True, slots=True)
class TenancyRule:
    """One rule: its name (the `rule` of findings and metrics), the field it judges, the Python check,
    and the CEL validation and message the admission policy carries (`P` is `params.spec`)."""

    rule: str
    field: str
    check: Check
    expression: str
    message: str


def _floor(rule: str, alias: str, attribute: str, floor_alias: str, floor_attribute: str) -> TenancyRule:
    """A floor: the DurableTopic's field (`alias`, `attribute` in Python) against the policy's."""

    def check(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
        floor = getattr(policy.spec, floor_attribute)
        value = getattr(request, attribute)
        if floor is None or value >= floor:
            return []
        return [
            Violation(
                f"spec.{alias}",
                rule,
                f"spec.{alias} ({value}) is below the floor of {floor} set by DurabilityPolicy {policy.name}",
                policy.name,
            )
        ]

    return TenancyRule(
        rule,
        f"spec.{alias}",
        check,
        f"!has(P.{floor_alias}) || variables.{alias} >= P.{floor_alias}",
        f'"spec.{alias} (" + string(variables.{alias}) + ") is below the floor of " + string(P.{floor_alias}) '
        '+ " set by DurabilityPolicy " + params.metadata.name',
    )


def _prefix(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
    prefixes = policy.prefixes_for(request.namespace)
    if not prefixes or any(request.topic_name.startswith(p) for p in prefixes):
        return []
    allowed = " or ".join(f"'{p}'" for p in prefixes)
    return [
        Violation(
            request.topic_field,
            "topic-name-prefix",
            f"{request.topic_field} ({request.topic_name}) must start with {allowed} in namespace "
            f"{request.namespace} (DurabilityPolicy {policy.name})",
            policy.name,
        )
    ]


def _keys_message(keys: Iterable[str], rest: str) -> str:
    return ", ".join(f"spec.config[{k}]" for k in keys) + rest


def _allowed_keys(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
    allowed = policy.spec.config.allowed_keys
    if allowed is None:
        return []
    listed = ", ".join(allowed) or "none"
    return [
        Violation(
            f"spec.config[{key}]",
            "config-key-allowed",
            _keys_message([key], f" is not among the keys DurabilityPolicy {policy.name} allows ({listed})"),
            policy.name,
        )
        for key in sorted(request.config)
        if key not in allowed
    ]


def _denied_keys(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
    denied = policy.spec.config.denied_keys
    return [
        Violation(
            f"spec.config[{key}]",
            "config-key-denied",
            _keys_message([key], f" is a key DurabilityPolicy {policy.name} denies"),
            policy.name,
        )
        for key in sorted(request.config)
        if key in denied
    ]


def within(value: str, bound: ConfigBound) -> bool:
    if value == UNLIMITED:
        return bound.allow_unlimited
    if not INTEGER.fullmatch(value):
        return False
    number = int(value)
    return (bound.min is None or number >= bound.min) and (bound.max is None or number <= bound.max)


def bound_text(bound: ConfigBound) -> str:
    parts = [f"min {bound.min}"] if bound.min is not None else []
    parts += [f"max {bound.max}"] if bound.max is not None else []
    parts.append("-1 allowed" if bound.allow_unlimited else "-1 not allowed")
    return ", ".join(parts)


def _bounds(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
    violations = []
    for key in sorted(policy.spec.config.bounds):
        bound = policy.spec.config.bounds[key]
        value = request.config.get(key)
        if value is not None and not within(value, bound):
            violations.append(
                Violation(
                    f"spec.config[{key}]",
                    "config-bounds",
                    _keys_message(
                        [key],
                        f" ({value}) is outside the bounds DurabilityPolicy {policy.name} sets: "
                        f"{key} {bound_text(bound)}",
                    ),
                    policy.name,
                )
            )
    return violations


def _max_partitions(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
    most = policy.spec.max_partitions_per_topic
    if most is None or request.partitions <= most:
        return []
    return [
        Violation(
            "spec.partitions",
            "max-partitions-per-topic",
            f"spec.partitions ({request.partitions}) is above the {most} partitions per topic "
            f"DurabilityPolicy {policy.name} allows",
            policy.name,
        )
    ]


def _deletion_policy(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
    allowed = policy.spec.deletion_policies
    if allowed is None or request.deletion_policy in allowed:
        return []
    listed = ", ".join(str(p) for p in allowed) or "none"
    return [
        Violation(
            "spec.deletionPolicy",
            "deletion-policy",
            f"spec.deletionPolicy ({request.deletion_policy}) is not one DurabilityPolicy {policy.name} allows "
            f"({listed})",
            policy.name,
        )
    ]


def _allowed_clusters(policy: TenantPolicy, request: TopicRequest) -> list[Violation]:
    allowed = policy.spec.allowed_clusters
    if allowed is None or request.cluster is None or request.cluster in allowed:
        return []
    listed = ", ".join(allowed) or "none"
    return [
        Violation(
            "spec.clusterRef.name",
            "allowed-clusters",
            f"spec.clusterRef.name ({request.cluster}) is not among the KafkaClusters DurabilityPolicy "
            f"{policy.name} allows ({listed}); without spec.clusterRef the topic goes to the default cluster",
            policy.name,
        )
    ]


_BOUND = "P.config.bounds[k]"
_VALUE = "object.spec.config[k]"
_WITHIN = (
    f"({_VALUE} == '{UNLIMITED}' ? (has({_BOUND}.allowUnlimited) && {_BOUND}.allowUnlimited) : "
    f"({_VALUE}.matches('{_CEL_INTEGER}') && (!has({_BOUND}.min) || int({_VALUE}) >= {_BOUND}.min) "
    f"&& (!has({_BOUND}.max) || int({_VALUE}) <= {_BOUND}.max)))"
)
_BOUND_TEXT = (
    f"(has({_BOUND}.min) ? 'min ' + string({_BOUND}.min) + ', ' : '') + "
    f"(has({_BOUND}.max) ? 'max ' + string({_BOUND}.max) + ', ' : '') + "
    f"(has({_BOUND}.allowUnlimited) && {_BOUND}.allowUnlimited ? '-1 allowed' : '-1 not allowed')"
)
_CONFIG_SET = "has(object.spec.config)"

# The variables the admission policy defines before its validations, in order.
CEL_VARIABLES: tuple[tuple[str, str], ...] = (
    ("topicName", "has(object.spec.topicName) ? object.spec.topicName : object.metadata.name"),
    ("topicField", "has(object.spec.topicName) ? 'spec.topicName' : 'metadata.name'"),
    (
        "replicationFactor",
        f"has(object.spec.replicationFactor) ? object.spec.replicationFactor : "
        f"{DurableTopicSpec.model_fields['replication_factor'].default}",
    ),
    (
        "minInSyncReplicas",
        f"has(object.spec.minInSyncReplicas) ? object.spec.minInSyncReplicas : "
        f"{DurableTopicSpec.model_fields['min_insync_replicas'].default}",
    ),
    (
        "deletionPolicy",
        f"has(object.spec.deletionPolicy) ? object.spec.deletionPolicy : '{DeletionPolicy.RETAIN}'",
    ),
    ("labels", "has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}"),
    (
        "selected",
        "has(P.namespaceSelector) "
        "&& (has(P.namespaceSelector.matchLabels) || has(P.namespaceSelector.matchExpressions)) "
        "&& (!has(P.namespaceSelector.matchLabels) || P.namespaceSelector.matchLabels.all(k, "
        "k in variables.labels && variables.labels[k] == P.namespaceSelector.matchLabels[k])) "
        "&& (!has(P.namespaceSelector.matchExpressions) || P.namespaceSelector.matchExpressions.all(e, "
        "e.operator == 'In' ? (e.key in variables.labels && has(e.values) && variables.labels[e.key] in e.values) "
        ": e.operator == 'NotIn' ? !(e.key in variables.labels && has(e.values) "
        "&& variables.labels[e.key] in e.values) "
        ": e.operator == 'Exists' ? e.key in variables.labels : !(e.key in variables.labels)))",
    ),
    (
        "prefixes",
        "has(P.topicNamePrefixes) ? P.topicNamePrefixes.map(p, p.replace('{namespace}', object.metadata.namespace)) "
        ": []",
    ),
    (
        "keysNotAllowed",
        f"has(P.config) && has(P.config.allowedKeys) && {_CONFIG_SET} "
        "? object.spec.config.filter(k, !(k in P.config.allowedKeys)) : []",
    ),
    (
        "keysDenied",
        f"has(P.config) && has(P.config.deniedKeys) && {_CONFIG_SET} "
        "? object.spec.config.filter(k, k in P.config.deniedKeys) : []",
    ),
    (
        "keysOutOfBounds",
        f"has(P.config) && has(P.config.bounds) && {_CONFIG_SET} "
        f"? P.config.bounds.filter(k, k in object.spec.config && !{_WITHIN}) : []",
    ),
)

TENANCY_RULES: tuple[TenancyRule, ...] = (
    _floor(
        "min-replication-factor",
        "replicationFactor",
        "replication_factor",
        "minReplicationFactor",
        "min_replication_factor",
    ),
    _floor(
        "min-insync-replicas",
        "minInSyncReplicas",
        "min_insync_replicas",
        "minInSyncReplicas",
        "min_insync_replicas",
    ),
    TenancyRule(
        "topic-name-prefix",
        "spec.topicName",
        _prefix,
        "size(variables.prefixes) == 0 || variables.prefixes.exists(p, variables.topicName.startsWith(p))",
        'variables.topicField + " (" + variables.topicName + ") must start with " '
        '+ variables.prefixes.map(p, "\'" + p + "\'").join(" or ") '
        '+ " in namespace " + object.metadata.namespace + " (DurabilityPolicy " + params.metadata.name + ")"',
    ),
    TenancyRule(
        "config-key-allowed",
        "spec.config",
        _allowed_keys,
        "size(variables.keysNotAllowed) == 0",
        "variables.keysNotAllowed.map(k, 'spec.config[' + k + ']').join(', ') "
        '+ " is not among the keys DurabilityPolicy " + params.metadata.name + " allows (" '
        "+ (size(P.config.allowedKeys) == 0 ? 'none' : P.config.allowedKeys.join(', ')) + \")\"",
    ),
    TenancyRule(
        "config-key-denied",
        "spec.config",
        _denied_keys,
        "size(variables.keysDenied) == 0",
        "variables.keysDenied.map(k, 'spec.config[' + k + ']').join(', ') "
        '+ " is a key DurabilityPolicy " + params.metadata.name + " denies"',
    ),
    TenancyRule(
        "config-bounds",
        "spec.config",
        _bounds,
        "size(variables.keysOutOfBounds) == 0",
        "variables.keysOutOfBounds.map(k, 'spec.config[' + k + '] (' + object.spec.config[k] + ')').join(', ') "
        '+ " is outside the bounds DurabilityPolicy " + params.metadata.name + " sets: " '
        f"+ variables.keysOutOfBounds.map(k, k + ' ' + {_BOUND_TEXT}).join('; ')",
    ),
    TenancyRule(
        "max-partitions-per-topic",
        "spec.partitions",
        _max_partitions,
        "!has(P.maxPartitionsPerTopic) || object.spec.partitions <= P.maxPartitionsPerTopic",
        '"spec.partitions (" + string(object.spec.partitions) + ") is above the " '
        '+ string(P.maxPartitionsPerTopic) + " partitions per topic DurabilityPolicy " + params.metadata.name '
        '+ " allows"',
    ),
    TenancyRule(
        "deletion-policy",
        "spec.deletionPolicy",
        _deletion_policy,
        "!has(P.deletionPolicies) || variables.deletionPolicy in P.deletionPolicies",
        '"spec.deletionPolicy (" + variables.deletionPolicy + ") is not one DurabilityPolicy " '
        '+ params.metadata.name + " allows (" '
        "+ (size(P.deletionPolicies) == 0 ? 'none' : P.deletionPolicies.join(', ')) + \")\"",
    ),
    TenancyRule(
        "allowed-clusters",
        "spec.clusterRef.name",
        _allowed_clusters,
        "!has(P.allowedClusters) || !has(object.spec.clusterRef) || object.spec.clusterRef.name in P.allowedClusters",
        '"spec.clusterRef.name (" + object.spec.clusterRef.name '
        '+ ") is not among the KafkaClusters DurabilityPolicy " + params.metadata.name + " allows (" '
        "+ (size(P.allowedClusters) == 0 ? 'none' : P.allowedClusters.join(', ')) "
        '+ "); without spec.clusterRef the topic goes to the default cluster"',
    ),
)

# Every rule a DurabilityPolicy sets, by name: the `rule` label of the violation metrics.
RULE_NAMES: tuple[str, ...] = (
    *(r.rule for r in TENANCY_RULES),
    MAX_TOPICS_PER_NAMESPACE,
    MAX_PARTITIONS_PER_NAMESPACE,
    ADOPTION,
)


def cel(text: str) -> str:
    """A rule's CEL text with `P` spelled out."""
    return re.sub(r"\bP\.", "params.spec.", text)


def governing(policies: Iterable[TenantPolicy], labels: Mapping[str, str]) -> list[TenantPolicy]:
    """The policies that select a namespace with these labels, by name."""
    return sorted((p for p in policies if p.selects(labels)), key=lambda p: p.name)


def check_request(policies: Sequence[TenantPolicy], request: TopicRequest) -> list[Violation]:
    """Every rule of every governing policy that the admission policy also checks."""
    return [v for policy in policies for rule in TENANCY_RULES for v in rule.check(policy, request)]


K = TypeVar("K")


def _lowest(policies: Sequence[TenantPolicy], attribute: str) -> tuple[int, str] | None:
    quotas = [(q, p.name) for p in policies if (q := getattr(p.spec, attribute)) is not None]
    return min(quotas) if quotas else None


def check_quotas(
    policies: Sequence[TenantPolicy], requests: Sequence[tuple[K, TopicRequest]]
) -> dict[K, Violation]:
    """The requests of one namespace, oldest first, beyond its quotas (the lowest of the governing
    policies). A request refused for a quota does not count toward the next ones."""
    topics = _lowest(policies, "max_topics_per_namespace")
    partitions = _lowest(policies, "max_partitions_per_namespace")
    refused: dict[K, Violation] = {}
    if topics is None and partitions is None:
        return refused
    counted_topics = counted_partitions = 0
    for key, request in requests:
        if topics is not None and counted_topics + 1 > topics[0]:
            refused[key] = Violation(
                "metadata.name",
                MAX_TOPICS_PER_NAMESPACE,
                f"metadata.name ({request.name}): namespace {request.namespace} already has the {topics[0]} "
                f"DurableTopics DurabilityPolicy "
                f"{topics[1]} allows (quota maxTopicsPerNamespace): older objects come first",
                topics[1],
            )
            continue
        if partitions is not None and counted_partitions + request.partitions > partitions[0]:
            refused[key] = Violation(
                "spec.partitions",
                MAX_PARTITIONS_PER_NAMESPACE,
                f"spec.partitions ({request.partitions}) would bring namespace {request.namespace} to "
                f"{counted_partitions + request.partitions} partitions, above the {partitions[0]} DurabilityPolicy "
                f"{partitions[1]} allows (quota maxPartitionsPerNamespace): older objects come first",
                partitions[1],
            )
            continue
        counted_topics += 1
        counted_partitions += request.partitions
    return refused


def adoption_mode(policies: Sequence[TenantPolicy]) -> tuple[Adoption, str | None]:
    """The strictest adoption rule of the governing policies, and the policy that sets it.

    With no policy, a topic that exists is taken over as before policies existed (Allowed).
    """
    for mode in (Adoption.FORBIDDEN, Adoption.ANNOTATED):
        for policy in policies:
            if policy.spec.adoption is mode:
                return mode, policy.name
    return (Adoption.ALLOWED, policies[0].name) if policies else (Adoption.ALLOWED, None)


def check_adoption(
    policies: Sequence[TenantPolicy],
    topic: str,
    topic_id: str,
    accepted_topic_id: str | None,
    annotation: str,
) -> Violation | None:
    """Whether an object may take over `topic`, which exists in Kafka and was not created by the operator."""
    mode, name = adoption_mode(policies)
    if mode is Adoption.ALLOWED or (mode is Adoption.ANNOTATED and accepted_topic_id == topic_id):
        return None
    if mode is Adoption.ANNOTATED:
        how = f"annotate the object {annotation}={topic_id} to take it over"
    else:
        how = "the policy forbids taking over topics the operator did not create"
    return Violation(
        "spec.topicName",
        ADOPTION,
        f"Kafka topic {topic} (id {topic_id}) exists and was not created by the operator; DurabilityPolicy "
        f"{name} sets adoption {mode}: {how}. The topic is left as it is.",
        name or "",
    )
