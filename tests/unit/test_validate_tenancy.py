"""`durabletopic validate` with DurabilityPolicies: the tenancy corpus gets its verdicts, and the policies,
namespace labels and flags are read as the cluster would hold them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from durabletopic import cli
from durabletopic.core.model import Policy
from durabletopic.core.reasons import Severity, Stage
from durabletopic.core.tenancy import internal
from durabletopic.core.tenancy.rules import (
    MAX_PARTITIONS_PER_NAMESPACE,
    MAX_TOPICS_PER_NAMESPACE,
    TENANCY_RULES,
)
from durabletopic.tools import tenancy, validate
from tests import corpus

CORPUS = corpus.tenancy()
ENTRIES = CORPUS.entries
POLICY_DIR = str(corpus.POLICIES)
LABELS = str(corpus.NAMESPACE_LABELS)
CORPUS_FLAGS = ["--policy", POLICY_DIR, "--namespace-labels", LABELS]


def corpus_tenancy(namespace: str) -> tenancy.Tenancy:
    read = tenancy.load([POLICY_DIR], [LABELS], default_namespace=namespace)
    assert read.errors == []
    return read.tenancy


def run_entry(entry: corpus.Entry) -> validate.Report:
    assert entry.namespace is not None
    return validate.validate([str(entry.path)], Policy(), tenancy=corpus_tenancy(entry.namespace))


def errors_of(report: validate.Report) -> list[tuple[str, str, str, int]]:
    return sorted(
        (f.rule, f.field, f.policy, f.document) for f in report.findings if f.severity is Severity.ERROR
    )


def manifest(name: str, spec: str, namespace: str | None = None) -> str:
    namespace_line = f"\n  namespace: {namespace}" if namespace else ""
    return (
        f"apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata:\n  name: {name}{namespace_line}\n"
        f"spec: {spec}\n"
    )


def write(path: Path, *documents: str) -> str:
    path.write_text("---\n".join(documents))
    return str(path)


def policy(name: str, spec: str) -> str:
    return f"apiVersion: durabletopic.dev/v1alpha1\nkind: DurabilityPolicy\nmetadata:\n  name: {name}\nspec: {spec}\n"


def one_policy(tmp_path: Path, spec: str) -> tenancy.Tenancy:
    """A Tenancy of one policy, named `only`, with this spec (a flow mapping)."""
    policies, errors = tenancy.load_policies([write(tmp_path / "only.yaml", policy("only", spec))])
    assert errors == []
    return tenancy.Tenancy(tuple(policies))


def test_the_corpus_covers_every_rule_offline_checks() -> None:
    rules = {e.rule for entry in ENTRIES for e in entry.expected}
    assert {r.rule for r in TENANCY_RULES} | {
        internal.RULE,
        MAX_TOPICS_PER_NAMESPACE,
        MAX_PARTITIONS_PER_NAMESPACE,
    } == rules
    assert {e.stage for e in ENTRIES} == {"admission-policy", "operator", "valid"}
    for entry in ENTRIES:
        assert entry.namespace in CORPUS.namespaces, entry.id
        assert all(e.policy is not None for e in entry.expected), f"{entry.id}: every expect names its policy"
        assert (entry.stage == "valid") == (not entry.expected), entry.id
    # A quota namespace is one entry's: the entries can share a cluster.
    quota_namespaces = [e.namespace for e in ENTRIES if e.stage == "operator"]
    assert len(set(quota_namespaces)) == len(quota_namespaces)
    assert all(e.namespace not in quota_namespaces for e in ENTRIES if e.stage != "operator")


def test_the_corpus_policies_read_as_the_helper_returns_them() -> None:
    policies, errors = tenancy.load_policies([POLICY_DIR])
    assert errors == []
    assert [p.name for p in policies] == CORPUS.policy_names()
    assert all(p.problem is None for p in policies)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_tenancy_entry_gets_its_verdict(entry: corpus.Entry) -> None:
    report = run_entry(entry)
    assert not report.errors
    assert {(f.rule, f.field) for f in report.findings if f.severity is Severity.ERROR} == entry.expect
    assert not [f for f in report.findings if f.severity is Severity.WARNING]
    for expected in entry.expected:
        [finding] = [f for f in report.findings if (f.rule, f.field) == (expected.rule, expected.field)]
        assert finding.policy == expected.policy
        assert expected.document is None or finding.document == expected.document
        if finding.policy:
            assert f"DurabilityPolicy {finding.policy}" in finding.message
        # The admission policy's message is the finding's: it names the field (a quota's table line does).
        assert finding.field.split("[")[0] in finding.message or finding.stage is Stage.OPERATOR
    stages = {f.stage for f in report.findings if f.severity is Severity.ERROR}
    first = next((s for s in Stage if s in stages), None)
    assert (str(first) if first else "valid") == entry.stage
    assert report.exit_code() == (1 if entry.expect else 0)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_without_policies_only_internal_topics_are_refused(entry: corpus.Entry) -> None:
    report = validate.validate([str(entry.path)], Policy(), tenancy=tenancy.Tenancy(default_namespace="x"))
    expected = {(e.rule, e.field) for e in entry.expected if e.rule == internal.RULE}
    assert {(f.rule, f.field) for f in report.findings} == expected


def test_the_command_line_gives_the_corpus_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    entry = next(e for e in ENTRIES if e.path.name == "team-a-two-policies.yaml")
    assert entry.namespace is not None
    code = cli.main(["validate", str(entry.path), *CORPUS_FLAGS, "--namespace", entry.namespace])
    out = capsys.readouterr().out
    assert code == 1
    assert (
        "DurabilityPolicy team-a-durability allows (rule max-partitions-per-topic; refused by admission-policy)"
        in out
    )
    assert "(DurabilityPolicy team-a-names) (rule topic-name-prefix; refused by admission-policy)" in out
    assert out.rstrip().endswith("checked against 10 DurabilityPolicy(s)")
    # In another namespace, other policies govern: the sandbox's leave it alone.
    assert cli.main(["validate", str(entry.path), *CORPUS_FLAGS, "--namespace", "sandbox"]) == 0
    assert capsys.readouterr().out.startswith("valid: 1 DurableTopic(s)")


def test_json_names_the_policy_of_each_finding(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [
        str(corpus.TENANCY / n) for n in ("sandbox-internal-topic.yaml", "sandbox-retention-above-bound.yaml")
    ]
    assert cli.main(["validate", "--output", "json", *paths, *CORPUS_FLAGS, "--namespace", "sandbox"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["policies"] == CORPUS.policy_names()
    assert [(f["rule"], f["stage"], f["policy"]) for f in report["findings"]] == [
        ("internal-topic", "admission-policy", None),
        ("config-bounds", "admission-policy", "sandbox-retention"),
    ]


def test_quota_findings_are_the_operators(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(corpus.TENANCY / "quota-topics.yaml")
    assert cli.main(["validate", "--output", "json", path, *CORPUS_FLAGS, "--namespace", "quota-topics"]) == 1
    [finding] = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["name"], finding["stage"], finding["policy"]) == ("third", "operator", "quota-topics")


def test_internal_topic_exceptions(tmp_path: Path) -> None:
    path = write(tmp_path / "t.yaml", manifest("schemas", "{partitions: 1, topicName: _schemas}"))
    assert cli.main(["validate", path]) == 1
    assert cli.main(["validate", path, "--internal-topic-exception", "_schemas"]) == 0
    assert cli.main(["validate", path, "--internal-topic-exception", "__consumer_offsets"]) == 1


def test_namespace_of_a_manifest(tmp_path: Path) -> None:
    limit = write(
        tmp_path / "p.yaml",
        policy("limit", "{namespaceSelector: {matchLabels: {team: a}}, maxPartitionsPerTopic: 1}"),
    )
    bare = write(tmp_path / "bare.yaml", manifest("bare", "{partitions: 2}"))
    placed = write(tmp_path / "placed.yaml", manifest("placed", "{partitions: 2}", namespace="team-b"))
    label_a = ["--namespace-label", "team-a:team=a"]
    # Without metadata.namespace: the default namespace, or --namespace's.
    assert cli.main(["validate", bare, "--policy", limit, *label_a]) == 0
    assert cli.main(["validate", bare, "--policy", limit, "--namespace-label", "default:team=a"]) == 1
    assert cli.main(["validate", bare, "--policy", limit, *label_a, "--namespace", "team-a"]) == 1
    # metadata.namespace wins over --namespace.
    assert cli.main(["validate", placed, "--policy", limit, *label_a, "--namespace", "team-a"]) == 0
    assert cli.main(["validate", placed, "--policy", limit, "--namespace-label", "team-b:team=a"]) == 1


def test_every_namespace_carries_its_name_label(tmp_path: Path) -> None:
    by_name = policy(
        "by-name",
        "{namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, "
        "values: [payments]}]}, maxPartitionsPerTopic: 1}",
    )
    policies = write(tmp_path / "p.yaml", by_name)
    path = write(tmp_path / "t.yaml", manifest("t", "{partitions: 2}"))
    assert cli.main(["validate", path, "--policy", policies, "--namespace", "payments"]) == 1
    assert cli.main(["validate", path, "--policy", policies, "--namespace", "orders"]) == 0
    # The API server sets it: a label file cannot say otherwise.
    assert (
        cli.main(
            [
                "validate",
                path,
                "--policy",
                policies,
                "--namespace-label",
                "orders:kubernetes.io/metadata.name=payments",
                "--namespace",
                "orders",
            ]
        )
        == 0
    )


def test_policies_and_namespaces_as_kubectl_get_writes_them(tmp_path: Path) -> None:
    policy_list = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored"}},
            {
                "apiVersion": "durabletopic.dev/v1alpha1",
                "kind": "DurabilityPolicy",
                "metadata": {"name": "listed", "generation": 1},
                "spec": {"namespaceSelector": {"matchLabels": {"tier": "prod"}}, "maxPartitionsPerTopic": 1},
            },
        ],
    }
    namespace_list = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "shop", "labels": {"tier": "prod"}},
            },
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}},
        ],
    }
    policies = write(tmp_path / "policies.yaml", json.dumps(policy_list))
    labels = write(tmp_path / "namespaces.yaml", json.dumps(namespace_list))
    read = tenancy.load([policies], [labels], default_namespace="shop")
    assert read.errors == []
    assert [p.name for p in read.tenancy.policies] == ["listed"]
    assert read.tenancy.labels_of("shop") == {"tier": "prod", tenancy.NAMESPACE_NAME_LABEL: "shop"}
    assert [p.name for p in read.tenancy.governing("shop")] == ["listed"]
    assert read.tenancy.governing("lab") == []


def test_namespace_label_flags_win_over_files(tmp_path: Path) -> None:
    labels = write(tmp_path / "labels.yaml", "shop: {tier: prod, team: a}\n")
    read = tenancy.load([], [labels], [("shop", "tier", "dev"), ("lab", "tier", "")])
    assert read.tenancy.labels_of("shop")["tier"] == "dev" and read.tenancy.labels_of("shop")["team"] == "a"
    assert read.tenancy.labels_of("lab")["tier"] == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (policy("bad", "{maxPartitionsPerTopic: many}"), "DurabilityPolicy bad: spec.maxPartitionsPerTopic"),
        (
            policy("twice", "{}") + "---\n" + policy("twice", "{}"),
            "DurabilityPolicy twice is also defined at",
        ),
        (
            "apiVersion: durabletopic.dev/v1alpha1\nkind: DurabilityPolicy\nspec: {}\n",
            "without metadata.name",
        ),
    ],
)
def test_a_policy_the_api_server_would_not_store_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    policies = write(tmp_path / "p.yaml", text)
    path = str(corpus.TENANCY / "team-a-valid.yaml")
    assert cli.main(["validate", path, "--policy", policies]) == 2
    err = capsys.readouterr().err
    assert f"durabletopic validate: {policies}:" in err and message in err


def test_unreadable_namespace_labels_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(corpus.TENANCY / "team-a-valid.yaml")
    labels = write(tmp_path / "labels.yaml", "shop: {sandbox: true}\n")
    assert cli.main(["validate", path, "--namespace-labels", labels]) == 2
    assert "namespace shop: labels must be a mapping of strings" in capsys.readouterr().err
    assert cli.main(["validate", path, "--policy", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["shop", "shop:tier", ":tier=prod", "shop:=prod"])
def test_a_namespace_label_flag_must_be_ns_key_value(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["validate", str(corpus.TENANCY / "team-a-valid.yaml"), "--namespace-label", flag])
    assert exit_info.value.code == 2
    assert "is not NAMESPACE:KEY=VALUE" in capsys.readouterr().err


def test_tenancy_rules_judge_only_a_spec_of_the_crds_types(tmp_path: Path) -> None:
    limit = one_policy(tmp_path, "{namespaceSelector: {matchLabels: {}}, maxPartitionsPerTopic: 1}")
    path = write(tmp_path / "t.yaml", manifest("t", '{partitions: "30"}'))
    report = validate.validate([path], tenancy=limit)
    # The API server refuses the string; the policy does not judge "30" as a number.
    assert report.findings and {f.stage for f in report.findings} == {Stage.API_SERVER}
    path = write(tmp_path / "t.yaml", manifest("t", "{partitions: 30}"))
    assert {f.rule for f in validate.validate([path], tenancy=limit).findings} == {"max-partitions-per-topic"}


def test_quotas_count_only_what_the_cluster_would_store(tmp_path: Path) -> None:
    quota = one_policy(tmp_path, "{namespaceSelector: {matchLabels: {}}, maxTopicsPerNamespace: 2}")
    path = write(
        tmp_path / "t.yaml",
        manifest("a", "{partitions: 1}"),
        manifest("below-floor", "{partitions: 1, replicationFactor: 2, minInSyncReplicas: 1}"),
        manifest("internal", "{partitions: 1, topicName: __internal}"),
        manifest("bad", "{partitions: 0}"),
        manifest("b", "{partitions: 1}"),
        manifest("c", "{partitions: 1}"),
    )
    report = validate.validate([path], tenancy=quota)
    quota_refused = [f.name for f in report.findings if f.stage is Stage.OPERATOR]
    assert quota_refused == ["c"]


def test_quotas_follow_the_order_of_the_files_and_count_an_object_once(tmp_path: Path) -> None:
    quota = one_policy(tmp_path, "{namespaceSelector: {matchLabels: {}}, maxPartitionsPerNamespace: 5}")
    first = write(tmp_path / "first.yaml", manifest("a", "{partitions: 3}"))
    second = write(tmp_path / "second.yaml", manifest("b", "{partitions: 3}"))
    # Two namespaces count apart; the same object twice is one (the last spec, at the first place).
    other = write(tmp_path / "other.yaml", manifest("a", "{partitions: 3}", namespace="other"))
    again = write(tmp_path / "again.yaml", manifest("a", "{partitions: 2}"))

    def refused(*paths: str) -> list[tuple[str, str]]:
        report = validate.validate(list(paths), tenancy=quota)
        return [(Path(f.file).stem, f.name) for f in report.findings if f.stage is Stage.OPERATOR]

    assert refused(first, second) == [("second", "b")]
    assert refused(second, first) == [("first", "a")]
    assert refused(first, other) == []
    assert refused(first, second, again) == []


def test_previous_manifests_match_across_an_implicit_default_namespace(tmp_path: Path) -> None:
    old = write(tmp_path / "old.yaml", manifest("t", "{partitions: 3}", namespace="default"))
    new = write(tmp_path / "new.yaml", manifest("t", "{partitions: 2}"))
    report = validate.validate([new], previous=[old])
    assert [f.rule for f in report.findings] == ["partitions-may-only-grow"]
    report = validate.validate([new], previous=[old], tenancy=tenancy.Tenancy(default_namespace="other"))
    assert report.findings == []
