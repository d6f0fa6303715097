"""`--cluster NAME` of audit, plan and probe on the test bed: a KafkaCluster pointing at the SASL_PLAINTEXT
listener (SCRAM credentials in a Secret) gives the same answers as `--bootstrap-servers` with the same
client properties; a KafkaCluster whose clusterId is not Kafka's, a missing Secret and an identity RBAC
refuses make the command exit 2 naming what is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from tests.e2e import helpers
from tests.testbed import Testbed

pytestmark = [pytest.mark.testbed]

MECHANISM = "SCRAM-SHA-512"
SECRET = "kafka-scram"
WRONG_ID = "AAAAAAAAAAAAAAAAAAAAAA"

# Makes a KafkaCluster named after the test (with a suffix), from its spec; deleted at the end.
MakeCluster = Callable[..., str]


def durabletopic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durabletopic", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def sasl_spec(testbed: Testbed, namespace: str, secret: str = SECRET, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrapServers": testbed.bootstrap_servers_sasl,
        "authentication": {
            "sasl": {"mechanism": MECHANISM, "secretRef": {"namespace": namespace, "name": secret}}
        },
        **extra,
    }


@pytest.fixture
def scram_secret(testbed: Testbed, crd_installed: None, namespace: str) -> str:
    """The bed's SCRAM credentials in a Secret of the test's namespace; returns the namespace."""
    security = testbed.kafka_security
    testbed.kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace,
        f"--from-literal=username={security.username}",
        f"--from-literal=password={security.password}",
    )  # fmt: skip
    return namespace


@pytest.fixture
def make_cluster(testbed: Testbed, crd_installed: None, unique: str) -> Iterator[MakeCluster]:
    made: list[str] = []

    def make(suffix: str, spec: dict[str, Any]) -> str:
        name = f"{unique}-{suffix}"
        body = {
            "apiVersion": "durabletopic.dev/v1alpha1",
            "kind": "KafkaCluster",
            "metadata": {"name": name},
            "spec": spec,
        }
        testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        made.append(name)
        return name

    yield make
    for name in made:
        testbed.kubectl("delete", "kafkacluster", name, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture
def sasl_properties(testbed: Testbed, tmp_path: Path) -> Path:
    """The same client properties as a --kafka-config-file, for the --bootstrap-servers runs."""
    properties = testbed.kafka_client_properties("SASL_PLAINTEXT", MECHANISM)
    del properties["bootstrap.servers"]
    path = tmp_path / "sasl.properties"
    path.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
    return path


def weak_topic(admin: AdminClient, name: str) -> None:
    """A topic the floors find weak: min.insync.replicas 1."""
    helpers.create(admin, name, 1, 3, {"min.insync.replicas": "1", "unclean.leader.election.enable": "false"})


def test_audit_by_cluster_is_audit_by_bootstrap_servers(
    testbed: Testbed,
    scram_secret: str,
    make_cluster: MakeCluster,
    sasl_properties: Path,
    kafka_admin: AdminClient,
    unique: str,
) -> None:
    cluster = make_cluster("sasl", sasl_spec(testbed, scram_secret, clusterId=testbed.cluster_id))
    weak = f"{unique}.weak"
    weak_topic(kafka_admin, weak)
    try:
        by_servers = ["--bootstrap-servers", testbed.bootstrap_servers_sasl, "--kafka-config-file"]
        # Other tests may create or delete topics between two audits: compare a pair read back to back.
        for _attempt in range(3):
            by_cluster = durabletopic(
                "audit", "--cluster", cluster, "--kubeconfig", str(testbed.kubeconfig), "--output", "json"
            )
            direct = durabletopic("audit", *by_servers, str(sasl_properties), "--output", "json")
            if by_cluster.stdout == direct.stdout:
                break
        assert by_cluster.returncode == direct.returncode == 1, by_cluster.stderr + direct.stderr
        assert json.loads(by_cluster.stdout) == json.loads(direct.stdout)
        subjects = {finding["subject"] for finding in json.loads(by_cluster.stdout)["findings"]}
        assert f"topic/{weak}" in subjects, subjects

        # Without --kubeconfig, $KUBECONFIG is the kubeconfig (as for kubectl).
        env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig)}
        table = durabletopic("audit", "--cluster", cluster, env=env)
        assert table.returncode == 1, table.stderr
        assert weak in table.stdout
    finally:
        helpers.delete(kafka_admin, weak)


def manifest(name: str, topic: str, min_insync: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "durabletopic.dev/v1alpha1",
            "kind": "DurableTopic",
            "metadata": {"name": name},
            "spec": {"topicName": topic, "partitions": 1, "minInSyncReplicas": min_insync},
        }
    )


def test_plan_by_cluster_is_plan_by_bootstrap_servers(
    testbed: Testbed,
    scram_secret: str,
    make_cluster: MakeCluster,
    sasl_properties: Path,
    kafka_admin: AdminClient,
    unique: str,
    tmp_path: Path,
) -> None:
    cluster = make_cluster("sasl", sasl_spec(testbed, scram_secret))
    weak, missing = f"{unique}.weak", f"{unique}.missing"
    weak_topic(kafka_admin, weak)
    try:
        path = tmp_path / "topics.yaml"
        path.write_text(manifest("weak", weak, 2) + "---\n" + manifest("missing", missing, 2))
        by_cluster = durabletopic(
            "plan", str(path), "--cluster", cluster, "--kubeconfig", str(testbed.kubeconfig)
        )
        direct = durabletopic(
            "plan", str(path), "--bootstrap-servers", testbed.bootstrap_servers_sasl,
            "--kafka-config-file", str(sasl_properties),
        )  # fmt: skip
        assert by_cluster.returncode == direct.returncode == 3, by_cluster.stderr + direct.stderr
        assert by_cluster.stdout == direct.stdout
        assert "alter min.insync.replicas 1 -> 2" in by_cluster.stdout
        assert "plan: 1 to create, 1 to change, 0 refused, 0 unchanged" in by_cluster.stdout
    finally:
        helpers.delete(kafka_admin, weak)


def test_probe_by_cluster_writes_and_reads_through_sasl(
    testbed: Testbed, scram_secret: str, make_cluster: MakeCluster, kafka_admin: AdminClient, unique: str
) -> None:
    cluster = make_cluster("sasl", sasl_spec(testbed, scram_secret, clusterId=testbed.cluster_id))
    topic = f"{unique}.probe"
    helpers.create(kafka_admin, topic, 3, 3, {"min.insync.replicas": "2"})
    try:
        probe = durabletopic(
            "probe", "--cluster", cluster, "--kubeconfig", str(testbed.kubeconfig),
            "--topic", topic, "--messages", "200", "--timeout", "60", "--output", "json",
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        report = json.loads(probe.stdout)
        assert report["acknowledged"] == report["read"] == 200
    finally:
        helpers.delete(kafka_admin, topic)


@pytest.mark.parametrize("command", ["audit", "plan"])
def test_the_wrong_cluster_id_exits_2_naming_both(
    command: str,
    testbed: Testbed,
    scram_secret: str,
    make_cluster: MakeCluster,
    unique: str,
    tmp_path: Path,
) -> None:
    cluster = make_cluster("wrong-id", sasl_spec(testbed, scram_secret, clusterId=WRONG_ID))
    path = tmp_path / "topic.yaml"
    path.write_text(manifest("t", f"{unique}.never", 2))
    args = [str(path)] if command == "plan" else []
    result = durabletopic(command, *args, "--cluster", cluster, "--kubeconfig", str(testbed.kubeconfig))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"reports cluster id {testbed.cluster_id}" in result.stderr
    assert f"KafkaCluster {cluster} must be cluster {WRONG_ID} (spec.clusterId)" in result.stderr


def test_a_missing_secret_exits_2_naming_it(
    testbed: Testbed, scram_secret: str, make_cluster: MakeCluster
) -> None:
    cluster = make_cluster("no-secret", sasl_spec(testbed, scram_secret, secret="absent"))
    result = durabletopic("audit", "--cluster", cluster, "--kubeconfig", str(testbed.kubeconfig))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"durabletopic audit: KafkaCluster {cluster}: Secret {scram_secret}/absent not found"
    )


def test_a_missing_kafka_cluster_and_an_rbac_refusal_exit_2(
    testbed: Testbed, scram_secret: str, make_cluster: MakeCluster, unique: str, tmp_path: Path
) -> None:
    absent = durabletopic("audit", "--cluster", f"{unique}-absent", "--kubeconfig", str(testbed.kubeconfig))
    assert absent.returncode == 2
    assert absent.stderr.strip() == f"durabletopic audit: KafkaCluster {unique}-absent not found"

    cluster = make_cluster("sasl", sasl_spec(testbed, scram_secret))
    nobody = testbed.kubeconfig_for_token(testbed.nobody_token, tmp_path / "nobody", user="nobody")
    refused = durabletopic("audit", "--cluster", cluster, "--kubeconfig", str(nobody))
    assert refused.returncode == 2
    assert f"not allowed to read KafkaCluster {cluster} (403 Forbidden, RBAC)" in refused.stderr
    assert 'User "nobody" cannot get resource "kafkaclusters"' in refused.stderr


def test_tls_with_a_ca_bundle_from_a_config_map(
    testbed: Testbed, scram_secret: str, make_cluster: MakeCluster
) -> None:
    """SASL_SSL: the CA bundle reaches the client as ssl.ca.pem, read from a ConfigMap."""
    ca = testbed.kafka_security.ca_file.read_text()
    testbed.kubectl("create", "configmap", "kafka-ca", "-n", scram_secret, f"--from-literal=ca.crt={ca}")
    spec = sasl_spec(
        testbed,
        scram_secret,
        bootstrapServers=testbed.bootstrap_servers_sasl_ssl,
        tls={"caRef": {"kind": "ConfigMap", "namespace": scram_secret, "name": "kafka-ca"}},
    )
    cluster = make_cluster("sasl-ssl", spec)
    result = durabletopic("audit", "--cluster", cluster, "--kubeconfig", str(testbed.kubeconfig))
    assert result.returncode in (0, 1), result.stderr
    assert "broker-default/" in result.stdout
