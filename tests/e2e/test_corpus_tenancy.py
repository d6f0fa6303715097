"""One source of tenancy rules: the real API server, with the generated admission policies, and
`validate --policy` give every manifest of the tenancy corpus the same verdict.

The corpus's DurabilityPolicies and namespaces are created under names of this run (`corpus.RunScope`),
the policies selecting this run's namespaces only, and a copy of the two generated admission policies
(deploy/admissionpolicy.yaml: the floors, which carry the internal topics, and the tenancy policy, whose
parameters are the DurabilityPolicies) is installed under names of this run, bound to those namespaces.
`validate` is given what the server holds: every DurabilityPolicy (`kubectl get durabilitypolicies -o
yaml`: a policy of another test that selected these namespaces would count for both) and the run's
Namespace objects (`kubectl get namespaces -o yaml`).

A manifest with findings of the API server or an admission policy is rejected, and the server's message
is one of those findings' messages (a ValidatingAdmissionPolicy reports its first failed validation
only, and one policy's message only); one whose only findings are the operator's (the quotas) is
admitted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durabletopic.core import admission
from durabletopic.core.model import Policy
from durabletopic.core.reasons import Severity, Stage
from durabletopic.tools import tenancy, validate
from tests import corpus
from tests.e2e.test_corpus import mentions, scoped_admission_policy

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("crd_installed")]

CORPUS = corpus.tenancy()
ENTRIES = CORPUS.entries
PROBE_LABEL = "corpus.durabletopic.dev/probe"
POLICY_CRD = "crd/durabilitypolicies.durabletopic.dev"


@dataclass(frozen=True)
class Bed:
    """The run's names, and the files that tell validate what the server holds."""

    scope: corpus.RunScope
    directory: Path
    policies: Path
    namespaces: Path

    def tenancy_for(self, namespace: str) -> tenancy.Tenancy:
        read = tenancy.load([str(self.policies)], [str(self.namespaces)], default_namespace=namespace)
        assert read.errors == [], read.errors
        return read.tenancy


def kubectl(testbed: Any, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = testbed.kubectl(*args, input=input, check=False, timeout=60)
    return result


def dry_run(testbed: Any, namespace: str, text: str) -> subprocess.CompletedProcess[str]:
    # --validate=false: the API server's own behaviour, as the validator's default.
    return kubectl(
        testbed, "apply", "--dry-run=server", "--validate=false", "-n", namespace, "-f", "-", input=text
    )


def as_list(items: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def namespace_objects(scope: corpus.RunScope, probe: str) -> list[dict[str, Any]]:
    labels = {scope.namespace(name): scope.namespace_labels(lbls) for name, lbls in CORPUS.namespaces.items()}
    labels[probe] = scope.namespace_labels({PROBE_LABEL: "true"})
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": lbls}}
        for name, lbls in labels.items()
    ]


def probe_policy(scope: corpus.RunScope) -> dict[str, Any]:
    """Created last: once the admission policy applies it, it has every policy created before it."""
    return {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "DurabilityPolicy",
        "metadata": {"name": f"probe-{scope.run_id}", "labels": {scope.label: scope.run_id}},
        "spec": {
            "namespaceSelector": {"matchLabels": {scope.label: scope.run_id, PROBE_LABEL: "true"}},
            "maxPartitionsPerTopic": 1,
        },
    }


def probe_manifest(topic: str, partitions: int) -> str:
    return json.dumps(
        {
            "apiVersion": "durabletopic.dev/v1alpha1",
            "kind": "DurableTopic",
            "metadata": {"name": "probe"},
            "spec": {"topicName": topic, "partitions": partitions},
        }
    )


def wait_refused(testbed: Any, namespace: str, text: str, words: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        result = dry_run(testbed, namespace, text)
        if result.returncode != 0 and words in result.stderr:
            return
        assert time.monotonic() < deadline, (
            f"not refused with {words!r} within 60 s: {result.stderr or 'admitted'}"
        )
        time.sleep(0.5)


def admission_policies(scope: corpus.RunScope) -> list[dict[str, Any]]:
    selector = {"matchLabels": {scope.label: scope.run_id}}
    return [
        *scoped_admission_policy(admission.POLICY_SUFFIX, f"durabletopic-floors-{scope.run_id}", selector),
        *scoped_admission_policy(admission.TENANCY_SUFFIX, f"durabletopic-tenancy-{scope.run_id}", selector),
    ]


@pytest.fixture(scope="module")
def bed(testbed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    scope = corpus.RunScope(f"r{uuid.uuid4().hex[:8]}")
    probe = scope.namespace("probe")
    testbed.kubectl("wait", "--for=condition=Established", "--timeout=60s", POLICY_CRD)
    namespaces = namespace_objects(scope, probe)
    vaps = admission_policies(scope)
    policies = [*(scope.policy(p) for p in CORPUS.policies), probe_policy(scope)]
    try:
        testbed.kubectl("apply", "-f", "-", input=as_list(namespaces))
        testbed.kubectl("apply", "-f", "-", input=as_list(vaps))
        testbed.kubectl("apply", "-f", "-", input=as_list(policies))
        # In effect once the server refuses what the last policy and the floors refuse.
        wait_refused(
            testbed, probe, probe_manifest(f"{probe}.probe", 2), f"DurabilityPolicy probe-{scope.run_id}"
        )
        wait_refused(testbed, probe, probe_manifest("__probe", 1), "internal or system topic")
        directory = tmp_path_factory.mktemp("tenancy-corpus")
        held_policies = directory / "policies.yaml"
        held_policies.write_text(testbed.kubectl("get", "durabilitypolicies", "-o", "yaml").stdout)
        held_namespaces = directory / "namespaces.yaml"
        names = [n["metadata"]["name"] for n in namespaces]
        held_namespaces.write_text(testbed.kubectl("get", "namespaces", *names, "-o", "yaml").stdout)
        yield Bed(scope, directory, held_policies, held_namespaces)
    finally:
        for document in [*vaps, *policies, *namespaces]:
            kind, name = document["kind"].lower(), document["metadata"]["name"]
            kubectl(testbed, "delete", kind, name, "--ignore-not-found", "--wait=false")


def refusing(report: validate.Report) -> list[Any]:
    stages = (Stage.API_SERVER, Stage.ADMISSION_POLICY)
    return [f for f in report.findings if f.severity is Severity.ERROR and f.stage in stages]


def run_files(bed: Bed, entry: corpus.Entry) -> tuple[Path, str]:
    """The entry under the run's names, and its namespace there."""
    assert entry.namespace is not None
    path = bed.directory / f"{entry.path.stem}.yaml"
    path.write_text(bed.scope.entry_text(entry))
    return path, bed.scope.namespace(entry.namespace)


def logical(bed: Bed, policy: str) -> str | None:
    """The corpus's name of one of the run's policies ("" for none); None for another test's policy."""
    suffix = f"-{bed.scope.run_id}"
    if not policy:
        return ""
    return policy.removesuffix(suffix) if policy.endswith(suffix) else None


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_api_server_and_validator_agree(testbed: Any, bed: Bed, entry: corpus.Entry) -> None:
    path, namespace = run_files(bed, entry)
    report = validate.validate([str(path)], Policy(), tenancy=bed.tenancy_for(namespace))
    assert not report.errors, report.errors
    result = dry_run(testbed, namespace, path.read_text())
    server = result.stderr.strip() or result.stdout.strip()
    refused = refusing(report)
    summary = [f"{f.field} {f.rule} ({f.stage}, {f.policy or 'no policy'})" for f in report.findings]
    assert (result.returncode != 0) == bool(refused), (
        f"{entry.id}: the API server {'rejected' if result.returncode else 'admitted'} it, the validator "
        f"{'rejects' if refused else 'admits'} it: {summary}\nserver: {server[:2000]}"
    )
    if refused:
        named = [f for f in refused if f.message in server]
        assert named, f"{entry.id}: the server's message is none of {summary}: {server[:2000]}"
        assert mentions(server, named[0].field), (entry.id, named[0].field, server[:2000])

    # Under the run's names, the corpus's verdict (the run's policies' findings).
    ours = [f for f in report.findings if logical(bed, f.policy) is not None]
    assert {(f.rule, f.field) for f in ours} == entry.expect, (entry.id, summary)
    assert {(f.rule, f.field, logical(bed, f.policy)) for f in ours} == {
        (e.rule, e.field, e.policy) for e in entry.expected
    }


def test_quotas_are_left_to_the_operator(testbed: Any, bed: Bed) -> None:
    quota_entries = [e for e in ENTRIES if e.stage == "operator"]
    assert len(quota_entries) == 2
    for entry in quota_entries:
        path, namespace = run_files(bed, entry)
        report = validate.validate([str(path)], Policy(), tenancy=bed.tenancy_for(namespace))
        assert {f.stage for f in report.findings} == {Stage.OPERATOR}, entry.id
        result = dry_run(testbed, namespace, path.read_text())
        assert result.returncode == 0, (entry.id, result.stderr)
        assert result.stdout.count("created (server dry run)") == len(report.manifests), result.stdout


def test_plan_refuses_what_the_policies_refuse(testbed: Any, bed: Bed) -> None:
    team_b = [e for e in ENTRIES if e.namespace == "team-b"]
    paths = [str(run_files(bed, e)[0]) for e in team_b]
    namespace = bed.scope.namespace("team-b")
    flags = [
        "--policy",
        str(bed.policies),
        "--namespace-labels",
        str(bed.namespaces),
        "--namespace",
        namespace,
    ]
    command = [sys.executable, "-m", "durabletopic", "plan", *paths, *flags, "--output", "json"]
    command += ["--bootstrap-servers", testbed.bootstrap_servers]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result
    topics = json.loads(result.stdout)["topics"]
    refusals = {
        t["file"]: {(r["field"], logical(bed, r["policy"] or "")) for r in t["refusals"]} for t in topics
    }
    for entry, path in zip(team_b, paths, strict=True):
        assert refusals[path] == {(e.field, e.policy) for e in entry.expected}, (entry.id, refusals[path])
    statuses = {t["status"] for t in topics if not t["refusals"]}
    assert statuses == {"create"}
