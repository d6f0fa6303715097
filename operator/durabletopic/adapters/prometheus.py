"""Every Prometheus metric the operator exports; the names are a contract with dashboards and alerts."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Collection, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from durabletopic.adapters.healthseries import TopicHealthSeries
from durabletopic.core.health import ReplicaHealth
from durabletopic.core.model import ObjectRef

# The `cluster` label of the operator's own bootstrap servers (no KafkaCluster object).
DEFAULT_CLUSTER = "default"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter(
            "durabletopic_reconcile_total", "DurableTopic reconciles by result.", ["result"], registry=r
        )
        self.reconcile_duration = Histogram(
            "durabletopic_reconcile_duration_seconds",
            "Time of one reconcile pass over a batch of DurableTopics.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.resources = Gauge(
            "durabletopic_resources", "DurableTopics by condition that is True.", ["condition"], registry=r
        )
        self.drift = Gauge(
            "durabletopic_drift",
            "1 while a managed topic differs from its spec or the policy in this key.",
            ["namespace", "name", "topic", "key", "severity"],
            registry=r,
        )
        self.drift_detected = Counter(
            "durabletopic_drift_detected_total",
            "Drift seen on managed topics, by what was done about it.",
            ["namespace", "name", "topic", "key", "severity", "action"],
            registry=r,
        )
        self.health = TopicHealthSeries()
        r.register(self.health)
        self.audit_findings = Gauge(
            "durabletopic_audit_findings",
            "Cluster audit findings by rule.",
            ["cluster", "rule", "severity"],
            registry=r,
        )
        self.policy_violations = Gauge(
            "durabletopic_policy_violations",
            "DurableTopics that break a rule now, by DurabilityPolicy and rule (policy empty: an operator-wide "
            "rule such as internal-topic).",
            ["policy", "rule"],
            registry=r,
        )
        self.policy_namespaces = Gauge(
            "durabletopic_policy_governed_namespaces",
            "Namespaces a DurabilityPolicy selects.",
            ["policy"],
            registry=r,
        )
        self.policy_durabletopics = Gauge(
            "durabletopic_policy_governed_durabletopics",
            "DurableTopics in the namespaces a DurabilityPolicy selects.",
            ["policy"],
            registry=r,
        )
        self.kafka_up = Gauge(
            "durabletopic_kafka_up",
            "1 when Kafka answered the last admin request (even with a refusal), 0 when no broker answered.",
            ["cluster"],
            registry=r,
        )
        self.admin_requests = Counter(
            "durabletopic_admin_requests_total",
            "Kafka admin requests by operation and result.",
            ["cluster", "op", "result"],
            registry=r,
        )
        self.admin_request_duration = Histogram(
            "durabletopic_admin_request_duration_seconds",
            "Kafka admin request latency.",
            ["cluster", "op"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.api_requests = Counter(
            "durabletopic_api_requests_total",
            "Kubernetes API requests made by the controller (watches excluded).",
            ["method", "result"],
            registry=r,
        )
        self.sweep_duration = Histogram(
            "durabletopic_sweep_duration_seconds",
            "Time to re-read and check every managed topic.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.leader = Gauge("durabletopic_leader", "1 while this operator replica is the leader.", registry=r)
        self._drift_series: dict[ObjectRef, set[tuple[str, str, str]]] = {}
        self._drift_counted: dict[ObjectRef, set[tuple[str, str, str, str]]] = {}
        self._health_topics: dict[ObjectRef, tuple[str, str]] = {}
        self._topic_users: collections.Counter[tuple[str, str]] = collections.Counter()
        self._audit_series: dict[str, set[tuple[str, str]]] = {}

    def record_admin_request(
        self, op: str, outcome: str, seconds: float, cluster: str = DEFAULT_CLUSTER
    ) -> None:
        """`outcome`: ok; error (Kafka answered, and refused); unreachable (no broker answered)."""
        self.admin_requests.labels(cluster=cluster, op=op, result="ok" if outcome == "ok" else "error").inc()
        self.admin_request_duration.labels(cluster=cluster, op=op).observe(seconds)
        self.kafka_up.labels(cluster=cluster).set(0 if outcome == "unreachable" else 1)

    def forget_cluster(self, cluster: str) -> None:
        """A KafkaCluster that is gone: its kafka_up and audit series go with it."""
        with contextlib.suppress(KeyError):
            self.kafka_up.remove(cluster)
        for rule, severity in self._audit_series.pop(cluster, set()):
            with contextlib.suppress(KeyError):
                self.audit_findings.remove(cluster, rule, severity)

    def record_api_request(self, method: str, result: str, seconds: float) -> None:
        self.api_requests.labels(method=method, result=result).inc()

    def record_pass(self, result: str, objects: int, seconds: float) -> None:
        self.reconcile_total.labels(result=result).inc(objects)
        self.reconcile_duration.observe(seconds)

    def record_sweep(self, seconds: float) -> None:
        self.sweep_duration.observe(seconds)

    def count_drift(self, ref: ObjectRef, topic: str, key: str, severity: str, action: str) -> None:
        self.drift_detected.labels(ref.namespace, ref.name, topic, key, severity, action).inc()
        self._drift_counted.setdefault(ref, set()).add((topic, key, severity, action))

    def set_resources(self, counts: Mapping[str, int]) -> None:
        for condition, count in counts.items():
            self.resources.labels(condition=condition).set(count)

    def set_leader(self, leading: bool) -> None:
        """A replica that stops leading stops exporting what only the leader knows: the gauges of
        objects, partitions and the audit (the counters keep their totals)."""
        self.leader.set(1 if leading else 0)
        if not leading:
            for gauge in (
                self.drift,
                self.health,
                self.resources,
                self.audit_findings,
                self.policy_violations,
                self.policy_namespaces,
                self.policy_durabletopics,
            ):
                gauge.clear()
            self._drift_series.clear()
            self._health_topics.clear()
            self._topic_users.clear()
            self._audit_series.clear()

    def set_drift(self, ref: ObjectRef, topic: str, keys: Collection[tuple[str, str]]) -> None:
        """The drift gauges of one DurableTopic: exactly `keys` (key, severity) are 1."""
        wanted = {(topic, key, severity) for key, severity in keys}
        current = self._drift_series.get(ref, set())
        for old_topic, key, severity in current - wanted:
            self.drift.remove(ref.namespace, ref.name, old_topic, key, severity)
        for new_topic, key, severity in wanted - current:
            self.drift.labels(ref.namespace, ref.name, new_topic, key, severity).set(1)
        if wanted:
            self._drift_series[ref] = wanted
        else:
            self._drift_series.pop(ref, None)

    def set_health(
        self, ref: ObjectRef, topic: str, health: ReplicaHealth, cluster: str = DEFAULT_CLUSTER
    ) -> None:
        key = (cluster, topic)
        previous = self._health_topics.get(ref)
        if previous != key:
            if previous is not None:
                self._release_topic(previous)
            self._health_topics[ref] = key
            self._topic_users[key] += 1
        self.health.set(key, health)

    def forget(self, ref: ObjectRef) -> None:
        """Drops every series of a deleted DurableTopic, each in O(1)."""
        self.set_drift(ref, "", ())
        for labels in self._drift_counted.pop(ref, ()):
            with contextlib.suppress(KeyError):
                self.drift_detected.remove(ref.namespace, ref.name, *labels)
        topic = self._health_topics.pop(ref, None)
        if topic is not None:
            self._release_topic(topic)

    def _release_topic(self, key: tuple[str, str]) -> None:
        """One object less exports the health of the topic (cluster, name); the last one takes the
        series away."""
        self._topic_users[key] -= 1
        if self._topic_users[key] <= 0:
            del self._topic_users[key]
            self.health.remove(key)

    def set_audit(self, counts: Mapping[tuple[str, str], int], cluster: str = DEFAULT_CLUSTER) -> None:
        """The audit gauges of one cluster: exactly the (rule, severity) pairs found, with their counts."""
        for rule, severity in self._audit_series.pop(cluster, set()) - set(counts):
            with contextlib.suppress(KeyError):
                self.audit_findings.remove(cluster, rule, severity)
        for (rule, severity), count in counts.items():
            self.audit_findings.labels(cluster=cluster, rule=rule, severity=severity).set(count)
        self._audit_series[cluster] = set(counts)

    def set_policies(
        self, governed: Mapping[str, tuple[int, int]], violations: Mapping[tuple[str, str], int]
    ) -> None:
        """The tenancy gauges: exactly the policies there are, and the (policy, rule) pairs broken."""
        for gauge in (self.policy_namespaces, self.policy_durabletopics, self.policy_violations):
            gauge.clear()
        for name, (namespaces, topics) in governed.items():
            self.policy_namespaces.labels(policy=name).set(namespaces)
            self.policy_durabletopics.labels(policy=name).set(topics)
        for (name, rule), count in violations.items():
            self.policy_violations.labels(policy=name, rule=rule).set(count)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def text(self) -> str:
        return generate_latest(self.registry).decode()
