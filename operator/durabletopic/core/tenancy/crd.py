"""The DurabilityPolicy CustomResourceDefinition, generated from `DurabilityPolicySpec`.

The schema (names, types, bounds, descriptions: what `kubectl explain durabilitypolicy.spec` shows) is
converted from the model's JSON schema to the structural schema the API server wants.
"""

from __future__ import annotations

from typing import Any

from durabletopic.core import crd as durabletopic_crd
from durabletopic.core.reasons import PolicyConditionType
from durabletopic.core.tenancy.model import DurabilityPolicySpec

KIND = "DurabilityPolicy"
PLURAL = "durabilitypolicies"
SINGULAR = "durabilitypolicy"
SHORT_NAMES = ["dtp"]
GROUP = durabletopic_crd.GROUP
VERSION = durabletopic_crd.VERSION

# Defaults written into stored objects: the scalar ones a reader of the object should see.
_DEFAULTED = {"adoption", "allowUnlimited"}
_DROPPED = {"title", "default"}

SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": "!has(self.minInSyncReplicas) || !has(self.minReplicationFactor) "
        "|| self.minInSyncReplicas < self.minReplicationFactor",
        "message": "spec.minInSyncReplicas must be less than spec.minReplicationFactor, or no topic could meet both",
        "fieldPath": ".minInSyncReplicas",
    },
]
BOUND_RULES: list[dict[str, str]] = [
    {
        "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
        "message": "min must not be above max",
    }
]
REQUIREMENT_RULES: list[dict[str, str]] = [
    {
        "rule": "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 "
        ": !has(self.values) || size(self.values) == 0",
        "message": "values must be set for In and NotIn, and empty for Exists and DoesNotExist",
    }
]
_RULES_BY_DEFINITION = {
    "ConfigBound": BOUND_RULES,
    "SelectorRequirement": REQUIREMENT_RULES,
}


def _structural(
    schema: dict[str, Any], definitions: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """Pydantic's JSON schema of one node as an OpenAPI v3 structural schema."""
    if "$ref" in schema:
        target = schema["$ref"].rsplit("/", 1)[-1]
        resolved = _structural(definitions[target], definitions, name)
        if "description" in schema:
            resolved["description"] = schema["description"]
        if "default" in schema and name in _DEFAULTED:
            resolved["default"] = schema["default"]
        if rules := _RULES_BY_DEFINITION.get(target):
            resolved["x-kubernetes-validations"] = rules
        return resolved
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        assert len(options) == 1, schema
        merged = {**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
        return _structural(merged, definitions, name)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k not in _DROPPED | {"properties", "items"}}
    if "default" in schema and name in _DEFAULTED:
        out["default"] = schema["default"]
    out.pop("required", None)
    if schema.get("type") == "object" or "properties" in schema:
        out["type"] = "object"
        if "properties" in schema:
            out["properties"] = {
                key: _structural(value, definitions, key) for key, value in schema["properties"].items()
            }
            if schema.get("required"):
                out["required"] = list(schema["required"])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            out["additionalProperties"] = _nested(additional, definitions)
        elif "additionalProperties" in out:
            del out["additionalProperties"]
    if "items" in schema:
        out["items"] = _nested(schema["items"], definitions)
    return out


def _nested(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The schema of a list's items or a map's values: the field that holds them describes them."""
    nested = _structural(schema, definitions)
    nested.pop("description", None)
    return nested


def spec_schema() -> dict[str, Any]:
    document = DurabilityPolicySpec.model_json_schema(by_alias=True)
    definitions = document.pop("$defs", {})
    schema = _structural(document, definitions)
    schema["description"] = " ".join((DurabilityPolicySpec.__doc__ or "").split())
    schema["x-kubernetes-validations"] = SPEC_RULES
    # `{namespace}` prefixes: items of topicNamePrefixes are strings with a length bound.
    prefixes = schema["properties"]["topicNamePrefixes"]
    prefixes["items"] = {"type": "string", **prefixes.get("items", {})}
    return schema


def _status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "What the operator found about this policy.",
        "properties": {
            "observedGeneration": {
                "type": "integer",
                "description": "The metadata.generation this status describes.",
            },
            "conditions": {
                "type": "array",
                "description": " and ".join(list(PolicyConditionType))
                + ": Ready says the policy is read and enforced; Conflicting says its topic name prefixes "
                "overlap those another policy gives to namespaces this one does not select.",
                "items": {
                    **durabletopic_crd.condition_schema(),
                },
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "namespaces": {"type": "integer", "description": "Namespaces this policy selects."},
            "durableTopics": {
                "type": "integer",
                "description": "DurableTopics in the namespaces this policy selects.",
            },
            "violations": {
                "type": "integer",
                "description": "DurableTopics that break a rule of this policy now (Stalled with reason "
                "PolicyViolation; their topics are left untouched).",
            },
            "conflictingPolicies": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The policies whose prefixes overlap this one's for namespaces the two do not share.",
            },
        },
    }


def build() -> dict[str, Any]:
    columns = [
        {"name": "Namespaces", "type": "integer", "jsonPath": ".status.namespaces"},
        {"name": "Topics", "type": "integer", "jsonPath": ".status.durableTopics"},
        {"name": "Violations", "type": "integer", "jsonPath": ".status.violations"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {
            "name": "Conflicting",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Conflicting")].status',
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    root = {
        "type": "object",
        "description": "What the DurableTopics of a group of namespaces may do: topic name prefixes, durability "
        "floors, config rules, quotas, deletion and adoption. Enforced at admission and at reconcile time.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": _status_schema(),
        },
    }
    return durabletopic_crd.definition(
        durabletopic_crd.Names(KIND, PLURAL, SINGULAR, SHORT_NAMES), "Cluster", columns, root
    )
