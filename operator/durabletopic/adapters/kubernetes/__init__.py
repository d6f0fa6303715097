"""The Kubernetes adapter: an asynchronous API client, the DurableTopic requests the loop makes, and the Lease."""
