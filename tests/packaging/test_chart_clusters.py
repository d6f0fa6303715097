"""KafkaClusters in the chart: the objects of the values, the default cluster, and RBAC that lets the
operator read exactly the Secrets and ConfigMaps they name; checked by the real API server (dry runs:
no KafkaCluster is ever stored on the shared test bed) and its authorizer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from durabletopic.app.settings import OperatorSettings
from tests.packaging.conftest import CHART, Render, by_kind, can_i, docs, rule_set, run

PROD_EU = {
    "bootstrapServers": "kafka-eu.example.com:9093",
    "authentication": {
        "sasl": {"mechanism": "SCRAM-SHA-512", "secretRef": {"namespace": "kafka-creds", "name": "dto-eu"}}
    },
    "tls": {"caRef": {"kind": "ConfigMap", "namespace": "kafka-creds", "name": "kafka-ca"}},
    "floors": {"minReplicationFactor": 3, "minInSyncReplicas": 2},
}
PROD_US = {
    "bootstrapServers": "kafka-us.example.com:9093",
    "clusterId": "Xq3tNv7fR1y2b3c4d5e6fA",
    "authentication": {"mutualTls": {"secretRef": {"namespace": "kafka-us", "name": "dto-cert"}}},
    # A CA in a Secret (the default kind), next to the first cluster's credentials.
    "tls": {"caRef": {"namespace": "kafka-creds", "name": "us-ca"}},
}
PLAIN = {"bootstrapServers": "kafka.dev.svc:9092"}
CLUSTERS = [
    {"name": "prod-eu", "spec": PROD_EU},
    {"name": "prod-us", "spec": PROD_US},
    {"name": "dev", "spec": PLAIN},
]


def values_file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def credentials_roles(objects: list[dict[str, Any]]) -> dict[str, frozenset[tuple[str, str, str, str]]]:
    """The Roles that grant reading KafkaClusters' Secrets and ConfigMaps, by namespace."""
    return {
        r["metadata"]["namespace"]: rule_set(r)
        for r in by_kind(objects, "Role")
        if r["metadata"]["name"].endswith("-cluster-credentials")
    }


def get(resource: str, *names: str) -> set[tuple[str, str, str, str]]:
    return {("", resource, "get", name) for name in names}


def test_no_kafka_cluster_and_no_credentials_by_default(helm_template: Render) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert (values["kafkaClusters"], values["clusterSecretAccess"], values["defaultCluster"]) == ([], [], "")
    objects = helm_template()
    assert not by_kind(objects, "KafkaCluster")
    assert credentials_roles(objects) == {}
    env = {e["name"]: e.get("value") for e in one_container(objects)["env"]}
    assert env["DURABLETOPIC_DEFAULT_CLUSTER"] == ""


def one_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(objects, "Deployment")
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(c)


def test_kafka_clusters_from_values(helm_template: Render, tmp_path: Path) -> None:
    values = values_file(tmp_path, {"kafkaClusters": CLUSTERS, "defaultCluster": "prod-eu"})
    objects = helm_template("-f", values, release="r1", namespace="ops")
    clusters = {c["metadata"]["name"]: c for c in by_kind(objects, "KafkaCluster")}
    assert list(clusters) == ["prod-eu", "prod-us", "dev"]
    for item in CLUSTERS:
        cluster = clusters[item["name"]]
        assert cluster["apiVersion"] == "durabletopic.dev/v1alpha1"
        assert "namespace" not in cluster["metadata"], "a KafkaCluster is cluster-scoped"
        assert cluster["metadata"]["labels"]["app.kubernetes.io/instance"] == "r1"
        assert cluster["spec"] == item["spec"]
    # The default cluster reaches the operator under the name its settings read.
    env = {e["name"]: e.get("value") for e in one_container(objects)["env"]}
    settings = OperatorSettings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert env["DURABLETOPIC_DEFAULT_CLUSTER"] == settings.default_cluster == "prod-eu"


def test_credentials_rbac_names_exactly_the_referenced_objects(helm_template: Render, tmp_path: Path) -> None:
    extra = [
        # A cluster made outside the chart, and a name the values also give (granted once).
        {"namespace": "kafka-creds", "secrets": ["outside", "dto-eu"], "configMaps": ["outside-ca"]},
        {"namespace": "team-x", "secrets": ["team-x-kafka"]},
        {"namespace": "nothing-named"},
    ]
    values = values_file(tmp_path, {"kafkaClusters": CLUSTERS, "clusterSecretAccess": extra})
    objects = helm_template("-f", values, release="r1", namespace="ops")
    assert credentials_roles(objects) == {
        "kafka-creds": frozenset(
            get("secrets", "dto-eu", "outside", "us-ca") | get("configmaps", "kafka-ca", "outside-ca")
        ),
        "kafka-us": frozenset(get("secrets", "dto-cert")),
        "team-x": frozenset(get("secrets", "team-x-kafka")),
    }
    bindings = {
        b["metadata"]["namespace"]: b
        for b in by_kind(objects, "RoleBinding")
        if b["metadata"]["name"].endswith("-cluster-credentials")
    }
    assert set(bindings) == {"kafka-creds", "kafka-us", "team-x"}
    for binding in bindings.values():
        assert binding["roleRef"]["name"] == "r1-durable-topic-operator-cluster-credentials"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "r1-durable-topic-operator", "namespace": "ops"}
        ]
    # Nothing else about Secrets anywhere: no list, no watch, no name-less grant.
    secret_rules = {
        rule
        for role in by_kind(objects, "Role") + by_kind(objects, "ClusterRole")
        for rule in rule_set(role)
        if rule[1] == "secrets"
    }
    assert all(verb == "get" and name != "*" for _, _, verb, name in secret_rules)
    # The same in namespaced mode: the credentials do not follow watchNamespaces.
    namespaced = helm_template(
        "-f", values, "--set", "watchNamespaces={team-a}", release="r1", namespace="ops"
    )
    assert credentials_roles(namespaced) == credentials_roles(objects)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"kafkaClusters": [{"name": "Prod_EU", "spec": PLAIN}]}, "/kafkaClusters/0/name"),
        ({"kafkaClusters": [{"name": "prod"}]}, "/kafkaClusters/0"),
        ({"kafkaClusters": [{"name": "prod", "spec": {}}]}, "bootstrapServers"),
        ({"kafkaClusters": [{"name": "prod", "spec": PLAIN, "namespace": "x"}]}, "namespace"),
        ({"defaultCluster": "Prod"}, "/defaultCluster"),
        ({"clusterSecretAccess": [{"secrets": ["s"]}]}, "namespace"),
        ({"clusterSecretAccess": [{"namespace": "ns", "secret": ["s"]}]}, "secret"),
    ],
)
def test_schema_rejects_wrong_cluster_values(
    helm: Path, tmp_path: Path, values: dict[str, Any], complaint: str
) -> None:
    result = run([helm, "template", "x", CHART, "-f", values_file(tmp_path, values)], check=False)
    assert result.returncode != 0, f"{values} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert complaint in result.stderr, result.stderr


def test_a_reference_without_its_namespace_is_named(helm: Path, tmp_path: Path) -> None:
    spec = copy.deepcopy(PROD_EU)
    del spec["authentication"]["sasl"]["secretRef"]["namespace"]
    values = values_file(tmp_path, {"kafkaClusters": [{"name": "prod-eu", "spec": spec}]})
    result = run([helm, "template", "x", CHART, "-f", values], check=False)
    assert result.returncode != 0
    assert (
        "kafkaClusters[0] (prod-eu): spec.authentication.sasl.secretRef.namespace is required"
        in result.stderr
    )


# ------------------------------------------------------------------------- the real API server


@pytest.mark.testbed
@pytest.mark.usefixtures("crd_installed")
def test_api_server_accepts_the_rendered_kafka_clusters(
    testbed: Any, helm_template: Render, tmp_path: Path, scratch: tuple[str, str]
) -> None:
    """The KafkaClusters of the values, dry-run: the API server checks them against their CRD (schema,
    defaults, CEL). Nothing is stored, so no operator of other tests ever tries to reach them."""
    namespace, token = scratch

    def dry_run(clusters: list[dict[str, Any]]) -> Any:
        values = values_file(tmp_path, {"kafkaClusters": clusters})
        manifest = helm_template(
            "-f",
            values,
            "--show-only",
            "templates/kafkaclusters.yaml",
            release=f"dry-{token}",
            namespace=namespace,
            text=True,
        )
        return testbed.kubectl(
            "apply", "--dry-run=server", "-o", "json", "-f", "-", input=manifest, check=False
        )

    scoped = [{"name": f"{c['name']}-{token}", "spec": c["spec"]} for c in CLUSTERS]
    result = dry_run(scoped)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    items = stored["items"] if stored.get("kind") == "List" else [stored]
    by_name = {i["metadata"]["name"]: i for i in items}
    assert set(by_name) == {c["name"] for c in scoped}
    # The CRD's defaults are what a reader of the stored object sees.
    eu = by_name[f"prod-eu-{token}"]["spec"]
    assert eu["authentication"]["sasl"]["secretRef"]["passwordKey"] == "password"
    assert eu["tls"] == {
        **PROD_EU["tls"],
        "enabled": True,
        "caRef": {**PROD_EU["tls"]["caRef"], "key": "ca.crt"},
    }
    assert by_name[f"prod-us-{token}"]["spec"]["tls"]["caRef"]["kind"] == "Secret"
    assert "status" not in by_name[f"dev-{token}"]
    none_stored = testbed.kubectl("get", "kafkaclusters", "-o", "name").stdout
    assert token not in none_stored, "a dry run stored a KafkaCluster"

    # The check is real: what the CRD refuses is refused here, with its message.
    both = copy.deepcopy(PROD_EU)
    both["authentication"]["mutualTls"] = PROD_US["authentication"]["mutualTls"]
    result = dry_run([{"name": f"both-{token}", "spec": both}])
    assert result.returncode != 0
    assert "spec.authentication must set exactly one of sasl and mutualTls" in result.stderr, result.stderr
    floors = {**PLAIN, "floors": {"minReplicationFactor": 2, "minInSyncReplicas": 2}}
    result = dry_run([{"name": f"floors-{token}", "spec": floors}])
    assert result.returncode != 0 and "spec.floors.minInSyncReplicas must be less than" in result.stderr
    result = dry_run([{"name": f"empty-{token}", "spec": {"bootstrapServers": ""}}])
    assert result.returncode != 0 and "spec.bootstrapServers" in result.stderr, result.stderr


@pytest.mark.testbed
def test_authorizer_lets_the_operator_read_only_the_named_secrets(
    testbed: Any, helm_template: Render, tmp_path: Path, scratch: tuple[str, str]
) -> None:
    """The credentials Role and RoleBinding rendered for a KafkaCluster whose Secret and CA are in this
    test's namespace, applied for real there (no KafkaCluster is created): the real authorizer lets the
    release's ServiceAccount get those two objects by name and nothing else."""
    namespace, token = scratch
    spec = copy.deepcopy(PROD_EU)
    spec["authentication"]["sasl"]["secretRef"]["namespace"] = namespace
    spec["tls"]["caRef"]["namespace"] = namespace
    values = values_file(tmp_path, {"kafkaClusters": [{"name": f"c-{token}", "spec": spec}]})
    release = f"pkg-{token}"
    objects = docs(helm_template("-f", values, release=release, namespace="ops", text=True))
    credentials = [
        o
        for o in objects
        if o["kind"] in ("Role", "RoleBinding") and o["metadata"].get("namespace") == namespace
    ]
    assert {o["kind"] for o in credentials} == {"Role", "RoleBinding"}
    testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(credentials))
    sa = f"system:serviceaccount:ops:{release}-durable-topic-operator"
    assert can_i(testbed, sa, "get", "secrets/dto-eu", namespace)
    assert can_i(testbed, sa, "get", "configmaps/kafka-ca", namespace)
    assert not can_i(testbed, sa, "get", "secrets/another", namespace)
    assert not can_i(testbed, sa, "get", "configmaps/another", namespace)
    assert not can_i(testbed, sa, "list", "secrets", namespace)
    assert not can_i(testbed, sa, "watch", "secrets", namespace)
    assert not can_i(testbed, sa, "get", "secrets/dto-eu", "default")
