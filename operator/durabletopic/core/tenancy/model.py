"""`DurabilityPolicy`: the spec a platform team writes, and the label selector it uses.

`DurabilityPolicySpec` is the one source of the resource's schema (names, types, bounds and the
descriptions `kubectl explain` shows): `core/tenancy/crd.py` generates the CRD from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from durabletopic.core.model import (
    CLUSTER_NAME_MAX_LENGTH,
    MAX_PARTITIONS,
    MAX_REPLICATION_FACTOR,
    TOPIC_NAME_MAX_LENGTH,
    DeletionPolicy,
)

NAMESPACE_PLACEHOLDER = "{namespace}"
MAX_LIST_ITEMS = 256


class Adoption(StrEnum):
    """Whether a DurableTopic may take over a topic that exists in Kafka but was not created by the operator."""

    FORBIDDEN = "Forbidden"
    ALLOWED = "Allowed"
    ANNOTATED = "Annotated"


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class _Spec(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class SelectorRequirement(_Spec):
    """One requirement of a label selector, as in Kubernetes' LabelSelectorRequirement."""

    key: str = Field(description="The label key.", json_schema_extra={"maxLength": 317})
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] = Field(
        default_factory=list,
        description="The values for In and NotIn; empty for Exists and DoesNotExist.",
        json_schema_extra={"maxItems": MAX_LIST_ITEMS},
    )


class NamespaceSelector(_Spec):
    """A label selector over namespaces. Empty (or absent) selects no namespace; `matchLabels: {}`
    written explicitly selects every namespace."""

    match_labels: dict[str, str] | None = Field(
        default=None,
        alias="matchLabels",
        description="Labels a namespace must carry, each with this value. `{}` selects every namespace.",
    )
    match_expressions: list[SelectorRequirement] | None = Field(
        default=None,
        alias="matchExpressions",
        description="Requirements a namespace's labels must all meet.",
        json_schema_extra={"maxItems": MAX_LIST_ITEMS},
    )

    @property
    def empty(self) -> bool:
        return self.match_labels is None and self.match_expressions is None

    def selects(self, labels: Mapping[str, str]) -> bool:
        if self.empty:
            return False
        for key, value in (self.match_labels or {}).items():
            if labels.get(key) != value:
                return False
        for requirement in self.match_expressions or ():
            present = requirement.key in labels
            if requirement.operator is SelectorOperator.IN:
                ok = present and labels[requirement.key] in requirement.values
            elif requirement.operator is SelectorOperator.NOT_IN:
                ok = not (present and labels[requirement.key] in requirement.values)
            elif requirement.operator is SelectorOperator.EXISTS:
                ok = present
            else:
                ok = not present
            if not ok:
                return False
        return True


class ConfigBound(_Spec):
    """Bounds of one numeric config value."""

    min: int | None = Field(default=None, description="The smallest value allowed.")
    max: int | None = Field(default=None, description="The largest value allowed.")
    allow_unlimited: bool = Field(
        default=False,
        alias="allowUnlimited",
        description="Whether -1 (Kafka's 'unlimited', as in retention.ms) is allowed. It is refused "
        "otherwise, whatever min and max say.",
    )


class ConfigRules(_Spec):
    """Rules for spec.config."""

    allowed_keys: list[str] | None = Field(
        default=None,
        alias="allowedKeys",
        description="The only keys spec.config may set. Absent: every key (less deniedKeys).",
        json_schema_extra={"maxItems": MAX_LIST_ITEMS},
    )
    denied_keys: list[str] = Field(
        default_factory=list,
        alias="deniedKeys",
        description="Keys spec.config may not set.",
        json_schema_extra={"maxItems": MAX_LIST_ITEMS},
    )
    bounds: dict[str, ConfigBound] = Field(
        default_factory=dict,
        description="Bounds of numeric values, by config key (for example retention.ms between one hour and "
        "30 days). A bounded key that is set must hold an integer within its bounds.",
        json_schema_extra={"maxProperties": MAX_LIST_ITEMS},
    )


class DurabilityPolicySpec(_Spec):
    """What the DurableTopics of the selected namespaces may do. Every policy that selects a namespace
    applies to it: the strictest value of each rule wins."""

    namespace_selector: NamespaceSelector = Field(
        default_factory=NamespaceSelector,
        alias="namespaceSelector",
        description="The namespaces this policy governs, by their labels. Empty selects none; "
        "`matchLabels: {}` selects every namespace.",
    )
    min_replication_factor: int | None = Field(
        default=None,
        alias="minReplicationFactor",
        description="Floor for spec.replicationFactor in the selected namespaces. The operator-wide floor stays "
        "the absolute minimum.",
        json_schema_extra={"minimum": 1, "maximum": MAX_REPLICATION_FACTOR},
    )
    min_insync_replicas: int | None = Field(
        default=None,
        alias="minInSyncReplicas",
        description="Floor for spec.minInSyncReplicas in the selected namespaces. The operator-wide floor stays "
        "the absolute minimum.",
        json_schema_extra={"minimum": 1, "maximum": MAX_REPLICATION_FACTOR},
    )
    topic_name_prefixes: list[str] = Field(
        default_factory=list,
        alias="topicNamePrefixes",
        description="Prefixes the Kafka topic names of the selected namespaces must start with; {namespace} "
        "stands for the DurableTopic's namespace ('{namespace}.' is the common case). Empty: any name.",
        json_schema_extra={
            "maxItems": MAX_LIST_ITEMS,
            "items": {"type": "string", "maxLength": TOPIC_NAME_MAX_LENGTH},
        },
    )
    config: ConfigRules = Field(default_factory=ConfigRules, description="Rules for spec.config.")
    max_partitions_per_topic: int | None = Field(
        default=None,
        alias="maxPartitionsPerTopic",
        description="The most partitions one topic may have.",
        json_schema_extra={"minimum": 1, "maximum": MAX_PARTITIONS},
    )
    max_topics_per_namespace: int | None = Field(
        default=None,
        alias="maxTopicsPerNamespace",
        description="The most DurableTopics a namespace may have; older objects are counted first, and the "
        "ones beyond the quota are refused at reconcile time.",
        json_schema_extra={"minimum": 0},
    )
    max_partitions_per_namespace: int | None = Field(
        default=None,
        alias="maxPartitionsPerNamespace",
        description="The most partitions the DurableTopics of a namespace may have in all; older objects are "
        "counted first, and one that would go beyond the quota is refused at reconcile time.",
        json_schema_extra={"minimum": 0},
    )
    deletion_policies: list[DeletionPolicy] | None = Field(
        default=None,
        alias="deletionPolicies",
        description="The spec.deletionPolicy values the selected namespaces may use (for example only Retain). "
        "Absent: any.",
    )
    allowed_clusters: list[str] | None = Field(
        default=None,
        alias="allowedClusters",
        description="The KafkaClusters the DurableTopics of the selected namespaces may name in "
        "spec.clusterRef. A DurableTopic without spec.clusterRef goes to the default cluster and is always "
        "allowed. Absent: any cluster; empty: none but the default.",
        json_schema_extra={
            "maxItems": MAX_LIST_ITEMS,
            "items": {"type": "string", "minLength": 1, "maxLength": CLUSTER_NAME_MAX_LENGTH},
        },
    )
    adoption: Adoption = Field(
        default=Adoption.FORBIDDEN,
        description="Whether a DurableTopic may take over a topic that exists in Kafka but was not created by "
        "the operator: Forbidden (default), Allowed, or Annotated (only with the annotation "
        "durabletopic.dev/accept-topic-id naming the topic's id).",
    )


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """One DurabilityPolicy as the operator holds it; `problem` says why its spec could not be read."""

    name: str
    generation: int
    spec: DurabilityPolicySpec
    problem: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> TenantPolicy:
        meta = body.get("metadata") or {}
        name, generation = str(meta.get("name", "")), int(meta.get("generation") or 0)
        try:
            return cls(name, generation, DurabilityPolicySpec.model_validate(body.get("spec") or {}))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            # A policy that cannot be read selects nothing rather than something unintended.
            return cls(name, generation, DurabilityPolicySpec(), f"spec.{where}: {first['msg']}")

    def selects(self, labels: Mapping[str, str]) -> bool:
        return self.problem is None and self.spec.namespace_selector.selects(labels)

    def prefixes_for(self, namespace: str) -> list[str]:
        return [p.replace(NAMESPACE_PLACEHOLDER, namespace) for p in self.spec.topic_name_prefixes]
