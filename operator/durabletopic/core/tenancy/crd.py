"""The DurabilityPolicy CustomResourceDefinition, generated from `DurabilityPolicySpec`.

The schema (names, types, bounds, descriptions: what `kubectl explain durabilitypolicy.spec` shows) is
converted from the model's JSON schema to the structural schema the API server wants (`openapi.py`).
"""

from __future__ import annotations

from typing import Any

from durabletopic.core import crd as durabletopic_crd
from durabletopic.core.openapi import model_schema
from durabletopic.core.reasons import PolicyConditionType
from durabletopic.core.tenancy.model import DurabilityPolicySpec

KIND = "DurabilityPolicy"
PLURAL = "durabilitypolicies"
SINGULAR = "durabilitypolicy"
SHORT_NAMES = ["dtp"]
GROUP = durabletopic_crd.GROUP
VERSION = durabletopic_crd.VERSION

# Defaults written into stored objects: the scalar ones a reader of the object should see.
_DEFAULTED = frozenset({"adoption", "allowUnlimited"})

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


def spec_schema() -> dict[str, Any]:
    schema = model_schema(DurabilityPolicySpec, defaulted=_DEFAULTED, rules=_RULES_BY_DEFINITION)
    schema["x-kubernetes-validations"] = SPEC_RULES
    return schema


def _status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "What the operator found about this policy.",
        "properties": {
            "observedGeneration": durabletopic_crd.OBSERVED_GENERATION,
            "conditions": durabletopic_crd.conditions_schema(
                durabletopic_crd.condition_schema(PolicyConditionType),
                " and ".join(list(PolicyConditionType))
                + ": Ready says the policy is read and enforced; Conflicting says its topic name prefixes "
                "overlap those another policy gives to namespaces this one does not select.",
            ),
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
        durabletopic_crd.condition_column("Ready", "Ready"),
        durabletopic_crd.condition_column("Conflicting", "Conflicting"),
        durabletopic_crd.AGE_COLUMN,
    ]
    root = durabletopic_crd.root_schema(
        "What the DurableTopics of a group of namespaces may do: topic name prefixes, durability "
        "floors, config rules, quotas, deletion and adoption. Enforced at admission and at reconcile time.",
        spec_schema(),
        _status_schema(),
    )
    return durabletopic_crd.definition(
        durabletopic_crd.Names(KIND, PLURAL, SINGULAR, SHORT_NAMES), "Cluster", columns, root
    )
