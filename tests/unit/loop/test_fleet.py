"""Several Kafka clusters from one operator, on in-memory ports: routing by spec.clusterRef, topics per
cluster, failures isolated per cluster, KafkaClusters that appear, go and change, the pinned cluster id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from durabletopic.core.model import ObjectRef, Policy
from durabletopic.loop import fleet as fleet_module
from durabletopic.loop.clusters import settings_link
from durabletopic.loop.controller import FINALIZER
from durabletopic.loop.fleet import Fleet
from durabletopic.loop.store import Store
from tests.unit.loop.conftest import until
from tests.unit.loop.fakes import FakeConnector, FakeKafka, FakeKube, FakeReassigner, RecordingMetrics, body

SCRAM = {"mechanism": "SCRAM-SHA-512", "secretRef": {"namespace": "ops", "name": "b-credentials"}}


def kafka_cluster(name: str, bootstrap: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "generation": 1}, "spec": {"bootstrapServers": bootstrap, **spec}}


class FleetHarness:
    def __init__(self, default_cluster: str = "") -> None:
        self.default = FakeKafka()
        self.default.cluster_id = "cluster-default"
        self.b = FakeKafka()
        self.b.cluster_id = "cluster-b"
        self.kube = FakeKube()
        self.metrics = RecordingMetrics()
        self.connector = FakeConnector({"b:9092": self.b, "default:9092": self.default})
        self.fleet = Fleet(
            store=Store(),
            kube=self.kube,
            metrics=self.metrics,
            policy=Policy(),
            connector=self.connector,
            settings_link=None
            if default_cluster
            else settings_link(self.default, FakeReassigner(self.default)),
            default_cluster=default_cluster,
            now=lambda: "2026-11-28T12:00:00Z",
        )

    def add_cluster(self, name: str, bootstrap: str = "b:9092", **spec: Any) -> None:
        document = kafka_cluster(name, bootstrap, **spec)
        self.kube.clusters[name] = document
        self.fleet.observe_cluster_event("ADDED", document)

    def apply(self, name: str, spec: dict[str, Any] | None = None, **metadata: Any) -> ObjectRef:
        event = body(name, spec, **metadata)
        ref = ObjectRef(event["metadata"]["namespace"], name)
        self.kube.objects[ref] = event
        self.fleet.observe_event("ADDED", event)
        return ref

    async def step(self) -> bool:
        """One pass of every controller over everything it has queued, due or not."""
        await self.fleet.refresh_due()
        worked = False
        for controller in list(self.fleet.controllers.values()):
            refs = controller.queue.keys()
            for ref in refs:
                controller.queue.discard(ref)
            if refs:
                worked = True
                await controller.reconcile(refs)
        return worked

    async def settle(self, passes: int = 10) -> None:
        for _ in range(passes):
            if not await self.step():
                return
        raise AssertionError("still work queued")

    def condition(self, ref: ObjectRef, kind: str = "Ready") -> tuple[str, str] | None:
        return self.kube.condition(ref, kind)


@pytest.fixture
def fleet() -> FleetHarness:
    return FleetHarness()


ON_B = {"partitions": 3, "clusterRef": {"name": "b"}}


async def test_the_same_topic_name_on_two_clusters_is_two_topics(fleet: FleetHarness) -> None:
    fleet.add_cluster("b", authentication={"sasl": SCRAM})
    fleet.kube.sources[("Secret", "ops", "b-credentials")] = {"username": "operator", "password": "s3cret"}
    here = fleet.apply("orders", namespace="one")
    there = fleet.apply("orders", ON_B, namespace="two")
    await fleet.settle()
    assert fleet.condition(here) == ("True", "Reconciled")
    assert fleet.condition(there) == ("True", "Reconciled"), "not a conflict: another cluster"
    assert "orders" in fleet.default.topics and "orders" in fleet.b.topics
    assert fleet.default.topics["orders"].topic_id != fleet.b.topics["orders"].topic_id
    [(name, bootstrap, properties)] = fleet.connector.made
    assert (name, bootstrap) == ("b", "b:9092")
    assert properties["sasl.password"] == "s3cret" and properties["security.protocol"] == "SASL_PLAINTEXT"


async def test_one_cluster_down_never_delays_or_mislabels_another(fleet: FleetHarness) -> None:
    fleet.add_cluster("b")
    fleet.b.unavailable = True
    on_b = fleet.apply("orders", ON_B, namespace="two")
    await fleet.step()
    assert fleet.condition(on_b, "Reconciling") == ("True", "KafkaUnavailable")
    on_default = [fleet.apply(f"t{i}", namespace="one") for i in range(5)]
    await fleet.step()
    assert all(fleet.condition(r) == ("True", "Reconciled") for r in on_default)
    assert fleet.fleet.controllers["b"].link.failure is not None
    fleet.b.unavailable = False
    await fleet.settle()
    assert fleet.condition(on_b) == ("True", "Reconciled")


async def test_a_missing_kafkacluster_or_secret_stalls_its_objects_only(fleet: FleetHarness) -> None:
    on_b = fleet.apply("orders", ON_B, namespace="two")
    await fleet.settle()
    assert fleet.condition(on_b, "Stalled") == ("True", "ClusterNotReady")
    fleet.add_cluster("b", authentication={"sasl": SCRAM})
    await fleet.settle()
    assert fleet.condition(on_b, "Stalled") == ("True", "ClusterNotReady"), "its Secret is missing"
    assert "Secret ops/b-credentials not found" in str(fleet.kube.statuses[on_b]["conditions"])
    fleet.kube.sources[("Secret", "ops", "b-credentials")] = {"username": "operator", "password": "x"}
    fleet.fleet.observe_cluster_event("MODIFIED", fleet.kube.clusters["b"])
    await fleet.settle()
    assert fleet.condition(on_b) == ("True", "Reconciled")
    assert fleet.b.count("create_topics") == 1


async def test_a_rotated_secret_gives_new_clients(fleet: FleetHarness) -> None:
    fleet.kube.sources[("Secret", "ops", "b-credentials")] = {"username": "operator", "password": "one"}
    fleet.add_cluster("b", authentication={"sasl": SCRAM})
    await fleet.settle()
    fleet.kube.sources[("Secret", "ops", "b-credentials")] = {"username": "operator", "password": "two"}
    await fleet.fleet.refresh_links({"b"})
    assert [p["sasl.password"] for _, _, p in fleet.connector.made] == ["one", "two"]
    assert fleet.connector.closed == 1
    await fleet.fleet.refresh_links({"b"})
    assert len(fleet.connector.made) == 2, "unchanged settings keep their clients"


async def test_a_kafkacluster_pointed_at_another_cluster_writes_and_deletes_nothing(
    fleet: FleetHarness,
) -> None:
    fleet.add_cluster("b")
    spec = {**ON_B, "deletionPolicy": "Delete"}
    ref = fleet.apply("orders", spec, namespace="two")
    await fleet.settle()
    assert fleet.condition(ref) == ("True", "Reconciled")
    assert fleet.fleet.controllers["b"].link.pinned_id == "cluster-b", "the first id seen is pinned"
    # Someone points the KafkaCluster at the other cluster, which has a topic of the same name.
    fleet.default.add_topic("orders", partitions=1, overrides={"retention.ms": "7"})
    moved = kafka_cluster("b", "default:9092")
    fleet.kube.clusters["b"] = moved
    fleet.fleet.observe_cluster_event("MODIFIED", moved)
    status = fleet.kube.statuses[ref]
    fleet.fleet.observe_event(
        "MODIFIED",
        body("orders", spec, namespace="two", finalizers=[FINALIZER], deleting=True, status=status),
    )
    for _ in range(3):
        await fleet.step()
    assert fleet.condition(ref, "Reconciling") == ("True", "DeletePending")
    assert "reports cluster id cluster-default" in str(fleet.kube.statuses[ref]["conditions"])
    assert fleet.default.count("delete_topics") == 0 and fleet.default.count("alter_configs") == 0
    assert fleet.default.topics["orders"].overrides == {"retention.ms": "7"}


async def test_an_explicit_cluster_id_refuses_another_cluster_from_the_start(fleet: FleetHarness) -> None:
    fleet.add_cluster("b", clusterId="not-this-one")
    ref = fleet.apply("orders", ON_B, namespace="two")
    await fleet.settle()
    assert fleet.condition(ref, "Stalled") == ("True", "ClusterIdMismatch")
    assert fleet.b.count("create_topics") == 0


async def test_the_default_cluster_setting_routes_objects_without_clusterref() -> None:
    harness = FleetHarness(default_cluster="b")
    harness.add_cluster("b")
    implicit = harness.apply("orders", namespace="one")
    explicit = harness.apply("orders", ON_B, namespace="two", created="2026-11-28T11:00:00Z")
    await harness.settle()
    assert harness.condition(implicit) == ("True", "Reconciled")
    assert harness.condition(explicit, "Stalled") == ("True", "TopicConflict"), (
        "the same topic of the same cluster"
    )
    assert "orders" in harness.b.topics and "orders" not in harness.default.topics


async def test_cluster_floors_raise_the_operator_floors(fleet: FleetHarness) -> None:
    fleet.add_cluster("b", floors={"minReplicationFactor": 3, "minInSyncReplicas": 2})
    fleet.add_cluster("strict", "b:9092", floors={"minInSyncReplicas": 3, "minReplicationFactor": 4})
    ref = fleet.apply("orders", {"partitions": 1, "clusterRef": {"name": "strict"}}, namespace="two")
    await fleet.settle()
    assert fleet.condition(ref, "Stalled") == ("True", "PolicyViolation")
    assert "orders" not in fleet.b.topics


async def test_the_kafkacluster_status_says_what_was_seen(fleet: FleetHarness) -> None:
    fleet.add_cluster("b")
    fleet.apply("orders", ON_B, namespace="two")
    await fleet.settle()
    await fleet.fleet._cluster_status("b")
    status = fleet.kube.cluster_statuses["b"]
    assert status["conditions"][0]["type"] == "Ready" and status["conditions"][0]["reason"] == "Connected"
    assert (status["clusterId"], status["brokerCount"], status["durableTopics"]) == ("cluster-b", 3, 1)
    assert status["brokers"][0] == {"id": 1, "rack": "r1"}
    # The KafkaCluster now leads to another cluster: not Ready, and the pinned id stays.
    fleet.kube.cluster_statuses["b"] = status
    moved = {**kafka_cluster("b", "default:9092"), "status": status}
    fleet.kube.clusters["b"] = moved
    fleet.fleet.observe_cluster_event("MODIFIED", moved)
    await fleet.fleet.refresh_due()
    await fleet.fleet._cluster_status("b")
    status = fleet.kube.cluster_statuses["b"]
    assert (status["conditions"][0]["status"], status["conditions"][0]["reason"]) == (
        "False",
        "ClusterIdMismatch",
    )
    assert status["clusterId"] == "cluster-b"


async def test_an_unreachable_kafkacluster_says_so(fleet: FleetHarness) -> None:
    fleet.add_cluster("b")
    fleet.b.unavailable = True
    await fleet.fleet.refresh_due()
    await fleet.fleet._cluster_status("b")
    condition = fleet.kube.cluster_statuses["b"]["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "Unreachable")


async def test_the_periodic_resync_lists_durabletopics_again_only_after_the_watch_was_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unbroken watch delivers every deletion; one that was interrupted lists the objects again (kopf's
    events without a type), and only then may a deletion have been missed: the next resync lists them."""
    harness = FleetHarness()
    harness.fleet.resync_interval = 0.01
    monkeypatch.setattr(fleet_module, "FULL_LISTING_EVERY", 1000)
    listings = []
    list_durabletopics = harness.kube.list_durabletopics

    async def counted() -> list[dict[str, Any]]:
        listings.append(1)
        return await list_durabletopics()

    monkeypatch.setattr(harness.kube, "list_durabletopics", counted)
    ghost = harness.apply("orders")
    resyncing = asyncio.create_task(harness.fleet.resync_periodically())
    try:
        await until(lambda: len(listings) == 1)  # the first: nothing was listed yet
        await asyncio.sleep(0.1)
        assert len(listings) == 1, "the watch ran unbroken: nothing to list"

        del harness.kube.objects[ghost]  # deleted while the watch was down: no DELETED event
        harness.fleet.observe_event(None, body("payments"))  # the watch, restarted, lists again
        await until(lambda: harness.fleet.store.get(ghost) is None)
        assert len(listings) == 2

        monkeypatch.setattr(fleet_module, "FULL_LISTING_EVERY", 3)
        await until(lambda: len(listings) == 3)  # and at least every few intervals all the same
    finally:
        resyncing.cancel()
        await asyncio.gather(resyncing, return_exceptions=True)
