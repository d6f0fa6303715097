"""The Kafka adapter: batched, asyncio admin operations and the conversion of what Kafka reports."""

from durabletopic.adapters.kafka.admin import KafkaAdmin
from durabletopic.core.model import TopicError
from durabletopic.loop.ports import KafkaAdminError, KafkaUnavailable

__all__ = ["KafkaAdmin", "KafkaAdminError", "KafkaUnavailable", "TopicError"]
