"""`durabletopic import` against the test bed's Kafka and API server, then `durabletopic plan` on what it wrote:
the imported manifests change nothing but the durability of the weak topic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from durabletopic.tools.manifests import load
from tests.e2e import helpers
from tests.e2e.helpers import Kube, snapshot

pytestmark = [pytest.mark.testbed]

DURABLE = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}


def durabletopic(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durabletopic", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_import_then_plan_changes_only_the_weak_topic(
    tmp_path: Path,
    bootstrap_servers: str,
    kafka_admin: AdminClient,
    kubeconfig: Path,
    crd_installed: None,
    kube: Kube,
    namespace: str,
    unique: str,
) -> None:
    safe, weak, managed = f"{unique}.Safe_Topic", f"{unique}.weak", f"{unique}.managed"
    extra = {"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "2097152"}
    helpers.create(kafka_admin, safe, 3, 3, {**DURABLE, **extra})
    helpers.create(kafka_admin, weak, 2, 2, {"min.insync.replicas": "1"})
    helpers.create(kafka_admin, managed, 1, 3, DURABLE)
    internal = f"__{unique}"
    helpers.create(kafka_admin, internal, 1, 1, {})
    # A DurableTopic on the API server manages `managed` (no operator runs: Kafka is not touched by it).
    kube.create(namespace, "already", {"topicName": managed, "partitions": 1})
    before = snapshot(kafka_admin)
    out = tmp_path / "imported"
    kafka_and_api = ("--bootstrap-servers", bootstrap_servers, "--kubeconfig", str(kubeconfig))

    result = durabletopic(
        "import", *kafka_and_api, "--prefix", unique, "--namespace", namespace, "--output", str(out)
    )
    assert result.returncode == 0, result
    assert result.stdout == ""
    assert f"2 manifests written in {out} (1 change their topic" in result.stderr
    assert "1 topics skipped (managed or internal)" in result.stderr
    files = sorted(p.name for p in out.iterdir())
    safe_name = f"{unique}-safe-topic"
    assert files == [f"{safe_name}.yaml", f"{unique}-weak.yaml"], files

    safe_text = (out / f"{safe_name}.yaml").read_text()
    assert safe_text.startswith(
        f"# durabletopic import: Kafka topic {safe}\n# no change to the topic: this declares it as it is\n"
    )
    assert yaml.safe_load(safe_text) == {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "DurableTopic",
        "metadata": {"name": safe_name, "namespace": namespace},
        "spec": {
            "topicName": safe,
            "partitions": 3,
            "replicationFactor": 3,
            "minInSyncReplicas": 2,
            "config": extra,
            "deletionPolicy": "Retain",
        },
    }
    weak_text = (out / f"{unique}-weak.yaml").read_text()
    assert weak_text.startswith(
        f"# durabletopic import: Kafka topic {weak}\n"
        "# raises replication.factor 2 -> 3\n"
        "# raises min.insync.replicas 1 -> 2\n"
        "# writes unclean.leader.election.enable=false on the topic (inherited until now: false)\n"
    )
    weak_spec = yaml.safe_load(weak_text)["spec"]
    assert (weak_spec["partitions"], weak_spec["replicationFactor"], weak_spec["minInSyncReplicas"]) == (
        2,
        3,
        2,
    )
    assert "config" not in weak_spec
    assert load([str(out)]).errors == []

    # The same manifests on stdout, one YAML stream.
    streamed = durabletopic("import", *kafka_and_api, "--prefix", unique)
    assert streamed.returncode == 0, streamed
    assert [d["spec"]["topicName"] for d in yaml.safe_load_all(streamed.stdout)] == [safe, weak]

    # Internal topics are never imported, with whatever prefix.
    internals = durabletopic(
        "import", "--bootstrap-servers", bootstrap_servers, "--ignore-api-server", "--prefix", "__"
    )
    assert internals.returncode == 0, internals
    assert internals.stdout == ""
    assert "0 manifests written" in internals.stderr

    # plan on the imported manifests: the safe topic is unchanged, the weak one gets its durability fixes only.
    planned = durabletopic("plan", str(out), "--bootstrap-servers", bootstrap_servers)
    assert planned.returncode == 3, planned
    lines = planned.stdout.splitlines()
    assert lines == [
        f"{out / safe_name}.yaml:3 {safe_name} (topic {safe})",
        "  no changes",
        f"{out / unique}-weak.yaml:5 {unique}-weak (topic {weak})",
        "  reassign to RF 3 (replication factor 2 -> 3, partitions moved one by one)",
        "  alter unclean.leader.election.enable false (broker default) -> false",
        "plan: 0 to create, 1 to change, 0 refused, 1 unchanged",
    ], planned.stdout
    # min.insync.replicas 2 waits for the third replica: on 2 replicas it would stop acks=all producers.
    as_json = durabletopic("plan", str(out), "--bootstrap-servers", bootstrap_servers, "--output", "json")
    topics = {t["topic"]: t for t in json.loads(as_json.stdout)["topics"]}
    assert topics[safe]["status"] == "unchanged" and topics[safe]["actions"] == []
    assert [a["action"] for a in topics[weak]["actions"]] == ["reassign", "alter"]
    assert topics[weak]["actions"][0]["from"] == 2 and topics[weak]["actions"][0]["to"] == 3

    assert snapshot(kafka_admin) == before, "import or plan changed Kafka"


def test_without_an_api_server_it_says_how_to_decide(
    tmp_path: Path, bootstrap_servers: str, kafka_admin: AdminClient, unique: str
) -> None:
    topic = f"{unique}.orders"
    helpers.create(kafka_admin, topic, 1, 3, DURABLE)
    missing = tmp_path / "no-kubeconfig"
    result = durabletopic(
        "import", "--bootstrap-servers", bootstrap_servers, "--kubeconfig", str(missing), "--prefix", unique
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "cannot tell which topics DurableTopics manage" in result.stderr
    assert "Give --managed PATH (the DurableTopic manifests), or --ignore-api-server" in result.stderr

    # --managed: the manifests kept in Git say which topics are managed.
    (tmp_path / "git").mkdir()
    (tmp_path / "git" / "orders.yaml").write_text(
        f"apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata:\n  name: orders\n"
        f"spec:\n  topicName: {topic}\n  partitions: 1\n"
    )
    offline = durabletopic(
        "import",
        "--bootstrap-servers",
        bootstrap_servers,
        "--managed",
        str(tmp_path / "git"),
        "--prefix",
        unique,
    )
    assert offline.returncode == 0, offline
    assert offline.stdout == "" and "0 manifests written" in offline.stderr
    everything = durabletopic(
        "import", "--bootstrap-servers", bootstrap_servers, "--ignore-api-server", "--prefix", unique
    )
    assert everything.returncode == 0, everything
    assert [d["spec"]["topicName"] for d in yaml.safe_load_all(everything.stdout)] == [topic]
