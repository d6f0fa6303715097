"""The DurableTopic CustomResourceDefinition, generated from the model and the rules.

The spec's schema (names, types, defaults, bounds, descriptions) comes from `DurableTopicSpec`,
its CEL rules from `rules.CEL_RULES`, the status's enumerations from `reasons.py`.
`crds/durabletopics.durabletopic.dev.yaml` is this document as YAML (`make generate`); a test keeps
the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from durabletopic.core import rules
from durabletopic.core.model import DurableTopicSpec
from durabletopic.core.reasons import (
    DIFFERENCE_SEVERITIES,
    ConditionType,
    DriftAction,
    ReplicasChangeState,
)

GROUP = "durabletopic.dev"
VERSION = "v1alpha1"
KIND = "DurableTopic"
PLURAL = "durabletopics"
SINGULAR = "durabletopic"
SHORT_NAMES = ["dt"]
API_VERSION = f"{GROUP}/{VERSION}"
SPEC_DESCRIPTION = "The Kafka topic this object declares and the durability it must have."


def _cel(path: str) -> list[dict[str, str]]:
    validations = []
    for rule in rules.CEL_RULES:
        if rule.path != path:
            continue
        validation = {"rule": rule.expression, "message": rule.message}
        relative = rule.field.removeprefix(path)
        if relative.startswith("."):
            validation["fieldPath"] = relative
        validations.append(validation)
    return validations


def _unwrapped(annotation: Any) -> Any:
    """The type of an optional field (`X | None`): X."""
    if isinstance(annotation, UnionType) or get_origin(annotation) is Union:
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return annotation


def _object_schema(model: type[BaseModel], path: str, description: str | None) -> dict[str, Any]:
    """An object of the spec (the spec itself, or one nested in it): its properties, each with its schema
    and CEL rules, and the required ones."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        prop = _property_schema(info, f"{path}.{alias}")
        if validations := _cel(f"{path}.{alias}"):
            prop["x-kubernetes-validations"] = validations
        properties[alias] = prop
        if info.is_required():
            required.append(alias)
    schema: dict[str, Any] = {"type": "object", "description": description}
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def _property_schema(info: FieldInfo, path: str) -> dict[str, Any]:
    """A spec field's schema: its type, description, allowed values, default and bounds, from the model."""
    annotation = _unwrapped(info.annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _object_schema(annotation, path, info.description)
    enum_values: list[str] | None = None
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        enum_values = [str(member) for member in annotation]
        openapi_type = "string"
    elif annotation is int:
        openapi_type = "integer"
    elif get_origin(annotation) is dict:
        openapi_type = "object"
    else:
        openapi_type = "string"
    schema: dict[str, Any] = {"type": openapi_type, "description": info.description}
    if enum_values is not None:
        schema["enum"] = enum_values
    if info.default is not None and info.default is not PydanticUndefined:
        schema["default"] = str(info.default) if enum_values is not None else info.default
    keywords: dict[str, Any] = (
        dict(info.json_schema_extra) if isinstance(info.json_schema_extra, dict) else {}
    )
    additional: dict[str, Any] = keywords.pop("additionalProperties", None) or {}
    schema.update(keywords)
    if openapi_type == "object":
        schema["additionalProperties"] = {"type": "string", **additional}
    return schema


def _spec_schema() -> dict[str, Any]:
    schema = _object_schema(DurableTopicSpec, "spec", SPEC_DESCRIPTION)
    schema["x-kubernetes-validations"] = _cel("spec")
    return schema


def _one_of(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + f" or {words[-1]}." if len(words) > 1 else f"{words[0]}."


def condition_schema(types: Iterable[str] = ConditionType) -> dict[str, Any]:
    """A kstatus condition whose type is one of `types`."""
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string", "description": _one_of([str(t) for t in types])},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string", "description": "One CamelCase word saying why."},
            "message": {"type": "string", "description": "A sentence a person can act on."},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    }


def _status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "What the operator observed in Kafka and concluded.",
        "properties": {
            "observedGeneration": {
                "type": "integer",
                "description": "The metadata.generation this status describes.",
            },
            "topicName": {"type": "string", "description": "The Kafka topic."},
            "topicId": {
                "type": "string",
                "description": "Kafka's id of the topic this object manages, recorded when the operator created or "
                "adopted it and never silently changed: a topic with another id under this name is not touched "
                "(TopicReplaced).",
            },
            "clusterId": {
                "type": "string",
                "description": "Kafka's id of the cluster that holds the topic, recorded once (ClusterChanged when "
                "Kafka reports another).",
            },
            "lastAppliedGeneration": {
                "type": "integer",
                "description": "The last metadata.generation whose spec was fully applied to the topic: a difference "
                "found later in the same generation is drift.",
            },
            "appliedReplicationFactor": {
                "type": "integer",
                "description": "The replication factor the operator last brought the topic to; replicas are taken "
                "away only when spec.replicationFactor asks for fewer than this.",
            },
            "managedConfigs": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The spec.config keys the operator set on the topic; a key removed from spec.config "
                "loses its override on the topic.",
            },
            "partitions": {"type": "integer", "description": "Partitions in Kafka."},
            "replicationFactor": {
                "type": "integer",
                "description": "Smallest replica count of any partition in Kafka.",
            },
            "minInSyncReplicas": {
                "type": "integer",
                "description": "min.insync.replicas in force on the topic.",
            },
            "unmanagedConfigs": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Configs set on the topic that the spec does not name (left alone).",
            },
            "conditions": conditions_schema(condition_schema()),
            "drift": {
                "type": "array",
                "description": "Keys in which Kafka differs from the spec and the policy, found by the sweep.",
                "items": {
                    "type": "object",
                    "properties": {
                        "key": {
                            "type": "string",
                            "description": "A topic config, replicationFactor, partitions or topic.",
                        },
                        "expected": {"type": "string"},
                        "actual": {"type": "string"},
                        "severity": {"type": "string", "enum": [str(s) for s in DIFFERENCE_SEVERITIES]},
                        "firstSeen": {"type": "string", "format": "date-time"},
                        "action": {"type": "string", "enum": [str(a) for a in DriftAction]},
                    },
                },
            },
            "replicasChange": {
                "type": "object",
                "description": "Progress of a replication-factor change done by partition reassignment.",
                "properties": {
                    "targetReplicationFactor": {"type": "integer"},
                    "state": {"type": "string", "enum": [str(s) for s in ReplicasChangeState]},
                    "partitionsDone": {"type": "integer"},
                    "partitionsTotal": {"type": "integer"},
                    "message": {"type": "string"},
                },
            },
            "health": {
                "type": "object",
                "description": "Replica health of the topic's partitions at the last sweep.",
                "properties": {
                    "partitions": {"type": "integer"},
                    "underReplicated": {
                        "type": "integer",
                        "description": "Partitions whose ISR is smaller than their replicas.",
                    },
                    "underMinIsr": {
                        "type": "integer",
                        "description": "Partitions with no leader or fewer in-sync replicas than min.insync.replicas.",
                    },
                    "atMinIsr": {
                        "type": "integer",
                        "description": "Partitions one failure away from under-min-ISR.",
                    },
                    "offline": {"type": "integer", "description": "Partitions with no leader."},
                    "withEligibleLeaderReplicas": {
                        "type": "integer",
                        "description": "Partitions under min ISR or leaderless with eligible leader replicas "
                        "(Kafka 4.x, KIP-966): replicas out of the ISR that can still be elected cleanly.",
                    },
                },
            },
            "lastReconcileTime": {
                "type": "string",
                "format": "date-time",
                "description": "When the operator last changed this status.",
            },
        },
    }


def build() -> dict[str, Any]:
    columns = [
        {"name": "Topic", "type": "string", "jsonPath": ".status.topicName"},
        {"name": "Partitions", "type": "integer", "jsonPath": ".spec.partitions"},
        {"name": "RF", "type": "integer", "jsonPath": ".spec.replicationFactor"},
        {"name": "MinISR", "type": "integer", "jsonPath": ".spec.minInSyncReplicas"},
        condition_column("Ready", "Ready"),
        condition_column("Reason", "Ready", "reason"),
        AGE_COLUMN,
    ]
    root = root_schema(
        "A Kafka topic that is durable by construction: replication factor, "
        "min.insync.replicas and unclean leader election enforced by the operator.",
        _spec_schema(),
        _status_schema(),
        _cel(""),
    )
    return definition(Names(KIND, PLURAL, SINGULAR, SHORT_NAMES), "Namespaced", columns, root)


OBSERVED_GENERATION = {"type": "integer", "description": "The metadata.generation this status describes."}


def conditions_schema(items: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """`status.conditions`: a list of conditions keyed by their type."""
    schema: dict[str, Any] = {"type": "array"}
    if description:
        schema["description"] = description
    schema.update({"items": items, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    return schema


AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def condition_column(name: str, condition: str, field: str = "status") -> dict[str, str]:
    """A printer column of one condition's status (or reason)."""
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].{field}',
    }


def root_schema(
    description: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    validations: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The openAPIV3Schema of a resource with a required spec and a status."""
    root: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if validations:
        root["x-kubernetes-validations"] = validations
    return root


@dataclass(frozen=True, slots=True)
class Names:
    kind: str
    plural: str
    singular: str
    short_names: list[str]


def definition(
    names: Names, scope: str, columns: list[dict[str, str]], root: dict[str, Any]
) -> dict[str, Any]:
    """A CustomResourceDefinition of this group, one version with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{names.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "durable-topic-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": names.kind,
                "listKind": f"{names.kind}List",
                "plural": names.plural,
                "singular": names.singular,
                "shortNames": names.short_names,
            },
            "scope": scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
