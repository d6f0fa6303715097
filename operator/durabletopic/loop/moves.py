"""Replication-factor changes: Kafka's running reassignments, the replication throttle, the moves."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from durabletopic.core.configs import BROKER_THROTTLE_KEYS, THROTTLE_ALL_REPLICAS, THROTTLE_KEYS
from durabletopic.core.model import ClusterInfo, PartitionMove
from durabletopic.core.plan import Reassign
from durabletopic.loop.ports import KafkaPort, KafkaUnavailable, ReassignPort

log = logging.getLogger(__name__)

Moves = dict[str, Mapping[int, PartitionMove]]


class Mover:
    def __init__(
        self, kafka: KafkaPort, reassigner: ReassignPort | None, throttle_bytes_per_second: int
    ) -> None:
        self.kafka = kafka
        self.reassigner = reassigner
        self.throttle_bytes_per_second = throttle_bytes_per_second

    @property
    def available(self) -> bool:
        return self.reassigner is not None

    async def ongoing(self) -> Moves:
        """Kafka's running reassignments, by topic and partition (one request for the whole cluster)."""
        assert self.reassigner is not None
        return dict(await self.reassigner.ongoing())

    async def start(self, moves: list[Reassign], cluster: ClusterInfo) -> dict[str, str | None]:
        """Throttle, then start every move with one request; per topic, Kafka's refusal or None."""
        if not moves or self.reassigner is None:
            return {}
        throttle = {m.name: dict.fromkeys(THROTTLE_KEYS, THROTTLE_ALL_REPLICAS) for m in moves}
        throttle_errors = await self.kafka.alter_configs(throttle)
        for name, error in throttle_errors.items():
            if error is not None:
                log.warning("replication throttle not set on %s: %s", name, error)
        await self.set_broker_throttle(cluster, str(self.throttle_bytes_per_second))
        try:
            return await self.reassigner.reassign({m.name: m.assignment for m in moves})
        except KafkaUnavailable as error:
            log.warning("reassignments not started: %s", error)
            return {m.name: f"the reassignment client failed: {error}" for m in moves}

    async def set_broker_throttle(self, cluster: ClusterInfo, rate: str | None) -> None:
        if not cluster.brokers:
            cluster = await self.kafka.describe_cluster()
        changes = {b.node_id: dict.fromkeys(BROKER_THROTTLE_KEYS, rate) for b in cluster.brokers}
        for broker, error in (await self.kafka.alter_broker_configs(changes)).items():
            if error is not None:
                log.warning("replication throttle rate not changed on broker %s: %s", broker, error)
