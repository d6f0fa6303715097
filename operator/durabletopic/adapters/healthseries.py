"""The per-topic replica health gauges, kept as five numbers a topic and turned into series at scrape time.

A labelled child of a prometheus_client Gauge is a full metric object with its own lock: five of them
a topic cost about 3.7 KB, which at tens of thousands of topics is tens of MB for five numbers each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

from durabletopic.core.health import ReplicaHealth

LABELS = ["cluster", "topic"]

# (name, help) in the order of the numbers kept for each topic.
HEALTH_GAUGES = (
    ("durabletopic_partitions_under_replicated", "Partitions whose ISR is smaller than their replicas."),
    (
        "durabletopic_partitions_under_min_isr",
        "Partitions with no leader or fewer in-sync replicas than min.insync.replicas: acks=all producers fail.",
    ),
    (
        "durabletopic_partitions_at_min_isr",
        "Partitions exactly at min.insync.replicas: one more failure stops acks=all producers.",
    ),
    ("durabletopic_partitions_offline", "Partitions with no leader."),
    (
        "durabletopic_partitions_with_eligible_leader_replicas",
        "Partitions under min.insync.replicas or leaderless that have eligible leader replicas "
        "(Kafka 4.x, KIP-966): replicas out of the ISR that can still be elected cleanly.",
    ),
)

TopicKey = tuple[str, str]  # (cluster, topic)


def health_numbers(health: ReplicaHealth) -> tuple[int, int, int, int, int]:
    return (
        health.under_replicated,
        health.under_min_isr,
        health.at_min_isr,
        health.offline,
        health.with_eligible_leaders,
    )


class TopicHealthSeries(Collector):
    """Scrapes run in the metrics server's thread while the loop sets numbers: one lock guards both."""

    def __init__(self) -> None:
        self._numbers: dict[TopicKey, tuple[int, int, int, int, int]] = {}
        self._lock = threading.Lock()

    def set(self, key: TopicKey, health: ReplicaHealth) -> None:
        numbers = health_numbers(health)
        with self._lock:
            self._numbers[key] = numbers

    def remove(self, key: TopicKey) -> None:
        with self._lock:
            self._numbers.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._numbers.clear()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, documentation in HEALTH_GAUGES:
            yield GaugeMetricFamily(name, documentation, labels=LABELS)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            topics = list(self._numbers.items())
        for index, (name, documentation) in enumerate(HEALTH_GAUGES):
            family = GaugeMetricFamily(name, documentation, labels=LABELS)
            for (cluster, topic), numbers in topics:
                family.add_metric([cluster, topic], numbers[index])
            yield family
