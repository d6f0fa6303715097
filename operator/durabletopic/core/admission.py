"""The ValidatingAdmissionPolicy that refuses, at `kubectl apply`, a DurableTopic below the floors.

Generated from the rules' floors (`rules.FLOOR_RULES`) and the spec's defaults (`model.py`), so that
the admission policy, the offline `validate` and the operator cannot disagree. The floors are given
as text: numbers for deploy/, Helm expressions for the chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durabletopic.core import crd
from durabletopic.core.model import spec_default
from durabletopic.core.rules import FLOOR_RULES

POLICY_SUFFIX = "floors"
# Only a create, or an update that changes the spec: metadata-only updates (the operator's
# finalizers and annotations, a deletion in progress) of an object admitted before the floors
# were raised must go through, or such an object could never be deleted.
SPEC_CHANGED = "oldObject == null || !has(oldObject.spec) || object.spec != oldObject.spec"


def policy_spec(floors: Mapping[str, str], failure_policy: str) -> dict[str, Any]:
    """The policy's `spec`; `floors` maps each floor rule's Policy attribute to its value as text."""
    variables = []
    validations = []
    for rule in FLOOR_RULES:
        default = spec_default(rule.field)
        variables.append(
            {
                "name": rule.field,
                "expression": f"has(object.spec.{rule.field}) ? object.spec.{rule.field} : {default}",
            }
        )
        floor = floors[rule.floor]
        message = rule.message(f'" + string(variables.{rule.field}) + "', floor)
        validations.append(
            {
                "expression": f"variables.{rule.field} >= {floor}",
                "messageExpression": f'"{message}"',
                "reason": "Invalid",
            }
        )
    return {
        "failurePolicy": failure_policy,
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [crd.GROUP],
                    "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": [crd.PLURAL],
                }
            ]
        },
        "matchConditions": [{"name": "spec-changed", "expression": SPEC_CHANGED}],
        "variables": variables,
        "validations": validations,
    }


def policy(
    name: str, labels: Mapping[str, str], floors: Mapping[str, str], failure_policy: str
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": policy_spec(floors, failure_policy),
    }


def binding(
    name: str, labels: Mapping[str, str], actions: list[str], namespace_selector: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "policyName": name,
            "validationActions": actions,
            "matchResources": {"namespaceSelector": dict(namespace_selector)},
        },
    }
