"""The clients of one Kafka cluster: a confluent-kafka admin client and a kafka-python reassigner."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from durabletopic.adapters.kafka.admin import KafkaAdmin
from durabletopic.adapters.kafka.reassign import Reassigner
from durabletopic.loop.ports import KafkaPort, ReassignPort

# (cluster, op, outcome, seconds) of every admin request, for the metrics.
OnClusterRequest = Callable[[str, str, str, float], None]


class KafkaConnector:
    def __init__(self, on_request: OnClusterRequest, label: Callable[[str], str]) -> None:
        self.on_request = on_request
        self.label = label

    def connect(
        self, cluster: str, bootstrap_servers: str, properties: Mapping[str, str]
    ) -> tuple[KafkaPort, ReassignPort | None]:
        label = self.label(cluster)

        def record(op: str, outcome: str, seconds: float) -> None:
            self.on_request(label, op, outcome, seconds)

        admin = KafkaAdmin(bootstrap_servers, properties, on_request=record)
        return admin, Reassigner(bootstrap_servers, properties, on_request=record)

    def close(self, kafka: KafkaPort, reassigner: ReassignPort | None) -> None:
        if isinstance(kafka, KafkaAdmin):
            kafka.close()
        if isinstance(reassigner, Reassigner):
            reassigner.close()
