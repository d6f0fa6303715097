"""Offline validation of DurableTopic manifests: what the API server and the operator would say.

Each DurableTopic is checked the way the API server checks it (`schema.py`), then with the rules the
CRD's CEL carries (`rules.check_spec`, `rules.check_transition`), then with the platform's floors
(`rules.check_policy`, which the admission policy and the operator enforce). Each finding says who
refuses it (`Stage`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from durabletopic.core import crd, rules
from durabletopic.core.findings import Finding
from durabletopic.core.model import Policy
from durabletopic.core.reasons import Severity, Stage
from durabletopic.tools.manifests import Manifest, ManifestSet, ReadError, load
from durabletopic.tools.schema import (
    UNKNOWN_FIELD,
    admitted_spec,
    check_metadata,
    check_schema,
    prepare,
    root_schema,
)


@dataclass(slots=True)
class Report:
    manifests: list[Manifest] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    skipped: int = 0
    files: int = 0

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


def check_manifest(manifest: Manifest, policy: Policy) -> list[Finding]:
    """Everything wrong with one DurableTopic on its own: schema, CEL rules, floors."""

    def finding(
        field: str, rule: str, message: str, stage: Stage, severity: Severity = Severity.ERROR
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
        )

    found = [
        finding("", "duplicate-key", f"line {line}: {message}", Stage.API_SERVER, Severity.WARNING)
        for line, message in manifest.warnings
    ]
    obj = manifest.object
    api_version = obj.get("apiVersion")
    if api_version != crd.API_VERSION:
        found.append(
            finding(
                "apiVersion",
                "unknown-version",
                f"apiVersion must be {crd.API_VERSION}, got {api_version!r}: the API server has no other version",
                Stage.API_SERVER,
            )
        )
        return found
    found += [finding(p.field, p.rule, p.message, Stage.API_SERVER, p.severity) for p in check_metadata(obj)]

    prepared = prepare({k: v for k, v in obj.items() if k not in ("metadata", "status")})
    schema_problems = check_schema(prepared, root_schema(), "")
    spec = prepared.get("spec")
    violations: list[rules.Violation] = []
    if isinstance(spec, dict):
        violations = rules.check_spec(spec, manifest.name or None)
    covered = {v.field for v in violations}
    found += [
        finding(p.field, p.rule, p.message, Stage.API_SERVER, p.severity)
        for p in schema_problems
        if p.field not in covered
    ]
    found += [finding(v.field, v.rule, v.message, _stage_of(v)) for v in violations]
    if isinstance(spec, dict):
        rf, min_isr = spec.get("replicationFactor"), spec.get("minInSyncReplicas")
        if isinstance(rf, int) and isinstance(min_isr, int) and _is_int(rf) and _is_int(min_isr):
            found += [
                finding(v.field, v.rule, v.message, Stage.ADMISSION_POLICY)
                for v in rules.check_policy(rf, min_isr, policy)
            ]
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
    paths: Sequence[str], policy: Policy | None = None, previous: Sequence[str] = (), *, strict: bool = False
) -> Report:
    """Check every DurableTopic in `paths`; with `previous`, also as updates of the objects there.

    `strict` makes unknown fields errors, as `kubectl apply --validate=strict` (kubectl's default) does;
    duplicate keys stay warnings, as kubectl lets the last one win even then.
    """
    policy = policy or Policy()
    report = Report.of(load(paths))
    for manifest in report.manifests:
        report.findings += check_manifest(manifest, policy)
    if previous:
        old_report = load(previous)
        report.errors += old_report.errors
        old_by_key = {m.key: m for m in old_report.manifests}
        for manifest in report.manifests:
            old = old_by_key.get(manifest.key)
            if old is not None:
                report.findings += check_change(old, manifest)
    if strict:
        report.findings = [
            dataclasses.replace(f, severity=Severity.ERROR) if f.rule == UNKNOWN_FIELD else f
            for f in report.findings
        ]
    return report
