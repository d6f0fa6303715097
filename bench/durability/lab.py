"""One run of the lab on the test bed: its weak topic, where partition 0 lives, and the probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from tests.testbed import Testbed

from bench.cluster import ROOT
from bench.durability.cases import Placement, Run, steps_command


def create_weak_topic(admin: AdminClient, name: str, run: Run) -> None:
    assert run.topic is not None
    topic = NewTopic(
        name, num_partitions=1, replica_assignment=[list(run.topic.replicas)], config=dict(run.topic.configs)
    )
    admin.create_topics([topic])[name].result(timeout=60)


def placement_of(admin: AdminClient, name: str) -> Placement:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partition = admin.list_topics(name, timeout=10).topics[name].partitions.get(0)
        if partition is not None and partition.leader >= 0 and len(partition.isrs) == len(partition.replicas):
            followers = tuple(r for r in partition.replicas if r != partition.leader)
            return Placement(partition.leader, followers)
        time.sleep(0.5)
    raise RuntimeError(f"partition 0 of {name} has no leader with every replica in sync")


def probe(bed: Testbed, name: str, run: Run, placement: Placement) -> tuple[int, dict[str, Any], str]:
    command = [
        sys.executable,
        "-m",
        "durabletopic",
        "probe",
        "--bootstrap-servers",
        bed.bootstrap_servers,
        "--topic",
        name,
        "--output",
        "json",
        *run.probe_args,
    ]
    for flag, steps in (("--fault-cmd", run.fault), ("--recover-cmd", run.recover)):
        if chosen := steps(name, placement):
            command += [flag, steps_command(chosen)]
    env = {**os.environ, "DURABLETOPIC_TESTBED_DIR": str(bed.state_dir)}
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"the probe could not run (exit {result.returncode}): {result.stderr[-2000:]}")
    return result.returncode, json.loads(result.stdout), result.stderr
