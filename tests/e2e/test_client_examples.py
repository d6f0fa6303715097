"""docs/examples/producer.py and consumer.py, run as they are, against the test bed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic

from durabletopic.core import clientprofile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


def run(*args: str, timeout: float = 180) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
    assert result.returncode == 0, f"{args[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_examples_deliver_every_key_exactly_once(
    bootstrap_servers: str, kafka_admin: Any, unique: str, tmp_path: Path
) -> None:
    topic = unique
    kafka_admin.create_topics(
        [
            NewTopic(
                topic, 4, 3, config={"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
            )
        ]
    )[topic].result(timeout=60)

    # The ConfigMap as a pod would see it mounted: one file per key.
    profile_dir = tmp_path / "client-profile"
    profile_dir.mkdir()
    for key, value in clientprofile.configmap_data(topic).items():
        (profile_dir / key).write_text(value)
    # And the JSON of `durabletopic client-config`.
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "durabletopic",
            "client-config",
            topic,
            "--role",
            "producer",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    profile_json = tmp_path / "producer.json"
    profile_json.write_text(cli.stdout)

    n = 3000
    producer = str(EXAMPLES / "producer.py")
    # The topic comes from the mounted profile's `topic` file.
    sent = run(
        producer,
        "--bootstrap-servers",
        bootstrap_servers,
        "--profile-dir",
        str(profile_dir),
        "--messages",
        str(n),
    )
    assert sent == {"topic": topic, "sent": n, "acknowledged": n}
    # The same keys again (as a producer's retry after a lost acknowledgement would): duplicates in the log.
    again = run(
        producer,
        "--bootstrap-servers",
        bootstrap_servers,
        "--topic",
        topic,
        "--profile",
        str(profile_json),
        "--messages",
        str(n),
    )
    assert again["acknowledged"] == n

    consumer = str(EXAMPLES / "consumer.py")
    store = tmp_path / "processed.txt"
    common = [
        "--bootstrap-servers",
        bootstrap_servers,
        "--profile-dir",
        str(profile_dir),
        "--store",
        str(store),
    ]
    first = run(consumer, *common, "--group", f"{unique}-a", "--idle-timeout", "5")
    keys = store.read_text().split()
    assert sorted(keys, key=int) == [str(i) for i in range(n)]  # every key, each once
    assert first["processed"] == n
    assert first["duplicates_skipped"] == n  # the second producer's copies, read and skipped

    # A new group reads everything again: nothing is processed twice.
    second = run(consumer, *common, "--group", f"{unique}-b", "--idle-timeout", "3")
    assert second == {"topic": topic, "processed": 0, "duplicates_skipped": 2 * n}
    assert store.read_text().split() == keys

    # The first group committed what it processed: it has nothing left to read.
    third = run(consumer, *common, "--group", f"{unique}-a", "--idle-timeout", "3")
    assert third == {"topic": topic, "processed": 0, "duplicates_skipped": 0}
