"""`durabletopic probe` on the real test bed, through real broker kills.

The fault command SIGKILLs brokers by the pids the test bed records in ``state.json``; the recover command
starts them again through the test bed's own Python API (``Testbed().start_broker(n)``, run in a shell by
the probe, which records the new pids in ``state.json``). Afterwards the test's Testbed object reloads
that file (``status()``), and the ``testbed_faults`` fixture starts anything still down.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

from tests.testbed import BROKER_IDS, Testbed

ROOT = Path(__file__).resolve().parents[2]


def create_topic(admin: Any, name: str, **kwargs: Any) -> None:
    future = admin.create_topics([NewTopic(name, **kwargs)], operation_timeout=30)[name]
    future.result(timeout=60)
    deadline = time.monotonic() + 30
    while True:  # right after CreateTopics, the metadata may not have every leader yet
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if (
            topic
            and topic.error is None
            and topic.partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} has no leader for every partition after 30 s")
        time.sleep(0.2)


def durable_topic(admin: Any, name: str, partitions: int = 6) -> None:
    create_topic(
        admin,
        name,
        num_partitions=partitions,
        replication_factor=3,
        config={"min.insync.replicas": "2", "unclean.leader.election.enable": "false"},
    )


def leader_of_partition_0(admin: Any, topic: str) -> int:
    leader: int = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
    assert leader in BROKER_IDS
    return leader


def kill_cmd(testbed: Testbed, *node_ids: int) -> str:
    """A shell command that SIGKILLs brokers by the pids the test bed recorded."""
    procs = json.loads(testbed.state_file.read_text())["procs"]
    pids = [str(procs[f"broker-{n}"]["pid"]) for n in node_ids]
    assert all(p != "None" for p in pids), procs
    return "kill -9 " + " ".join(pids)


def start_cmd(*node_ids: int, delay_s: float = 0) -> str:
    """A shell command that starts brokers again (after ``delay_s``) and waits until they serve."""
    code = (
        f"from tests.testbed import Testbed; bed = Testbed(); [bed.start_broker(n) for n in {list(node_ids)}]"
    )
    if len(node_ids) > 1:
        code = "from tests.testbed import Testbed; Testbed().start_all_brokers()"
    start = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    return f"sleep {delay_s:g} && {start}" if delay_s else start


def run_probe(testbed: Testbed, topic: str, *args: str, timeout: float = 400) -> tuple[int, dict[str, Any]]:
    cmd = [
        sys.executable,
        "-m",
        "durabletopic",
        "probe",
        "--bootstrap-servers",
        testbed.bootstrap_servers,
        "--topic",
        topic,
        "--output",
        "json",
        *args,
    ]
    env = {**os.environ, "DURABLETOPIC_TESTBED_DIR": str(testbed.state_dir)}
    began = time.monotonic()
    result = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout, check=False
    )
    took = time.monotonic() - began
    testbed.status()  # reload the pids the probe's commands recorded
    print(f"probe exit {result.returncode} in {took:.1f} s\n{result.stdout}\n{result.stderr}")
    assert result.returncode in (0, 1), f"the probe could not run: {result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, report


def assert_commands_ran(report: dict[str, Any], recover: bool = True) -> None:
    assert report["fault"] is not None and report["fault"]["exit_code"] == 0, report["fault"]
    if recover:
        assert report["recover"] is not None and report["recover"]["exit_code"] == 0, report["recover"]


def assert_nothing_lost(code: int, report: dict[str, Any], messages: int) -> None:
    assert report["sent"] == messages
    assert report["acknowledged"] + report["failed"] == messages
    assert report["missing"] == 0
    assert report["read"] >= report["acknowledged"]
    assert report["duplicates_delivered"] == 0
    assert report["out_of_order"] == 0
    assert code == 0


def _leader_killed_mid_way(testbed: Testbed, kafka_admin: Any, topic: str, messages: int, rate: int) -> None:
    durable_topic(kafka_admin, topic)
    victim = leader_of_partition_0(kafka_admin, topic)
    code, report = run_probe(
        testbed,
        topic,
        "--messages",
        str(messages),
        "--rate",
        str(rate),
        "--fault-cmd",
        kill_cmd(testbed, victim),
        "--recover-cmd",
        start_cmd(victim),
    )
    assert_commands_ran(report)
    assert messages // 2 <= report["fault"]["at_sent"] < messages
    assert_nothing_lost(code, report, messages)
    # acks=all with idempotence and 30 s per attempt rides out one broker: every message is acknowledged.
    assert report["acknowledged"] == messages
    assert report["failed"] == 0


def test_rf3_topic_loses_nothing_when_a_leader_is_killed(
    testbed_faults: Testbed, kafka_admin: Any, unique: str
) -> None:
    _leader_killed_mid_way(testbed_faults, kafka_admin, unique, 20_000, 5_000)


@pytest.mark.chaos
def test_rf3_topic_loses_nothing_when_a_leader_is_killed_100k(
    testbed_faults: Testbed, kafka_admin: Any, unique: str
) -> None:
    _leader_killed_mid_way(testbed_faults, kafka_admin, unique, 100_000, 10_000)


def test_rf1_topic_with_acks_1_loses_messages_when_its_broker_dies(
    testbed_faults: Testbed, kafka_admin: Any, unique: str
) -> None:
    victim = 2
    # RF 1, every replica on one broker (the client wants the partition count with an assignment)
    create_topic(kafka_admin, unique, num_partitions=3, replica_assignment=[[victim]] * 3)
    messages = 20_000
    code, report = run_probe(
        testbed_faults,
        unique,
        "--acks",
        "1",
        "--messages",
        str(messages),
        "--rate",
        "5000",
        "--fault-cmd",
        kill_cmd(testbed_faults, victim),
        "--timeout",
        "10",
        "--delivery-timeout",
        "3",
        "--max-retries",
        "1",
    )
    assert_commands_ran(report, recover=False)
    # No replica elsewhere: what was sent after the kill fails, what was acknowledged cannot be read.
    assert report["failed"] > 0 or report["missing"] > 0
    assert report["missing"] == 0 or code == 1


def test_acks_all_producer_gets_errors_not_silent_loss_when_two_of_three_brokers_die(
    testbed_faults: Testbed, kafka_admin: Any, unique: str
) -> None:
    durable_topic(kafka_admin, unique)
    down = (2, 3)
    messages = 20_000
    code, report = run_probe(
        testbed_faults,
        unique,
        "--messages",
        str(messages),
        "--rate",
        "5000",
        "--fault-cmd",
        kill_cmd(testbed_faults, *down),
        # Down long enough for several 4 s delivery timeouts; the consumer starts once they serve again.
        "--recover-cmd",
        start_cmd(*down, delay_s=12),
        "--delivery-timeout",
        "4",
        "--max-retries",
        "20",
    )
    assert_commands_ran(report)
    # Below min.insync.replicas the producer is told (NOT_ENOUGH_REPLICAS, timeouts) and re-sends.
    assert report["delivery_errors"], report
    assert report["retried"] > 0 or report["failed"] > 0
    # Nothing acknowledged is lost: after the restart every acknowledged message is read.
    assert report["missing"] == 0
    assert report["duplicates_delivered"] == 0
    assert report["acknowledged"] + report["failed"] == messages
    assert code == 0
