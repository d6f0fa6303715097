"""Tenancy: DurabilityPolicy objects that say, per group of namespaces, what DurableTopics may do. Pure."""
