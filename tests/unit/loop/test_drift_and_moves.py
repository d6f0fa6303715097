"""Drift found by a sweep, and a replication-factor change carried out by reassignment."""

from __future__ import annotations

from durabletopic.core.configs import MIN_INSYNC_REPLICAS, THROTTLE_KEYS
from tests.unit.loop.conftest import Harness


async def test_weakened_topic_is_put_back_and_counted(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "2"
    assert harness.kube.reasons(ref)[-2:] == ["DriftDetected", "DriftReverted"]
    assert harness.metrics.drift_counts == [(MIN_INSYNC_REPLICAS, "weakening", "reverted")]
    assert harness.ready(ref)


async def test_reported_drift_changes_nothing_and_stays_reported(harness: Harness) -> None:
    ref = harness.apply("orders", {"partitions": 3, "driftPolicy": "Report"})
    await harness.settle()
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    for _ in range(3):
        harness.controller.enqueue_all()
        await harness.settle()
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "1"
    assert harness.kube.condition(ref, "Drifted") == ("True", "DriftDetected")
    assert harness.kube.reasons(ref) == ["DriftDetected"], "reported once"
    assert harness.metrics.drift[ref] == [(MIN_INSYNC_REPLICAS, "weakening")]


async def test_replication_factor_is_raised_by_reassignment_before_min_isr(harness: Harness) -> None:
    harness.kafka.add_topic("orders", partitions=2, rf=1)
    ref = harness.apply("orders", {"partitions": 2})
    await harness.step()
    assert harness.reassigner.moves, "a reassignment was started"
    overrides = harness.kafka.topics["orders"].overrides
    assert MIN_INSYNC_REPLICAS not in overrides, "min ISR waits for the new replicas"
    assert all(overrides[key] == "*" for key in THROTTLE_KEYS)
    assert harness.kube.condition(ref, "Reconciling") == ("True", "Reassigning")
    assert harness.status(ref)["replicasChange"]["state"] == "Ongoing"
    await harness.step()
    assert harness.kube.condition(ref, "Ready") == ("False", "Reassigning"), "not Ready while replicas move"
    harness.reassigner.finish()
    await harness.settle()
    assert harness.ready(ref)
    assert overrides[MIN_INSYNC_REPLICAS] == "2"
    assert not any(key in overrides for key in THROTTLE_KEYS)
    assert harness.status(ref)["replicasChange"]["state"] == "Done"
    assert all(configs == {} for configs in harness.kafka.broker_configs_set.values()), (
        "throttle rate removed"
    )
