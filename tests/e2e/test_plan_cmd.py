"""`durabletopic plan` against the test bed's Kafka: what the operator would do, and nothing changed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tests.e2e import helpers
from tests.e2e.helpers import snapshot

pytestmark = [pytest.mark.testbed]


def create_topic(admin: AdminClient, name: str, partitions: int, rf: int, configs: dict[str, str]) -> None:
    """Creates a topic directly and waits until its description and configs can be read."""
    admin.create_topics([NewTopic(name, partitions, rf, config=configs)], request_timeout=15)[name].result()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if helpers.describe(admin, name) is not None:
                return
        except KafkaException as error:
            if error.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not readable 15 s after its creation")


def manifest(name: str, topic: str, **spec: Any) -> str:
    lines = [
        "apiVersion: durabletopic.dev/v1alpha1",
        "kind: DurableTopic",
        "metadata:",
        f"  name: {name}",
        "spec:",
        f"  topicName: {topic}",
    ]
    for key, value in {"partitions": 1, **spec}.items():
        if isinstance(value, dict):
            lines.append(f"  {key}:")
            lines += [f'    {k}: "{v}"' for k, v in value.items()]
        else:
            lines.append(f"  {key}: {value}")
    return "\n".join(lines) + "\n"


def plan(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durabletopic", "plan", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def test_plan_reports_and_changes_nothing(
    tmp_path: Path, bootstrap_servers: str, kafka_admin: AdminClient, unique: str
) -> None:
    missing, matching, weak, narrow, small = (
        f"{unique}.{s}" for s in ("missing", "matching", "weak", "narrow", "small")
    )
    durable = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    create_topic(kafka_admin, matching, 1, 3, durable)
    create_topic(kafka_admin, weak, 1, 3, {**durable, "min.insync.replicas": "1"})
    create_topic(kafka_admin, narrow, 1, 2, {**durable, "min.insync.replicas": "1"})
    create_topic(kafka_admin, small, 2, 3, durable)
    files = {
        "missing": write(
            tmp_path,
            "missing",
            manifest("missing", missing, partitions=3, config={"retention.ms": "3600000"}),
        ),
        "matching": write(tmp_path, "matching", manifest("matching", matching)),
        "weak": write(tmp_path, "weak", manifest("weak", weak)),
        "narrow": write(tmp_path, "narrow", manifest("narrow", narrow)),
        "small": write(tmp_path, "small", manifest("small", small, partitions=4)),
        "floor": write(
            tmp_path, "floor", manifest("floor", f"{unique}.floor", replicationFactor=2, minInSyncReplicas=1)
        ),
    }
    before = snapshot(kafka_admin)
    kafka = ["--bootstrap-servers", bootstrap_servers]

    result = plan(files["missing"], *kafka)
    assert result.returncode == 3, result
    assert f"(topic {missing})" in result.stdout
    assert (
        "create 3 partitions, replication factor 3, configs min.insync.replicas=2, retention.ms=3600000, "
        "unclean.leader.election.enable=false" in result.stdout
    )
    assert result.stderr == ""

    result = plan(files["matching"], *kafka)
    assert result.returncode == 0, result
    assert (
        "no changes" in result.stdout and "0 to create, 0 to change, 0 refused, 1 unchanged" in result.stdout
    )

    result = plan(files["weak"], *kafka)
    assert result.returncode == 3, result
    assert "alter min.insync.replicas 1 -> 2" in result.stdout

    result = plan(files["narrow"], *kafka)
    assert result.returncode == 3, result
    assert "reassign to RF 3 (replication factor 2 -> 3" in result.stdout
    # min.insync.replicas 2 would stop acks=all producers on 2 replicas: it waits for the third.
    assert "min.insync.replicas" not in result.stdout

    result = plan(files["small"], *kafka)
    assert result.returncode == 3, result
    assert "add partitions 2 -> 4" in result.stdout

    result = plan(files["floor"], *kafka)
    assert result.returncode == 1, result
    assert "refuse PolicyViolation: spec.replicationFactor (2) is below the floor of 3" in result.stdout
    # ... unless the floors say otherwise.
    result = plan(files["floor"], *kafka, "--min-replication-factor", "2", "--min-insync-replicas", "1")
    assert result.returncode == 3 and "create 1 partitions, replication factor 2" in result.stdout, result

    # All at once (one batched describe), as JSON: refusals win the exit code.
    result = plan(str(tmp_path), *kafka, "--output", "json")
    assert result.returncode == 1, result
    report = json.loads(result.stdout)
    status = {t["name"]: t["status"] for t in report["topics"]}
    assert status == {
        "floor": "refused",
        "matching": "unchanged",
        "missing": "create",
        "narrow": "change",
        "small": "change",
        "weak": "change",
    }
    weak_actions = next(t for t in report["topics"] if t["name"] == "weak")["actions"]
    assert weak_actions == [{"action": "alter", "configs": {"min.insync.replicas": {"from": "1", "to": "2"}}}]

    assert snapshot(kafka_admin) == before, "plan changed Kafka"
    assert missing not in helpers.list_topics(kafka_admin)


def test_invalid_manifest_is_a_refusal(tmp_path: Path, bootstrap_servers: str, unique: str) -> None:
    path = write(tmp_path, "bad", manifest("bad", f"{unique}.bad", partitions=0))
    result = plan(path, "--bootstrap-servers", bootstrap_servers)
    assert result.returncode == 1, result
    assert "refuse RejectedByAPIServer: spec.partitions must be between 1 and 10000, got 0" in result.stdout


def test_unreachable_kafka_is_one_line(tmp_path: Path, unique: str) -> None:
    path = write(tmp_path, "t", manifest("t", f"{unique}.t"))
    result = plan(path, "--bootstrap-servers", "127.0.0.1:1", "--timeout", "2", timeout=30)
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("durabletopic plan: cannot read Kafka at 127.0.0.1:1: ")


def test_unreadable_input_is_an_error(tmp_path: Path, bootstrap_servers: str) -> None:
    path = write(tmp_path, "broken", "spec: [unclosed\n")
    result = plan(path, "--bootstrap-servers", bootstrap_servers)
    assert result.returncode == 2, result
    assert f"{path}:1:" in result.stderr or f"{path}:2:" in result.stderr
