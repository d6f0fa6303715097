"""Adapters: the loop's ports implemented against confluent-kafka, kafka-python, the Kubernetes API
server (requests, the Lease) and Prometheus."""
