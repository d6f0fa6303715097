"""Files generated from the core: the CRD and the admission policy, for crds/, deploy/ and the chart.

`make generate` writes them; a test keeps the committed files equal to what this module renders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from durabletopic import __version__
from durabletopic.core import admission, crd
from durabletopic.core.clusters import crd as cluster_crd
from durabletopic.core.model import Policy
from durabletopic.core.tenancy import crd as policy_crd

CRD_FILE = f"{crd.PLURAL}.{crd.GROUP}.yaml"
POLICY_CRD_FILE = f"{policy_crd.PLURAL}.{policy_crd.GROUP}.yaml"
CLUSTER_CRD_FILE = f"{cluster_crd.PLURAL}.{cluster_crd.GROUP}.yaml"
CHART = "charts/durable-topic-operator"
RELEASE = "durable-topic-operator"

GENERATED = "# Generated from operator/durabletopic/core by `make generate`; do not edit by hand.\n"
ADMISSION_COMMENT = """\
# Rejects, at admission, a DurableTopic below the platform's floors or naming an internal topic, and
# one that breaks a rule of a DurabilityPolicy that selects its namespace (every DurabilityPolicy is a
# parameter of the second policy). The operator enforces the same rules at reconcile time. An absent
# field takes the CRD's default.
"""
# The chart's values that hold each floor of the Policy, and the template variable they are read into.
CHART_FLOORS = {
    "min_replication_factor": ("rf", "minReplicationFactor"),
    "min_insync_replicas": ("isr", "minInSyncReplicas"),
}


def render_crd() -> str:
    return GENERATED + _yaml(crd.build())


def render_policy_crd() -> str:
    return GENERATED + _yaml(policy_crd.build())


def render_cluster_crd() -> str:
    return GENERATED + _yaml(cluster_crd.build())


def _yaml(document: Any, width: float = 120) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=width)


def _unfolded(document: Any) -> str:
    """YAML with no line folded, so that a Helm expression inside a string stays on its line."""
    return _yaml(document, width=float("inf"))


def render_deploy_admission() -> str:
    """deploy/admissionpolicy.yaml: the floors of a default Policy, bound to every namespace."""
    defaults = Policy()
    floors = {name: str(getattr(defaults, name)) for name in CHART_FLOORS}
    labels = {
        "app.kubernetes.io/name": RELEASE,
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/version": __version__,
        "app.kubernetes.io/part-of": RELEASE,
    }
    name = f"{RELEASE}-{admission.POLICY_SUFFIX}"
    tenancy = f"{RELEASE}-{admission.TENANCY_SUFFIX}"
    documents = [
        admission.policy(name, labels, floors, "Fail"),
        admission.binding(name, labels, ["Deny"], {}),
        admission.tenancy_policy(tenancy, labels, "Fail"),
        admission.binding(tenancy, labels, ["Deny"], {}, admission.PARAM_REF),
    ]
    return GENERATED + ADMISSION_COMMENT + "---\n".join(_unfolded(d) for d in documents)


def render_chart_admission() -> str:
    """The chart's template: the same policy, its floors and settings read from the values."""
    floors = {name: f"{{{{ ${var} }}}}" for name, (var, _) in CHART_FLOORS.items()}
    failure = "{{ .Values.admissionPolicy.failurePolicy }}"
    spec = admission.policy_spec(floors, failure, "{{ $exceptions }}")
    reads = "".join(f"{{{{- ${var} := int .Values.{value} }}}}\n" for var, value in CHART_FLOORS.values())
    reads += "{{- $exceptions := .Values.internalTopicExceptions | default list | toJson }}\n"
    return (
        "{{- if .Values.admissionPolicy.enabled }}\n"
        + reads
        + GENERATED
        + ADMISSION_COMMENT
        + _chart_policy(admission.POLICY_SUFFIX, spec, param_ref=False)
        + "---\n"
        + _chart_policy(admission.TENANCY_SUFFIX, admission.tenancy_policy_spec(failure), param_ref=True)
        + "{{- end }}\n"
    )


def _chart_policy(suffix: str, spec: dict[str, Any], *, param_ref: bool) -> str:
    spec_lines = "".join(f"  {line}\n" for line in _unfolded(spec).splitlines())
    name = f'{{{{ include "dto.fullname" . }}}}-{suffix}'
    param_lines = (
        "".join(f"  {line}\n" for line in _unfolded({"paramRef": admission.PARAM_REF}).splitlines())
        if param_ref
        else ""
    )
    return (
        "apiVersion: admissionregistration.k8s.io/v1\n"
        "kind: ValidatingAdmissionPolicy\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  labels:\n"
        '    {{- include "dto.labels" . | nindent 4 }}\n'
        "spec:\n" + spec_lines + "---\n"
        "apiVersion: admissionregistration.k8s.io/v1\n"
        "kind: ValidatingAdmissionPolicyBinding\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  labels:\n"
        '    {{- include "dto.labels" . | nindent 4 }}\n'
        "spec:\n"
        f"  policyName: {name}\n"
        "  validationActions:\n"
        "    {{- toYaml .Values.admissionPolicy.validationActions | nindent 4 }}\n"
        + param_lines
        + "  matchResources:\n"
        "    namespaceSelector:\n"
        '      {{- include "dto.admissionNamespaceSelector" . | trim | nindent 6 }}\n'
    )


def outputs() -> dict[str, str]:
    """Every generated file, by its path in the repository."""
    crds = {
        CRD_FILE: render_crd(),
        POLICY_CRD_FILE: render_policy_crd(),
        CLUSTER_CRD_FILE: render_cluster_crd(),
    }
    return {
        **{f"{where}/{name}": text for name, text in crds.items() for where in ("crds", f"{CHART}/crds")},
        "deploy/admissionpolicy.yaml": render_deploy_admission(),
        f"{CHART}/templates/admissionpolicy.yaml": render_chart_admission(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository's root")
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs")
    args = parser.parse_args(argv)
    stale = []
    for relative, text in outputs().items():
        path = args.root / relative
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(relative)
        else:
            path.write_text(text)
    for relative in stale:
        print(f"{relative} is not what `make generate` writes", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
