"""The Kubernetes side: watching DurableTopics through kopf, and writing status, events and finalizers."""
