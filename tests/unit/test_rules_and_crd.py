"""The rules, and the CRD generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from durabletopic.core import rules
from durabletopic.core.model import DurableTopicSpec, Policy
from durabletopic.core.tenancy import internal
from durabletopic.core.tenancy.rules import TENANCY_RULES, cel
from durabletopic.tools.generate import outputs, render_crd

ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = (
    "durabletopics.durabletopic.dev.yaml",
    "durabilitypolicies.durabletopic.dev.yaml",
    "kafkaclusters.durabletopic.dev.yaml",
)


def test_committed_crd_is_the_generated_one() -> None:
    committed = (ROOT / "crds" / "durabletopics.durabletopic.dev.yaml").read_text()
    assert committed == render_crd(), "run `make generate` after changing the model or the rules"


def test_crd_contract_names() -> None:
    document = yaml.safe_load(render_crd())
    assert document["metadata"]["name"] == "durabletopics.durabletopic.dev"
    names = document["spec"]["names"]
    assert (names["kind"], names["plural"], names["singular"], names["shortNames"]) == (
        "DurableTopic",
        "durabletopics",
        "durabletopic",
        ["dt"],
    )
    version = document["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Topic",
        "Partitions",
        "RF",
        "MinISR",
        "Ready",
        "Reason",
        "Age",
    ]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["partitions"]
    assert all("description" in p for p in spec["properties"].values())
    every_message = [v["message"] for v in spec["x-kubernetes-validations"]]
    every_message += [v["message"] for v in spec["properties"]["config"]["x-kubernetes-validations"]]
    assert all(m.startswith("spec.") for m in every_message)


@pytest.mark.parametrize(
    ("spec", "field", "rule"),
    [
        ({"partitions": 0}, "spec.partitions", "partitions-range"),
        ({}, "spec.partitions", "partitions-required"),
        ({"partitions": "3"}, "spec.partitions", "partitions-range"),
        (
            {"partitions": 1, "replicationFactor": 0, "minInSyncReplicas": 0},
            "spec.replicationFactor",
            "replication-factor-range",
        ),
        (
            {"partitions": 1, "minInSyncReplicas": 3},
            "spec.minInSyncReplicas",
            "min-insync-below-replication-factor",
        ),
        (
            {"partitions": 1, "config": {"min.insync.replicas": "1"}},
            "spec.config[min.insync.replicas]",
            "durability-keys-not-in-config",
        ),
        ({"partitions": 1, "topicName": ".."}, "spec.topicName", "topic-name-legal"),
        ({"partitions": 1, "topicName": "a" * 250}, "spec.topicName", "topic-name-legal"),
        ({"partitions": 1, "topicName": "bad/name"}, "spec.topicName", "topic-name-legal"),
        ({"partitions": 1, "deletionPolicy": "Purge"}, "spec.deletionPolicy", "deletionPolicy-enum"),
        (
            {"partitions": 1, "config": {"retention.ms": "x" * 5000}},
            "spec.config[retention.ms]",
            "config-value-length",
        ),
        ({"partitions": 1, "clusterRef": {}}, "spec.clusterRef.name", "cluster-ref-name"),
        ({"partitions": 1, "clusterRef": {"name": ""}}, "spec.clusterRef.name", "cluster-ref-name"),
        ({"partitions": 1, "clusterRef": {"name": "c" * 254}}, "spec.clusterRef.name", "cluster-ref-name"),
        ({"partitions": 1, "clusterRef": "prod"}, "spec.clusterRef", "cluster-ref-name"),
    ],
)
def test_bad_specs_name_field_and_rule(spec: dict[str, object], field: str, rule: str) -> None:
    violations = rules.check_spec(spec)
    assert (field, rule) in {(v.field, v.rule) for v in violations}
    assert all(v.message for v in violations)


def test_good_spec_passes() -> None:
    assert rules.check_spec({"partitions": 3, "config": {"retention.ms": "1000"}}, "orders") == []
    assert rules.check_spec({"partitions": 3, "clusterRef": {"name": "prod-eu"}}, "orders") == []


def test_transitions() -> None:
    assert [v.rule for v in rules.check_transition({"partitions": 3}, {"partitions": 2})] == [
        "partitions-may-only-grow"
    ]
    assert [
        v.rule for v in rules.check_transition({"partitions": 3}, {"partitions": 3, "topicName": "x"})
    ] == ["topic-name-immutable"]


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        ({"name": "a"}, {"name": "b"}, True),
        (None, {"name": "a"}, True),
        ({"name": "a"}, None, True),
        ({"name": "a"}, {"name": "a"}, False),
        (None, None, False),
    ],
)
def test_cluster_ref_is_immutable(
    old: dict[str, str] | None, new: dict[str, str] | None, refused: bool
) -> None:
    def spec(ref: dict[str, str] | None) -> dict[str, object]:
        return {"partitions": 1} if ref is None else {"partitions": 1, "clusterRef": ref}

    violations = rules.check_transition(spec(old), spec(new))
    assert [(v.field, v.rule) for v in violations] == (
        [("spec.clusterRef", "cluster-ref-immutable")] if refused else []
    )


def test_cluster_ref_in_the_crd() -> None:
    version = yaml.safe_load(render_crd())["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    ref = spec["properties"]["clusterRef"]
    assert ref["type"] == "object" and ref["required"] == ["name"]
    assert "default cluster" in ref["description"]
    assert ref["properties"]["name"] == {
        "type": "string",
        "description": ref["properties"]["name"]["description"],
        "minLength": 1,
        "maxLength": 253,
    }
    assert "clusterRef" not in spec["required"]
    [immutable] = [v for v in spec["x-kubernetes-validations"] if v.get("fieldPath") == ".clusterRef"]
    assert "oldSelf.clusterRef" in immutable["rule"]
    # The typed model reads it as the CRD stores it.
    typed = DurableTopicSpec.model_validate({"partitions": 1, "clusterRef": {"name": "prod-eu"}})
    assert typed.cluster_ref is not None and typed.cluster_ref.name == "prod-eu"
    assert DurableTopicSpec.model_validate({"partitions": 1}).cluster_ref is None


def test_floors_name_field_and_floor() -> None:
    violations = rules.check_policy(2, 1, Policy(min_replication_factor=3, min_insync_replicas=2))
    assert {v.field for v in violations} == {"spec.replicationFactor", "spec.minInSyncReplicas"}
    assert "floor of 3" in violations[0].message


def test_chart_carries_the_same_crd() -> None:
    chart_crd = ROOT / "charts" / "durable-topic-operator" / "crds" / "durabletopics.durabletopic.dev.yaml"
    assert chart_crd.read_text() == (ROOT / "crds" / "durabletopics.durabletopic.dev.yaml").read_text()


def test_every_generated_file_is_committed() -> None:
    generated = outputs()
    for name in CRD_FILES:
        assert {f"crds/{name}", f"charts/durable-topic-operator/crds/{name}"} <= set(generated), name
    stale = [path for path, text in generated.items() if (ROOT / path).read_text() != text]
    assert stale == [], "run `make generate` after changing the model or the rules"


def test_admission_policy_carries_the_floor_rules() -> None:
    document = yaml.safe_load_all((ROOT / "deploy" / "admissionpolicy.yaml").read_text())
    policy = next(d for d in document if d["kind"] == "ValidatingAdmissionPolicy")
    expressions = [v["expression"] for v in policy["spec"]["validations"]]
    assert expressions[0] == internal.cel_expression("[]")
    assert expressions[1:] == [
        f"variables.{r.field} >= {getattr(Policy(), r.floor)}" for r in rules.FLOOR_RULES
    ]


def test_tenancy_admission_policy_carries_every_tenancy_rule() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "admissionpolicy.yaml").read_text()))
    policy = next(
        d for d in documents if d["metadata"]["name"].endswith("-tenancy") and "paramKind" in d["spec"]
    )
    assert policy["spec"]["paramKind"] == {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "DurabilityPolicy",
    }
    expressions = [v["expression"] for v in policy["spec"]["validations"]]
    assert expressions == [f"!variables.selected || ({cel(r.expression)})" for r in TENANCY_RULES]
    binding = next(
        d
        for d in documents
        if d["kind"] == "ValidatingAdmissionPolicyBinding" and d["metadata"]["name"].endswith("-tenancy")
    )
    assert binding["spec"]["paramRef"] == {"selector": {}, "parameterNotFoundAction": "Allow"}
