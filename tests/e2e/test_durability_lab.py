"""Small versions of the durability lab's cases (``make durability-lab`` runs the full ones), on the real
test bed: the probe sees a real loss, and the safe practice shows none, in the same test."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.durability.cases import Run, runs
from bench.durability.faults import run_step
from bench.durability.lab import create_weak_topic, placement_of, probe

from tests.e2e.test_probe import durable_topic, run_probe
from tests.testbed import Testbed


def lab_run(case: int, setting: str, *probe_args: str) -> Run:
    (run,) = [r for r in runs() if r.case == case and r.setting == setting]
    return dataclasses.replace(run, probe_args=list(probe_args))


def test_an_unclean_election_loses_acknowledged_messages_and_the_probe_exits_1(
    testbed_faults: Testbed, kafka_admin: Any, unique: str
) -> None:
    """Case 1, weak: RF 2, min ISR 1, unclean election on, acks=1. The follower stops, the leader takes
    writes alone and dies, the stale follower is elected, the old leader returns and truncates."""
    run = lab_run(1, "weak", "--messages", "4000", "--rate", "500", "--acks", "1", "--timeout", "120")
    create_weak_topic(kafka_admin, unique, run)
    placement = placement_of(kafka_admin, unique)
    for step in run.before(unique, placement):
        run_step(testbed_faults, step)
    code, report, _ = probe(testbed_faults, unique, run, placement)
    testbed_faults.status()  # the probe's commands restarted brokers
    print(report)
    assert report["fault"]["exit_code"] == 0, report["fault"]
    assert report["recover"]["exit_code"] == 0, report["recover"]
    # Acknowledged by the old leader alone, truncated away when it came back as a follower.
    assert report["missing"] > 0
    assert report["never_arrived"] >= report["missing"]
    assert code == 1
    stale = placement.followers[0]
    assert kafka_admin.list_topics(unique, timeout=10).topics[unique].partitions[0].leader == stale


def test_a_consumer_killed_mid_batch_skips_messages_with_auto_commit_and_none_without(
    testbed: Testbed, kafka_admin: Any, unique: str
) -> None:
    """Case 3: the same crash, half way through a batch, with each consumer; a second one finishes."""
    crash = ["--messages", "3000", "--consumer-crash-after", "1000", "--consumer-batch", "200"]
    counts = {}
    for mode in ("auto-commit", "checked"):
        topic = f"{unique}-{mode}"
        durable_topic(kafka_admin, topic, partitions=1)
        code, report = run_probe(testbed, topic, *crash, "--processing-ms", "1", "--consumer", mode)
        assert report["consumer_crashes"] == 1
        assert report["missing"] == 0
        counts[mode] = (code, report["not_processed"], report["absorbed"], report["duplicates_delivered"])
    # Auto commit had committed the batch before it was processed: its second half is never processed.
    assert counts["auto-commit"] == (1, 100, 0, 0)
    # Committed after processing: the batch is handed over again, the processed half absorbed.
    assert counts["checked"] == (0, 0, 100, 0)
