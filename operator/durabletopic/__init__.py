"""durable-topic-operator: Kafka topics that are durable by construction."""

__version__ = "0.1.0"
