"""`durabletopic plan` with DurabilityPolicies: their rules, the internal topics and the quotas are refusals,
and an object refused before Kafka is looked at costs no Kafka call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from durabletopic import cli
from durabletopic.core.model import Broker, ClusterInfo, Policy
from durabletopic.core.reasons import Reason
from durabletopic.tools import tenancy, validate
from durabletopic.tools.planview import REJECTED, TopicPlanView, apply_plans, build_views
from tests import corpus

CLUSTER = ClusterInfo(brokers=tuple(Broker(i, None) for i in range(6)))
UNREACHABLE = ["--bootstrap-servers", "127.0.0.1:1", "--timeout", "1"]
CORPUS_FLAGS = ["--policy", str(corpus.POLICIES), "--namespace-labels", str(corpus.NAMESPACE_LABELS)]


def manifest(name: str, spec: str) -> str:
    return f"apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata:\n  name: {name}\nspec: {spec}\n"


def planned(tmp_path: Path, namespace: str, *documents: str) -> dict[str, TopicPlanView]:
    """The views of these manifests in `namespace`, under the corpus's policies, planned against a
    Kafka that has none of their topics."""
    path = tmp_path / "manifests.yaml"
    path.write_text("---\n".join(documents))
    read = tenancy.load([str(corpus.POLICIES)], [str(corpus.NAMESPACE_LABELS)], default_namespace=namespace)
    report = validate.validate([str(path)], Policy(), tenancy=read.tenancy)
    views = build_views(report)
    apply_plans(views, {}, CLUSTER, Policy())
    return {v.manifest.name: v for v in views}


def test_policy_violations_are_refusals_that_name_the_policy(tmp_path: Path) -> None:
    views = planned(
        tmp_path,
        "team-a",
        manifest(
            "fine", "{topicName: team-a.fine, partitions: 3, replicationFactor: 5, minInSyncReplicas: 3}"
        ),
        manifest(
            "wide", "{topicName: team-a.wide, partitions: 24, replicationFactor: 5, minInSyncReplicas: 3}"
        ),
        manifest(
            "offsets",
            "{topicName: __consumer_offsets, partitions: 1, replicationFactor: 5, minInSyncReplicas: 3}",
        ),
    )
    assert views["fine"].status == "create" and not views["fine"].refusals
    wide = views["wide"]
    assert (wide.status, wide.steps, wide.spec, wide.topic) == ("refused", [], None, "team-a.wide")
    assert wide.refusals == [
        {
            "reason": str(Reason.POLICY_VIOLATION),
            "field": "spec.partitions",
            "message": "spec.partitions (24) is above the 12 partitions per topic DurabilityPolicy "
            "team-a-durability allows",
            "policy": "team-a-durability",
        }
    ]
    offsets = views["offsets"]
    assert {(r["field"], r["policy"]) for r in offsets.refusals} == {
        ("spec.topicName", None),  # internal-topic: no policy, always
        ("spec.topicName", "team-a-names"),
    }
    assert offsets.steps == []


def test_a_refused_object_shows_the_floors_it_breaks_too(tmp_path: Path) -> None:
    views = planned(
        tmp_path,
        "team-a",
        manifest(
            "weak", "{topicName: team-a.weak, partitions: 1, replicationFactor: 2, minInSyncReplicas: 1}"
        ),
    )
    messages = [str(r["message"]) for r in views["weak"].refusals]
    assert "spec.replicationFactor (2) is below the floor of 3 set by the platform policy" in messages
    assert (
        "spec.replicationFactor (2) is below the floor of 5 set by DurabilityPolicy team-a-durability"
        in messages
    )


def test_quota_refusals_and_claims(tmp_path: Path) -> None:
    views = planned(
        tmp_path,
        "quota-topics",
        manifest("first", "{topicName: quota-topics.one, partitions: 1}"),
        manifest("second", "{topicName: quota-topics.two, partitions: 1}"),
        manifest("third", "{topicName: quota-topics.three, partitions: 1}"),
        # Refused for its quota, the third still exists: a later claim on its topic is a conflict.
        manifest("fourth", "{topicName: quota-topics.three, partitions: 1}"),
    )
    assert [views[n].status for n in ("first", "second")] == ["create", "create"]
    [third] = views["third"].refusals
    assert (third["reason"], third["field"], third["policy"]) == (
        str(Reason.POLICY_VIOLATION),
        "metadata.name",
        "quota-topics",
    )
    assert str(Reason.TOPIC_CONFLICT) in {r["reason"] for r in views["fourth"].refusals}


def test_an_object_an_admission_policy_refuses_claims_no_topic(tmp_path: Path) -> None:
    views = planned(
        tmp_path,
        "team-b",
        manifest("deleting", "{topicName: team-b.events, partitions: 1, deletionPolicy: Delete}"),
        manifest("retaining", "{topicName: team-b.events, partitions: 1}"),
    )
    assert views["deleting"].status == "refused"
    assert views["retaining"].status == "create" and views["retaining"].refusals == []


def test_api_server_rejections_come_first(tmp_path: Path) -> None:
    views = planned(
        tmp_path,
        "team-b",
        manifest("zero", "{topicName: team-b.zero, partitions: 0, deletionPolicy: Delete}"),
    )
    assert {r["reason"] for r in views["zero"].refusals} == {REJECTED}


def test_refused_objects_need_no_kafka(capsys: pytest.CaptureFixture[str]) -> None:
    # Every manifest is refused by a policy: no Kafka call is made (the address is unroutable).
    path = str(corpus.TENANCY / "team-a-partitions-above-policy.yaml")
    assert cli.main(["plan", path, *UNREACHABLE, *CORPUS_FLAGS, "--namespace", "team-a"]) == 1
    out = capsys.readouterr().out
    assert (
        "refuse PolicyViolation: spec.partitions (24) is above the 12 partitions per topic DurabilityPolicy "
        "team-a-durability allows" in out
    )
    assert (
        cli.main(["plan", path, *UNREACHABLE, *CORPUS_FLAGS, "--namespace", "team-a", "--output", "json"])
        == 1
    )
    [topic] = json.loads(capsys.readouterr().out)["topics"]
    assert [r["policy"] for r in topic["refusals"]] == ["team-a-durability"]


def test_plan_reads_the_same_flags_as_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(manifest("schemas", "{topicName: _schemas, partitions: 1}"))
    assert cli.main(["plan", str(path), *UNREACHABLE]) == 1
    assert (
        "refuse PolicyViolation: spec.topicName (_schemas) is an internal or system topic"
        in capsys.readouterr().out
    )
    # With the exception, the topic is planned: Kafka is asked, and is unreachable.
    assert cli.main(["plan", str(path), *UNREACHABLE, "--internal-topic-exception", "_schemas"]) == 2
    assert "cannot read Kafka" in capsys.readouterr().err
    assert cli.main(["plan", str(path), *UNREACHABLE, "--policy", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_plan_help_says_adoption_is_not_judged(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["plan", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Adoption is not judged" in help_text
    for flag in (
        "--policy",
        "--namespace-labels",
        "--namespace-label",
        "--namespace",
        "--internal-topic-exception",
    ):
        assert flag in help_text
