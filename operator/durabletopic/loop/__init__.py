"""The reconcile loop: the store of DurableTopics, the work queue, the controller that orchestrates a
pass, and the ports (protocols and their errors) through which it reaches Kafka, Kubernetes and
Prometheus. It imports the core and its own ports only; the adapters implement the ports."""
