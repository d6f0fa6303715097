"""A topic's configs read by key (DescribeConfigs with a key list, through kafka-python) on real brokers:
what the sweep of a settled topic reads instead of every config."""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka.admin import NewTopic

from durabletopic.adapters.kafka.reassign import Reassigner
from tests.testbed import Testbed


def test_only_the_named_keys_come_back_with_their_source(
    testbed: Testbed, kafka_admin: Any, unique: str
) -> None:
    config = {"min.insync.replicas": "2", "retention.ms": "3600000"}
    kafka_admin.create_topics([NewTopic(unique, 1, 3, config=config)])[unique].result(timeout=60)
    keys = {"min.insync.replicas", "retention.ms", "unclean.leader.election.enable"}
    reader = Reassigner(testbed.bootstrap_servers)
    try:
        found = asyncio.run(reader.topic_configs({unique: keys, f"{unique}-absent": keys}))
    finally:
        reader.close()
    overrides, effective = found[unique] or ({}, {})
    assert overrides == config  # set on the topic itself
    assert set(effective) == keys  # the broker default of the third, and nothing else
    assert effective["unclean.leader.election.enable"] == "false"
    assert found[f"{unique}-absent"] is None
