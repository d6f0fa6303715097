"""The manifest corpus: bad/*.yaml, good/*.yaml and tenancy/*.yaml, each with its expected verdict in a
header.

Header lines (leading comments):

``# expect: RULE FIELD [policy=NAME] [document=N]``
    a finding (error) `durabletopic validate` must report; one line each, and no other error;
    ``# expect: valid`` when it reports none; ``# expect: unreadable LINE`` for input it cannot read.
    ``policy=`` names the DurabilityPolicy the finding names (``policy=-``: none, as for internal-topic),
    ``document=`` the document (from 0) of a file of several DurableTopics that it is about
``# warn: RULE FIELD``
    a warning it must report (``-`` for no field)
``# stage: STAGE``
    who refuses the object first: ``api-server`` (the CRD's schema and CEL rules: kubectl apply
    fails), ``admission-policy`` (the platform's floors), ``operator`` (admitted, flagged by validate,
    refused at reconcile time), ``kafka`` (admitted and valid offline; Kafka or the live cluster
    refuses it at reconcile time), ``unreadable``, or ``valid``
``# reconcile: Stalled/REASON``
    for an object the API server admits: the condition the operator sets
``# previous: FILE``
    the object as it is before this update (a transition): FILE sits next to it, named ``*.yaml.old``
    so that a directory walk does not pick it up
``# namespace: NAMESPACE``
    the namespace the entry's manifests are applied in (they carry no metadata.namespace); every
    tenancy entry has one

The tenancy corpus (`tenancy()`) is the DurabilityPolicies of tenancy/policies/, the labels of the
namespaces they select (tenancy/namespaces/labels.yaml, a mapping namespace -> labels) and the entries
tenancy/*.yaml, each with its namespace. Every rule of a DurabilityPolicy that can be checked offline has
an entry: the ones of the tenancy admission policy, internal-topic (the floors admission policy) and the
two namespace quotas (the operator, at reconcile time; a quota entry is one file of several DurableTopics
in its own namespace, counted in the order they are written). The policies select by labels under
``corpus.durabletopic.dev/``, and no entry's namespace is another's quota namespace, so that the entries
can share one cluster. On a shared cluster, `RunScope` gives the namespaces and policies names of one run
and confines the policies' selectors to that run's namespaces.

To use it against a cluster: create each namespace of `tenancy().namespaces` with its labels (under
`RunScope`: `scope.namespace(name)`, `scope.namespace_labels(labels)`), the policies
(`scope.policy(p)`), then apply each entry's documents (`scope.entry_text(entry)`) in its namespace, in
the order written, so that a quota entry's first documents are its oldest objects. Where the tenancy
admission policy is not bound, the admission-policy entries are refused by the operator instead.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parent
TENANCY = CORPUS / "tenancy"
POLICIES = TENANCY / "policies"
NAMESPACE_LABELS = TENANCY / "namespaces" / "labels.yaml"
STAGES = frozenset({"api-server", "admission-policy", "operator", "kafka", "unreadable", "valid"})


@dataclass(frozen=True)
class Expected:
    """One `# expect:` line: the rule and field, and, when the line says, the policy and the document."""

    rule: str
    field: str
    policy: str | None = None  # "" for a finding that names no policy; None: the line does not say
    document: int | None = None


@dataclass(frozen=True)
class Entry:
    path: Path
    description: str
    expect: frozenset[tuple[str, str]]
    warn: frozenset[tuple[str, str]]
    stage: str
    reconcile: tuple[str, str] | None
    previous: Path | None
    unreadable_line: int | None
    expected: frozenset[Expected] = field(default_factory=frozenset)
    namespace: str | None = None

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"

    @property
    def text(self) -> str:
        return self.path.read_text()


def _pair(value: str) -> tuple[str, str]:
    rule, _, field = value.partition(" ")
    return rule, "" if field.strip() == "-" else field.strip()


def _expected(value: str) -> Expected:
    words = value.split()
    options = dict(w.split("=", 1) for w in words[2:] if "=" in w)
    unknown = set(options) - {"policy", "document"}
    if len(words) < 2 or unknown or len(options) != len(words) - 2:
        raise ValueError(f"'# expect: {value}' is not RULE FIELD [policy=NAME] [document=N]")
    policy = options.get("policy")
    document = options.get("document")
    return Expected(
        words[0],
        "" if words[1] == "-" else words[1],
        "" if policy == "-" else policy,
        int(document) if document is not None else None,
    )


def read_entry(path: Path) -> Entry:
    description = ""
    expect: set[tuple[str, str]] = set()
    expected: set[Expected] = set()
    warn: set[tuple[str, str]] = set()
    stage = reconcile = previous = namespace = None
    unreadable_line = None
    with path.open() as stream:
        for line in stream:
            if not line.startswith("#"):
                break
            key, sep, value = line[1:].strip().partition(": ")
            value = value.strip()
            if not sep:
                description = description or line[1:].strip()
            elif key == "expect" and value.startswith("unreadable"):
                unreadable_line = int(value.split()[1])
            elif key == "expect" and value != "valid":
                line_expected = _expected(value)
                expected.add(line_expected)
                expect.add((line_expected.rule, line_expected.field))
            elif key == "warn":
                warn.add(_pair(value))
            elif key == "stage":
                stage = value
            elif key == "reconcile":
                reconcile = value
            elif key == "previous":
                previous = value
            elif key == "namespace":
                namespace = value
            elif not description:
                description = line[1:].strip()
    if stage not in STAGES:
        raise ValueError(f"{path}: '# stage:' missing or unknown ({stage!r})")
    condition = tuple(reconcile.split("/", 1)) if reconcile else None
    return Entry(
        path=path,
        description=description,
        expect=frozenset(expect),
        warn=frozenset(warn),
        stage=stage,
        reconcile=condition,  # type: ignore[arg-type]
        previous=path.with_name(previous) if previous else None,
        unreadable_line=unreadable_line,
        expected=frozenset(expected),
        namespace=namespace,
    )


def entries(kind: str | None = None) -> list[Entry]:
    """Every corpus entry (`kind`: "bad", "good" or "tenancy"; by default bad and good), sorted by path."""
    kinds = [kind] if kind else ["bad", "good"]
    return [read_entry(p) for k in kinds for p in sorted((CORPUS / k).glob("*.yaml"))]


@dataclass(frozen=True)
class TenancyCorpus:
    """The tenancy corpus: `policies` are the DurabilityPolicy objects as written (by name), `namespaces`
    the labels of each namespace the entries use, `entries` the manifests with their namespace."""

    policies: list[dict[str, Any]]
    namespaces: dict[str, dict[str, str]]
    entries: list[Entry]

    def policy_names(self) -> list[str]:
        return [p["metadata"]["name"] for p in self.policies]


def tenancy() -> TenancyCorpus:
    """The tenancy corpus, read from tenancy/ (see the module's docstring)."""
    policies = [
        document
        for path in sorted(POLICIES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document and document.get("kind") == "DurabilityPolicy"
    ]
    namespaces = yaml.safe_load(NAMESPACE_LABELS.read_text())
    found = entries("tenancy")
    for entry in found:
        if entry.namespace not in namespaces:
            raise ValueError(f"{entry.path}: '# namespace:' missing or not in {NAMESPACE_LABELS.name}")
    return TenancyCorpus(sorted(policies, key=lambda p: str(p["metadata"]["name"])), namespaces, found)


@dataclass(frozen=True)
class RunScope:
    """The tenancy corpus on a shared cluster, under names of one run (`run_id`, a DNS label).

    Namespaces and policies get the run's suffix; each namespace also carries `label` = `run_id`, and
    each policy's selector requires it, so that the policies select this run's namespaces only (a
    selector that selects nothing is left so). A topic name that starts with the entry's namespace
    and a dot starts with the run's namespace instead, as a `{namespace}.` prefix asks.
    """

    run_id: str
    label: str = "corpus.durabletopic.dev/run"

    def namespace(self, logical: str) -> str:
        return f"{logical}-{self.run_id}"

    def policy_name(self, logical: str) -> str:
        return f"{logical}-{self.run_id}"

    def namespace_labels(self, labels: dict[str, str]) -> dict[str, str]:
        return {**labels, self.label: self.run_id}

    def policy(self, policy: dict[str, Any]) -> dict[str, Any]:
        scoped = copy.deepcopy(policy)
        scoped["metadata"] = {
            "name": self.policy_name(policy["metadata"]["name"]),
            "labels": {self.label: self.run_id},
        }
        selector = scoped.setdefault("spec", {}).get("namespaceSelector") or {}
        if "matchLabels" in selector or "matchExpressions" in selector:
            selector["matchLabels"] = {**(selector.get("matchLabels") or {}), self.label: self.run_id}
            scoped["spec"]["namespaceSelector"] = selector
        return scoped

    def manifest(self, obj: dict[str, Any], logical_namespace: str) -> dict[str, Any]:
        scoped = copy.deepcopy(obj)
        spec = scoped.get("spec")
        topic = spec.get("topicName") if isinstance(spec, dict) else None
        if isinstance(topic, str) and topic.startswith(f"{logical_namespace}."):
            spec["topicName"] = self.namespace(logical_namespace) + topic[len(logical_namespace) :]
        return scoped

    def entry_text(self, entry: Entry) -> str:
        """The entry's manifests, as one YAML stream, under the run's names."""
        assert entry.namespace is not None, entry.id
        documents = [d for d in yaml.safe_load_all(entry.text) if d]
        return yaml.safe_dump_all([self.manifest(d, entry.namespace) for d in documents], sort_keys=False)
