"""Offline validation of DurableTopic manifests: what the API server and the operator would say.

Each DurableTopic is checked the way the API server checks it (`schema.py`), then with the rules the
CRD's CEL carries (`rules.check_spec`, `rules.check_transition`), then with the platform's floors
(`rules.check_policy`) and the internal topics (`tenancy/internal.py`), which the floors admission
policy and the operator enforce, then with the rules of the DurabilityPolicies that select its namespace
(`tenancy/rules.check_request`, the tenancy admission policy's), and last, over all the manifests of a
namespace, with the namespace quotas (`tenancy/rules.check_quotas`), which only the operator checks.
Each finding says who refuses it (`Stage`).

The quotas count a namespace's objects oldest first. Offline, the order of the manifests in the files
(files in the order given, a directory's files by name) stands in for their age: on a cluster that
already holds some of them, the oldest objects there come first.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from durabletopic.core import crd, rules
from durabletopic.core.findings import Finding
from durabletopic.core.model import DurableTopicSpec, Policy
from durabletopic.core.reasons import Severity, Stage
from durabletopic.core.tenancy import internal
from durabletopic.core.tenancy import rules as tenancy_rules
from durabletopic.core.tenancy.rules import TopicRequest
from durabletopic.tools.manifests import Manifest, ManifestSet, ReadError, load
from durabletopic.tools.schema import (
    UNKNOWN_FIELD,
    admitted_spec,
    check_metadata,
    check_schema,
    prepare,
    root_schema,
)
from durabletopic.tools.tenancy import Tenancy


@dataclass(slots=True)
class Report:
    manifests: list[Manifest] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    skipped: int = 0
    files: int = 0
    policies: tuple[str, ...] = ()  # the DurabilityPolicies the manifests were checked against

    @classmethod
    def of(cls, loaded: ManifestSet) -> Report:
        return cls(loaded.manifests, [], loaded.errors, loaded.skipped, loaded.files)

    @property
    def valid(self) -> bool:
        return not self.errors and not any(f.severity is Severity.ERROR for f in self.findings)

    def findings_of(self, manifest: Manifest) -> list[Finding]:
        return [f for f in self.findings if (f.file, f.document) == (manifest.file, manifest.document)]

    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 0 if self.valid else 1


# Rules of rules.check_spec that the CRD does not carry: the API server would admit such an object
# and the operator refuse it at reconcile time. The CRD carries every rule today.
_ONLY_AT_RECONCILE: frozenset[tuple[str, str]] = frozenset()


def _stage_of(violation: rules.Violation) -> Stage:
    if (violation.rule, violation.field) in _ONLY_AT_RECONCILE:
        return Stage.OPERATOR
    return Stage.API_SERVER


# The rules of DurabilityPolicies and the internal topics: the planner does not check them, so `plan`
# shows their findings as refusals.
POLICY_RULES: frozenset[str] = frozenset({*tenancy_rules.RULE_NAMES, internal.RULE})


def _finding(
    manifest: Manifest,
    field: str,
    rule: str,
    message: str,
    stage: Stage,
    severity: Severity = Severity.ERROR,
    policy: str = "",
) -> Finding:
    return Finding(
        manifest.name,
        rule,
        severity,
        message,
        field,
        stage=stage,
        file=manifest.file,
        document=manifest.document,
        line=manifest.line,
        policy=policy,
    )


def _of_violation(manifest: Manifest, violation: rules.Violation, stage: Stage) -> Finding:
    return _finding(
        manifest, violation.field, violation.rule, violation.message, stage, policy=violation.policy
    )


def check_manifest(manifest: Manifest, policy: Policy, tenancy: Tenancy | None = None) -> list[Finding]:
    """Everything wrong with one DurableTopic on its own: schema, CEL rules, floors, internal topics and
    the rules of the DurabilityPolicies of its namespace."""
    found = [
        _finding(manifest, "", "duplicate-key", f"line {line}: {message}", Stage.API_SERVER, Severity.WARNING)
        for line, message in manifest.warnings
    ]
    obj = manifest.object
    api_version = obj.get("apiVersion")
    if api_version != crd.API_VERSION:
        message = (
            f"apiVersion must be {crd.API_VERSION}, got {api_version!r}: the API server has no other version"
        )
        return [*found, _finding(manifest, "apiVersion", "unknown-version", message, Stage.API_SERVER)]
    found += [
        _finding(manifest, p.field, p.rule, p.message, Stage.API_SERVER, p.severity)
        for p in check_metadata(obj)
    ]

    prepared = prepare({k: v for k, v in obj.items() if k not in ("metadata", "status")})
    schema_problems = check_schema(prepared, root_schema(), "")
    spec = prepared.get("spec")
    violations: list[rules.Violation] = []
    if isinstance(spec, dict):
        violations = rules.check_spec(spec, manifest.name or None)
    covered = {v.field for v in violations}
    found += [
        _finding(manifest, p.field, p.rule, p.message, Stage.API_SERVER, p.severity)
        for p in schema_problems
        if p.field not in covered
    ]
    found += [_of_violation(manifest, v, _stage_of(v)) for v in violations]
    if isinstance(spec, dict):
        admission = _floor_violations(spec, policy) + _tenancy_violations(
            manifest, spec, tenancy or Tenancy()
        )
        found += [_of_violation(manifest, v, Stage.ADMISSION_POLICY) for v in admission]
    return found


def _floor_violations(spec: dict[str, Any], policy: Policy) -> list[rules.Violation]:
    rf, min_isr = spec.get("replicationFactor"), spec.get("minInSyncReplicas")
    if isinstance(rf, int) and isinstance(min_isr, int) and _is_int(rf) and _is_int(min_isr):
        return rules.check_policy(rf, min_isr, policy)
    return []


def _tenancy_violations(manifest: Manifest, spec: dict[str, Any], tenancy: Tenancy) -> list[rules.Violation]:
    """The internal topics (with or without policies), then the rules of every policy that selects the
    manifest's namespace, when the spec has the types the CRD gives it."""
    found: list[rules.Violation] = []
    named = _topic_name(manifest, spec)
    if named is not None:
        found += internal.check_topic_name(*named, tenancy.internal_topic_exceptions)
    request = topic_request(manifest, spec, tenancy)
    if request is not None:
        found += tenancy_rules.check_request(tenancy.governing(request.namespace), request)
    return found


def _topic_name(manifest: Manifest, spec: dict[str, Any]) -> tuple[str, str] | None:
    """The Kafka topic's name and the field that gives it, as the admission policy reads them."""
    topic = spec.get("topicName")
    if isinstance(topic, str):
        return topic, "spec.topicName"
    if topic is None and manifest.name:
        return manifest.name, "metadata.name"
    return None


def typed_spec(spec: dict[str, Any]) -> DurableTopicSpec | None:
    """The spec as the operator reads it, if every field has the type the CRD gives it (no coercion:
    "3" is not a number of partitions)."""
    try:
        return DurableTopicSpec.model_validate_json(json.dumps(spec), strict=True)
    except ValidationError:
        return None


def namespace_of(manifest: Manifest, tenancy: Tenancy) -> str:
    return manifest.namespace or tenancy.default_namespace


def topic_request(manifest: Manifest, spec: dict[str, Any], tenancy: Tenancy) -> TopicRequest | None:
    """What the tenancy rules judge of a manifest, or None when its spec or name does not read."""
    typed = typed_spec(spec)
    if typed is None or not manifest.name:
        return None
    return TopicRequest.of(namespace_of(manifest, tenancy), manifest.name, typed)


def check_quotas(report: Report, tenancy: Tenancy) -> list[Finding]:
    """The namespace quotas, over the manifests the cluster would store (none that the API server or an
    admission policy refuses), each namespace's in the order of the files. A manifest given twice (the
    same namespace and name) is one object: the last one's spec, at the first one's place."""
    refused = {
        (f.file, f.document)
        for f in report.findings
        if f.severity is Severity.ERROR and f.stage in (Stage.API_SERVER, Stage.ADMISSION_POLICY)
    }
    by_namespace: dict[str, dict[str, tuple[Manifest, TopicRequest]]] = {}
    for manifest in report.manifests:
        spec = admitted_spec(manifest.object)
        if (manifest.file, manifest.document) in refused or spec is None:
            continue
        request = topic_request(manifest, spec, tenancy)
        if request is not None:
            by_namespace.setdefault(request.namespace, {})[manifest.name] = (manifest, request)
    found = []
    for namespace, objects in by_namespace.items():
        policies = tenancy.governing(namespace)
        ordered = list(objects.values())
        over = tenancy_rules.check_quotas(policies, [(i, request) for i, (_, request) in enumerate(ordered)])
        found += [_of_violation(ordered[i][0], violation, Stage.OPERATOR) for i, violation in over.items()]
    return found


def check_change(old: Manifest, new: Manifest) -> list[Finding]:
    """The CRD's transition rules, for an update of `old` to `new` (the same object)."""
    old_spec, new_spec = admitted_spec(old.object), admitted_spec(new.object)
    if old_spec is None or new_spec is None:
        return []
    return [
        Finding(
            new.name,
            v.rule,
            Severity.ERROR,
            v.message,
            v.field,
            stage=Stage.API_SERVER,
            file=new.file,
            document=new.document,
            line=new.line,
        )
        for v in rules.check_transition(old_spec, new_spec)
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(
    paths: Sequence[str],
    policy: Policy | None = None,
    previous: Sequence[str] = (),
    *,
    strict: bool = False,
    tenancy: Tenancy | None = None,
) -> Report:
    """Check every DurableTopic in `paths`; with `previous`, also as updates of the objects there.

    `strict` makes unknown fields errors, as `kubectl apply --validate=strict` (kubectl's default) does;
    duplicate keys stay warnings, as kubectl lets the last one win even then. `tenancy` holds the
    DurabilityPolicies, the namespaces' labels and the namespace of manifests that name none.
    """
    policy = policy or Policy()
    tenancy = tenancy or Tenancy()
    report = Report.of(load(paths))
    report.policies = tuple(p.name for p in tenancy.policies)
    for manifest in report.manifests:
        report.findings += check_manifest(manifest, policy, tenancy)
    if previous:
        old_report = load(previous)
        report.errors += old_report.errors
        old_by_key = {_key(m, tenancy): m for m in old_report.manifests}
        for manifest in report.manifests:
            old = old_by_key.get(_key(manifest, tenancy))
            if old is not None:
                report.findings += check_change(old, manifest)
    if strict:
        report.findings = [
            dataclasses.replace(f, severity=Severity.ERROR) if f.rule == UNKNOWN_FIELD else f
            for f in report.findings
        ]
    report.findings += check_quotas(report, tenancy)
    place = {(m.file, m.document): i for i, m in enumerate(report.manifests)}
    report.findings.sort(key=lambda f: place.get((f.file, f.document), len(place)))
    return report


def _key(manifest: Manifest, tenancy: Tenancy) -> tuple[str, str]:
    """The object a manifest is: a manifest without a namespace is in the default one."""
    return namespace_of(manifest, tenancy), manifest.name
