"""One source of rules: the real API server and the offline validator give every corpus manifest the
same verdict, and the server's message names the field the validator names.

Each manifest goes to `kubectl apply --dry-run=server` as it is written (kubectl parses the YAML),
in a namespace with no admission policy (the CRD's schema and CEL rules alone) and in one that the
platform's floors policy (deploy/admissionpolicy.yaml) is bound to. Transitions (a manifest with a
`# previous:` file) are applied for real, then updated with a dry run.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from durabletopic.core import admission
from durabletopic.core.findings import Finding
from durabletopic.core.model import Policy
from durabletopic.core.reasons import Severity, Stage
from durabletopic.tools import manifests, validate
from tests import corpus

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("crd_installed")]

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "deploy" / "admissionpolicy.yaml"
FLOORS_LABEL = "durabletopic.dev/corpus-floors"
PAUSED = "durabletopic.dev/paused"
ENTRIES = corpus.entries()
# The server stops before checking everything: a type error skips the CEL rules; a strict decoding
# error (unknown field) skips the schema; a ValidatingAdmissionPolicy reports only its first failed
# validation (below both floors, it names spec.replicationFactor only).
STOPS_EARLY = ("some validation rules were not checked", "strict decoding error", "ValidatingAdmissionPolicy")


@dataclass(frozen=True)
class Namespaces:
    plain: str
    floors: str | None  # None: deploy/admissionpolicy.yaml is not there


def kubectl(testbed: Any, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = testbed.kubectl(*args, input=input, check=False, timeout=60)
    return result


def dry_run(testbed: Any, namespace: str, text: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return kubectl(testbed, "apply", "--dry-run=server", "-n", namespace, *flags, "-f", "-", input=text)


def below_floor(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "durabletopic.dev/v1alpha1",
            "kind": "DurableTopic",
            "metadata": {"name": name},
            "spec": {"partitions": 1, "replicationFactor": 2, "minInSyncReplicas": 1},
        }
    )


def scoped_admission_policy(
    suffix: str, name: str, namespace_selector: dict[str, Any]
) -> list[dict[str, Any]]:
    """The policy of deploy/admissionpolicy.yaml named `...-{suffix}` and its binding, renamed `name`, the
    binding limited to the namespaces `namespace_selector` selects: other tests on a shared bed create
    objects the policies refuse on purpose."""
    documents = [d for d in yaml.safe_load_all(POLICY_FILE.read_text()) if d]
    named = [d for d in documents if d["metadata"]["name"].endswith(f"-{suffix}")]
    policies = [d for d in named if d["kind"] == "ValidatingAdmissionPolicy"]
    bindings = [d for d in named if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert len(policies) == 1 and len(bindings) == 1, f"expected one {suffix} policy and one binding"
    [policy], [binding] = policies, bindings
    policy["metadata"] = {"name": name}
    binding["metadata"] = {"name": name}
    binding["spec"]["policyName"] = name
    binding["spec"].setdefault("matchResources", {})["namespaceSelector"] = namespace_selector
    return [policy, binding]


def scoped_policy(run_id: str) -> list[dict[str, Any]]:
    """The floors policy of deploy/admissionpolicy.yaml for the namespaces labelled for this run."""
    selector = {"matchLabels": {FLOORS_LABEL: run_id}}
    return scoped_admission_policy(admission.POLICY_SUFFIX, f"durabletopic-corpus-{run_id}", selector)


@pytest.fixture(scope="module")
def namespaces(testbed: Any) -> Iterator[Namespaces]:
    run_id = uuid.uuid4().hex[:8]
    plain, floors = f"corpus-{run_id}", f"corpus-floors-{run_id}"
    created = [plain]
    testbed.kubectl("create", "namespace", plain)
    policy_docs: list[dict[str, Any]] = []
    try:
        if POLICY_FILE.exists():
            testbed.kubectl("create", "namespace", floors)
            created.append(floors)
            testbed.kubectl("label", "namespace", floors, f"{FLOORS_LABEL}={run_id}")
            policy_docs = scoped_policy(run_id)
            testbed.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in policy_docs))
            # The policy takes effect once the API server has synced it: wait for a refusal.
            deadline = time.monotonic() + 60
            while dry_run(testbed, floors, below_floor("probe")).returncode == 0:
                assert time.monotonic() < deadline, "the admission policy did not take effect within 60 s"
                time.sleep(0.5)
            assert dry_run(testbed, plain, below_floor("probe")).returncode == 0, "policy not scoped"
        yield Namespaces(plain, floors if policy_docs else None)
    finally:
        for document in reversed(policy_docs):
            kind = document["kind"].lower()
            kubectl(testbed, "delete", kind, document["metadata"]["name"], "--ignore-not-found")
        for namespace in created:
            kubectl(testbed, "delete", "namespace", namespace, "--wait=false")


def mentions(message: str, field: str) -> bool:
    """Whether the server's message names `field` (the validator's spec.config[key] is the server's
    spec.config.key, or spec.config with the key in the text)."""
    if field.endswith("]") and "[" in field:
        base, key = field[:-1].split("[", 1)
        return f"{base}.{key}" in message or (base in message and key in message)
    # kubectl itself refuses these before the request: its words, not the field path.
    aliases = {
        "metadata.name": ("metadata.name", "resource name"),
        "apiVersion": ("apiVersion", "no matches for kind"),
    }
    return any(alias in message for alias in aliases.get(field, (field,)))


def error_findings(report: validate.Report, stages: set[Stage]) -> list[Finding]:
    return [f for f in report.findings if f.severity is Severity.ERROR and f.stage in stages]


def assert_same_verdict(
    entry: corpus.Entry,
    report: validate.Report,
    stages: set[Stage],
    result: subprocess.CompletedProcess[str],
) -> None:
    refusing = error_findings(report, stages)
    expected_rejected = bool(report.errors or refusing)
    server = result.stderr.strip() or result.stdout.strip()
    summary = [f"{f.field} {f.rule} ({f.stage})" for f in refusing] + [str(e) for e in report.errors]
    assert (result.returncode != 0) == expected_rejected, (
        f"{entry.id}: the API server {'rejected' if result.returncode else 'accepted'} it, the validator "
        f"{'rejects' if expected_rejected else 'accepts'} it: {summary}\nserver: {server[:2000]}"
    )
    if not refusing:
        return
    # The first stage that refuses is the one whose fields the server names (schema before admission).
    first = next(stage for stage in Stage if any(f.stage is stage for f in refusing))
    fields = sorted({f.field for f in refusing if f.stage == first})
    named = [f for f in fields if mentions(server, f)]
    if any(early in server for early in STOPS_EARLY):  # the server stopped at the first problems
        assert named, f"{entry.id}: the server names none of {fields}: {server[:2000]}"
    else:
        assert named == fields, f"{entry.id}: the server names {named} of {fields}: {server[:2000]}"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_api_server_and_validator_agree(testbed: Any, namespaces: Namespaces, entry: corpus.Entry) -> None:
    report = validate.validate([str(entry.path)], Policy())
    # --validate=false: the API server's own behaviour (unknown fields dropped), as the validator's default.
    result = dry_run(testbed, namespaces.plain, entry.text, "--validate=false")
    assert_same_verdict(entry, report, {Stage.API_SERVER}, result)
    if namespaces.floors is not None:
        result = dry_run(testbed, namespaces.floors, entry.text, "--validate=false")
        assert_same_verdict(entry, report, {Stage.API_SERVER, Stage.ADMISSION_POLICY}, result)
    if entry.warn:
        # kubectl's default, --validate=strict, against the validator's --strict.
        strict = validate.validate([str(entry.path)], Policy(), strict=True)
        assert_same_verdict(entry, strict, {Stage.API_SERVER}, dry_run(testbed, namespaces.plain, entry.text))


def test_floors_are_the_admission_policys(testbed: Any, namespaces: Namespaces) -> None:
    if namespaces.floors is None:
        pytest.skip("deploy/admissionpolicy.yaml is not there")
    floors = [e for e in ENTRIES if e.stage == "admission-policy"]
    assert floors
    for entry in floors:
        assert dry_run(testbed, namespaces.plain, entry.text).returncode == 0, entry.id
        result = dry_run(testbed, namespaces.floors, entry.text)
        assert result.returncode != 0, entry.id
        # The policy names the first floor broken (it stops there), as the validator's first finding.
        report = validate.validate([str(entry.path)], Policy())
        assert report.findings[0].field in result.stderr, (entry.id, result.stderr)
        assert "below the floor" in result.stderr


TRANSITIONS = [e for e in ENTRIES if e.previous is not None]


@pytest.mark.parametrize("entry", TRANSITIONS, ids=lambda e: e.id)
def test_transition_rules_agree(testbed: Any, namespaces: Namespaces, entry: corpus.Entry) -> None:
    assert entry.previous is not None
    namespace = namespaces.plain
    old_text, new_text = entry.previous.read_text(), entry.text
    [old] = manifests.parse_manifests(old_text)
    [new] = manifests.parse_manifests(new_text)
    assert validate.check_manifest(old, Policy()) == [] and validate.check_manifest(new, Policy()) == []
    findings = validate.check_change(old, new)
    assert {(f.rule, f.field) for f in findings} == entry.expect

    stored = json.loads(json.dumps(old.object))
    # Paused: should an operator be running, it makes no Kafka calls for this object.
    stored["metadata"].setdefault("annotations", {})[PAUSED] = "true"
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(stored))
    result = dry_run(testbed, namespace, new_text)
    assert result.returncode != 0, f"{entry.id}: the API server admitted the update"
    for finding in findings:
        assert mentions(result.stderr, finding.field), (entry.id, result.stderr)
        assert finding.message.split(":")[0] in result.stderr, (entry.id, finding.message, result.stderr)
