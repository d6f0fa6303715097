"""The cluster-wide audit's read: the batched read that feeds the core's audit rules."""

from __future__ import annotations

from typing import Protocol

from durabletopic.core.model import ObservedTopic


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
