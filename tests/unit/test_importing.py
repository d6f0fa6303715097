"""`durabletopic import`'s core: which topics, their object names, and the DurableTopic of each (no servers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from durabletopic.cli import main
from durabletopic.core import importing
from durabletopic.core.audit import INTERNAL_TOPICS
from durabletopic.core.importing import MAX_OBJECT_NAME
from durabletopic.core.model import DurableTopicSpec, ObservedTopic, PartitionState, Policy
from durabletopic.core.rules import check_policy, check_spec
from durabletopic.tools import importing as import_tools
from durabletopic.tools.manifests import parse_manifests

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


def topic(
    name: str,
    rf: int = 3,
    partitions: int = 1,
    overrides: dict[str, str] | None = None,
    broker: dict[str, str] | None = None,
) -> ObservedTopic:
    replicas = tuple(range(1, rf + 1))
    parts = tuple(PartitionState(p, 1, replicas, replicas) for p in range(partitions))
    overrides = overrides or {}
    effective = {"min.insync.replicas": "1", "unclean.leader.election.enable": "false", **(broker or {})}
    return ObservedTopic(name, "id", parts, dict(overrides), {**effective, **overrides})


SAFE = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}


def test_a_safe_topic_is_declared_as_it_is() -> None:
    observed = topic(
        "payments",
        rf=3,
        partitions=6,
        overrides={**SAFE, "retention.ms": "604800000", "cleanup.policy": "compact"},
    )
    imported = importing.import_topic(observed, "payments", "team-a", Policy())
    assert imported.changes == ()
    assert imported.manifest() == {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "DurableTopic",
        "metadata": {"name": "payments", "namespace": "team-a"},
        "spec": {
            "topicName": "payments",
            "partitions": 6,
            "replicationFactor": 3,
            "minInSyncReplicas": 2,
            "config": {"cleanup.policy": "compact", "retention.ms": "604800000"},
            "deletionPolicy": "Retain",
        },
    }
    assert imported.comments() == [
        "durabletopic import: Kafka topic payments",
        "no change to the topic: this declares it as it is",
    ]


def test_a_weak_topic_is_raised_to_the_floors_and_says_so() -> None:
    observed = topic(
        "weak", rf=2, overrides={"min.insync.replicas": "1", "unclean.leader.election.enable": "true"}
    )
    imported = importing.import_topic(observed, "weak", None, Policy())
    assert imported.spec["replicationFactor"] == 3
    assert imported.spec["minInSyncReplicas"] == 2
    assert "config" not in imported.spec  # the durability keys are fields, never spec.config
    assert "namespace" not in imported.manifest()["metadata"]
    assert imported.comments()[1:] == [
        "raises replication.factor 2 -> 3",
        "raises min.insync.replicas 1 -> 2",
        "turns off unclean.leader.election.enable true -> false",
    ]


def test_inherited_durability_keys_are_written_on_the_topic() -> None:
    observed = topic("inherits", rf=3, broker={"min.insync.replicas": "2"})
    imported = importing.import_topic(observed, "inherits", None, Policy())
    assert imported.spec["minInSyncReplicas"] == 2
    assert imported.comments()[1:] == [
        "writes min.insync.replicas=2 on the topic (inherited until now: 2)",
        "writes unclean.leader.election.enable=false on the topic (inherited until now: false)",
    ]
    weak_default = importing.import_topic(topic("t", rf=3), "t", None, Policy())
    assert weak_default.comments()[1] == "raises min.insync.replicas 1 (inherited) -> 2"
    unclean_default = topic("u", overrides=SAFE | {}, broker={"unclean.leader.election.enable": "true"})
    assert importing.import_topic(unclean_default, "u", None, Policy()).changes == ()


def test_min_isr_at_the_replication_factor_is_lowered_below_it() -> None:
    imported = importing.import_topic(
        topic("stuck", rf=3, overrides={**SAFE, "min.insync.replicas": "3"}), "s", None, Policy()
    )
    assert (imported.spec["replicationFactor"], imported.spec["minInSyncReplicas"]) == (3, 2)
    assert imported.comments()[1:] == ["lowers min.insync.replicas 3 -> 2"]
    # When lowering would go below the floor, the replication factor is raised instead.
    strict = Policy(min_replication_factor=3, min_insync_replicas=3)
    raised = importing.import_topic(
        topic("s", rf=3, overrides={**SAFE, "min.insync.replicas": "3"}), "s", None, strict
    )
    assert (raised.spec["replicationFactor"], raised.spec["minInSyncReplicas"]) == (4, 3)
    assert raised.comments()[1:] == ["raises replication.factor 3 -> 4"]


def test_more_replicas_than_the_floor_are_kept_and_uneven_partitions_count_the_fewest() -> None:
    five = importing.import_topic(topic("five", rf=5, overrides=SAFE), "five", None, Policy())
    assert five.spec["replicationFactor"] == 5 and five.changes == ()
    uneven = ObservedTopic(
        "uneven",
        "id",
        (PartitionState(0, 1, (1, 2, 3), (1, 2, 3)), PartitionState(1, 1, (1, 2), (1, 2))),
        dict(SAFE),
        dict(SAFE),
    )
    imported = importing.import_topic(uneven, "uneven", None, Policy())
    assert imported.spec["partitions"] == 2
    assert imported.comments()[1:] == ["raises replication.factor 2 -> 3"]


def test_throttles_are_left_out_and_named() -> None:
    overrides = {**SAFE, "leader.replication.throttled.replicas": "*", "retention.ms": "1000"}
    imported = importing.import_topic(topic("moving", overrides=overrides), "moving", None, Policy())
    assert imported.spec["config"] == {"retention.ms": "1000"}
    assert (
        imported.comments()[-1]
        == "leaves out leader.replication.throttled.replicas: set on the topic while replicas move"
    )


@pytest.mark.parametrize(
    "observed",
    [
        topic("a", rf=1),
        topic("b", rf=2, overrides={"min.insync.replicas": "2"}),
        topic("c", rf=3, overrides={"min.insync.replicas": "5"}),
        topic(
            "d",
            rf=4,
            partitions=12,
            overrides={"unclean.leader.election.enable": "TRUE", "segment.ms": "60000"},
        ),
    ],
)
def test_every_manifest_passes_the_rules_and_the_floors(observed: ObservedTopic) -> None:
    imported = importing.import_topic(observed, observed.name, "ns", Policy())
    spec = imported.manifest()["spec"]
    assert check_spec(spec, imported.name) == []
    parsed = DurableTopicSpec.model_validate(spec)
    assert check_policy(parsed.replication_factor, parsed.min_insync_replicas, Policy()) == []
    assert parsed.min_insync_replicas < parsed.replication_factor


def test_which_topics_are_imported() -> None:
    names = {
        "orders",
        "payments",
        "__consumer_offsets",
        "__transaction_state",
        "__other",
        "_schemas",
        "connect-offsets",
        "app.events",
        "app.audit",
    }
    assert importing.to_import(names, managed={"payments"}) == ["app.audit", "app.events", "orders"]
    assert importing.to_import(names, managed={"app.audit"}, prefix="app.") == ["app.events"]
    assert importing.to_import(names, managed=set(), prefix="_", exceptions={"_schemas"}) == ["_schemas"]


def test_managed_topics_come_from_the_objects_and_their_clusters() -> None:
    objects: list[dict[str, Any]] = [
        {"metadata": {"name": "orders", "namespace": "a"}, "spec": {"partitions": 1}},
        {"metadata": {"name": "p", "namespace": "a"}, "spec": {"topicName": "payments"}},
        {
            "metadata": {"name": "e", "namespace": "b"},
            "spec": {"topicName": "east.only", "clusterRef": {"name": "east"}},
        },
        {"metadata": {}, "spec": "broken"},
    ]
    assert importing.managed_topics(objects) == {"orders", "payments", "east.only"}
    assert importing.managed_topics(objects, "west") == {"orders", "payments"}
    assert importing.managed_topics(objects, "east") == {"orders", "payments", "east.only"}
    assert importing.names_in(objects, "a") == {"orders", "p"}
    assert importing.names_in(objects, None) == {"orders", "p", "e"}


def test_object_names_are_valid_distinct_and_stable() -> None:
    topics = ["orders", "Orders", "app.events", "app_events", "payments_v2", "__", "x" * 249, "-a-"]
    names = importing.object_names(topics, taken={"payments-v2"})
    assert names["orders"] == "orders"  # a valid name is kept
    assert names["Orders"].startswith("orders-") and names["Orders"] != "orders"
    assert names["app.events"] != names["app_events"]
    assert {names["app.events"], names["app_events"]} != {"app-events"}
    assert names["payments_v2"].startswith("payments-v2-")  # payments-v2 is taken by another object
    assert names["-a-"] == "a"
    assert len(set(names.values())) == len(topics)
    for name in names.values():
        assert DNS_SUBDOMAIN.match(name) and len(name) <= MAX_OBJECT_NAME, name
    assert importing.object_names(reversed(topics), taken={"payments-v2"}) == names
    assert importing.name_of("My.Topic__Name") == "my-topic-name"


def test_rendered_manifests_read_back_as_durable_topics() -> None:
    observed = [
        topic("App.Events", rf=2, overrides={"retention.ms": "86400000", "cleanup.policy": "compact,delete"}),
        topic("true", overrides={**SAFE, "message.timestamp.type": "LogAppendTime"}),
    ]
    imported = import_tools.build(observed, "team-a", Policy())
    text = import_tools.render_all(imported)
    assert text.startswith(
        "# durabletopic import: Kafka topic App.Events\n# raises replication.factor 2 -> 3\n"
    )
    parsed = parse_manifests(text)
    assert [m.object for m in parsed] == [i.manifest() for i in imported]
    assert [m.object["spec"]["topicName"] for m in parsed] == ["App.Events", "true"]


def test_the_audits_internal_topics_are_never_imported() -> None:
    assert importing.to_import(INTERNAL_TOPICS, managed=set()) == []


def test_the_command_writes_nothing_when_it_cannot_tell_what_is_managed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir"
    out = tmp_path / "out"
    code = main(
        ["import", "--bootstrap-servers", "127.0.0.1:1", "--managed", str(missing), "--output", str(out)]
    )
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"durabletopic import: {missing}: no such file or directory\n"
    assert not out.exists()


def test_the_command_reports_unreachable_kafka_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["import", "--bootstrap-servers", "127.0.0.1:1", "--ignore-api-server", "--timeout", "1"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("durabletopic import: cannot read Kafka at 127.0.0.1:1: ")
    assert len(captured.err.strip().splitlines()) == 1
