"""The Kafka adapter: batched, asyncio admin operations and the conversion of what Kafka reports."""

from durabletopic.kafka.admin import (
    KafkaAdmin,
    KafkaAdminError,
    KafkaUnavailable,
    NewTopicRequest,
    TopicError,
)

__all__ = ["KafkaAdmin", "KafkaAdminError", "KafkaUnavailable", "NewTopicRequest", "TopicError"]
