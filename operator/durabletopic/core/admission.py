"""The ValidatingAdmissionPolicies that refuse, at `kubectl apply`, what the operator would refuse.

Two policies, generated from the rules so that the admission policies, the offline `validate` and
the operator cannot disagree:
- the floors: the operator-wide floors (`rules.FLOOR_RULES`, with the spec's defaults from
  `model.py`) and the internal topics (`tenancy/internal.py`). The floors and the exceptions are
  given as text: numbers for deploy/, Helm expressions for the chart;
- the tenancy policy: the rules of `tenancy/rules.py`, with every DurabilityPolicy as a parameter
  (`paramKind`): each policy that selects the object's namespace is checked on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durabletopic.core import crd
from durabletopic.core.model import spec_default
from durabletopic.core.rules import FLOOR_RULES
from durabletopic.core.tenancy import crd as policy_crd
from durabletopic.core.tenancy import internal
from durabletopic.core.tenancy.rules import CEL_VARIABLES, TENANCY_RULES, cel

POLICY_SUFFIX = "floors"
TENANCY_SUFFIX = "tenancy"
_TOPIC_VARIABLES = ("topicName", "topicField")
# Only a create, or an update that changes the spec: metadata-only updates (the operator's
# finalizers and annotations, a deletion in progress) of an object admitted before the floors
# were raised must go through, or such an object could never be deleted.
SPEC_CHANGED = "oldObject == null || !has(oldObject.spec) || object.spec != oldObject.spec"


def _match_constraints() -> dict[str, Any]:
    return {
        "resourceRules": [
            {
                "apiGroups": [crd.GROUP],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": [crd.PLURAL],
            }
        ]
    }


def policy_spec(floors: Mapping[str, str], failure_policy: str, exceptions: str = "[]") -> dict[str, Any]:
    """The floors policy's `spec`; `floors` maps each floor rule's Policy attribute to its value as
    text, `exceptions` is the CEL list of internal topics the operator may manage."""
    variables = [{"name": n, "expression": e} for n, e in CEL_VARIABLES if n in _TOPIC_VARIABLES]
    validations = [
        {
            "expression": internal.cel_expression(exceptions),
            "messageExpression": internal.cel_message(),
            "reason": "Invalid",
        }
    ]
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
        "matchConstraints": _match_constraints(),
        "matchConditions": [{"name": "spec-changed", "expression": SPEC_CHANGED}],
        "variables": variables,
        "validations": validations,
    }


def tenancy_policy_spec(failure_policy: str) -> dict[str, Any]:
    """The tenancy policy's `spec`: every rule, checked against each DurabilityPolicy that selects the
    object's namespace (a policy that selects it not passes every validation)."""
    return {
        "failurePolicy": failure_policy,
        "paramKind": {"apiVersion": crd.API_VERSION, "kind": policy_crd.KIND},
        "matchConstraints": _match_constraints(),
        "matchConditions": [{"name": "spec-changed", "expression": SPEC_CHANGED}],
        "variables": [{"name": name, "expression": cel(expression)} for name, expression in CEL_VARIABLES],
        "validations": [
            {
                "expression": f"!variables.selected || ({cel(rule.expression)})",
                "messageExpression": cel(rule.message),
                "reason": "Forbidden",
            }
            for rule in TENANCY_RULES
        ],
    }


def policy(
    name: str,
    labels: Mapping[str, str],
    floors: Mapping[str, str],
    failure_policy: str,
    exceptions: str = "[]",
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": policy_spec(floors, failure_policy, exceptions),
    }


def tenancy_policy(name: str, labels: Mapping[str, str], failure_policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": tenancy_policy_spec(failure_policy),
    }


# Every DurabilityPolicy is a parameter; with none, nothing is checked.
PARAM_REF: dict[str, Any] = {"selector": {}, "parameterNotFoundAction": "Allow"}


def binding(
    name: str,
    labels: Mapping[str, str],
    actions: list[str],
    namespace_selector: Mapping[str, Any],
    param_ref: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyName": name, "validationActions": actions}
    if param_ref is not None:
        spec["paramRef"] = dict(param_ref)
    spec["matchResources"] = {"namespaceSelector": dict(namespace_selector)}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": spec,
    }
