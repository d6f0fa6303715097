"""Kafka clusters as resources: KafkaCluster objects, how to reach them, and what their status says. Pure."""
