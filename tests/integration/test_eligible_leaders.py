"""Kafka 4.x's eligible leader replicas, read from real brokers through the operator's kafka-python client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from confluent_kafka.admin import NewTopic

from durabletopic.adapters.kafka.reassign import Reassigner
from tests.testbed import Testbed


def in_sync(admin: Any, topic: str) -> list[int]:
    partition = admin.list_topics(topic, timeout=10).topics[topic].partitions.get(0)
    return sorted(partition.isrs) if partition is not None else []  # just created: not in metadata yet


def test_followers_out_of_a_min_isr_2_partition_are_named_eligible(
    testbed_faults: Testbed, kafka_admin: Any, unique: str
) -> None:
    config = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    new = NewTopic(unique, num_partitions=1, replica_assignment=[[1, 2, 3]], config=config)
    kafka_admin.create_topics([new])[unique].result(timeout=60)
    reader = Reassigner(testbed_faults.bootstrap_servers)
    try:
        deadline = time.monotonic() + 30
        while in_sync(kafka_admin, unique) != [1, 2, 3] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert asyncio.run(reader.eligible_leader_replicas([unique])) == {}, "all in sync: none"
        testbed_faults.kill_broker(2)
        testbed_faults.kill_broker(3)
        deadline = time.monotonic() + 60
        while in_sync(kafka_admin, unique) != [1] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert in_sync(kafka_admin, unique) == [1]
        found = asyncio.run(reader.eligible_leader_replicas([unique]))
    finally:
        reader.close()
    # Below min.insync.replicas, Kafka keeps replicas taken out of the ISR electable (ISR + ELR <= min ISR).
    (eligible,) = found[unique].values()
    assert set(eligible) <= {2, 3} and len(eligible) == 1, found
