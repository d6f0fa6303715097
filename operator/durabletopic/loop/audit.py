"""The cluster-wide audit: the batched read that feeds the core's audit rules, and its periodic run."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from durabletopic.core import audit
from durabletopic.core.model import ObservedTopic, Policy
from durabletopic.loop.ports import KafkaAdminError, MetricsPort

log = logging.getLogger(__name__)


class ClusterReader(Protocol):
    async def list_topics(self) -> set[str]: ...
    async def describe_topics(self, names: list[str]) -> dict[str, ObservedTopic | None]: ...
    async def broker_configs(self) -> dict[str, str]: ...


async def read_cluster(kafka: ClusterReader) -> tuple[list[ObservedTopic], dict[str, str]]:
    """Every topic (one listing, then batched describes) and one broker's effective configs."""
    names = sorted(await kafka.list_topics())
    described = await kafka.describe_topics(names)
    topics = [t for t in described.values() if t is not None]
    return topics, await kafka.broker_configs()


async def audit_periodically(
    kafka: ClusterReader, metrics: MetricsPort, policy: Policy, interval: float
) -> None:
    while True:
        try:
            topics, broker = await read_cluster(kafka)
            findings = audit.audit_cluster(topics, broker, policy)
            metrics.set_audit(audit.counts_by_rule(findings), "default")
            log.info("cluster audit: %d findings over %d topics", len(findings), len(topics))
        except KafkaAdminError as error:
            log.warning("cluster audit skipped: %s", error)
        await asyncio.sleep(interval)
