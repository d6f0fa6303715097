"""Corpus manifests the API server admits but that must not reach Kafka: the real operator ends each
one `Stalled` with the named reason, and Kafka's topics and configs are exactly what they were.

These are the corpus entries with a `# reconcile:` header: below the floors (refused by the admission
policy where it is bound; here it is not), rules the CRD does not carry, and what only Kafka or the
live cluster refuses (unknown config keys, invalid values, more replicas than brokers).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from tests import corpus
from tests.e2e.helpers import Kube, condition, reason_of, snapshot

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("operator")]

ENTRIES = [e for e in corpus.entries() if e.reconcile is not None]


def expected_words(entry: corpus.Entry, spec: dict[str, Any]) -> list[str]:
    """What the Stalled message must name: the fields validate names, else the config keys or field at fault."""
    words = {field.split("[")[-1].rstrip("]") if "[" in field else field for _, field in entry.expect}
    if not words and spec.get("config"):
        words = set(spec["config"])
    if not words:
        words = {"spec.replicationFactor"}
    return sorted(words)


def test_reconcile_time_refusals_stall_and_leave_kafka_alone(
    testbed: Any, kube: Kube, namespace: str, kafka_admin: AdminClient
) -> None:
    assert {e.stage for e in ENTRIES} == {"admission-policy", "kafka"}
    assert {e.reconcile[1] for e in ENTRIES if e.reconcile} >= {
        "PolicyViolation",
        "InvalidConfig",
        "InsufficientBrokers",
    }
    objects: dict[str, tuple[corpus.Entry, dict[str, Any]]] = {}
    before = snapshot(kafka_admin)
    for entry in ENTRIES:
        # Topic names are cluster-wide: this run's own.
        text = entry.text.replace("topicName: corpus.", f"topicName: {namespace}.")
        document = yaml.safe_load(text)
        result = testbed.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=False)
        assert result.returncode == 0, f"{entry.id}: not admitted: {result.stderr}"
        objects[document["metadata"]["name"]] = (entry, document["spec"])

    failures = []
    for name, (entry, spec) in objects.items():
        assert entry.reconcile is not None
        kind, reason = entry.reconcile
        try:
            obj = reason_of(kube, namespace, name, kind, reason, timeout=60)
        except AssertionError as error:
            failures.append(f"{entry.id}: {error}")
            continue
        message = condition(obj, kind)["message"]  # type: ignore[index]
        missing = [w for w in expected_words(entry, spec) if w not in message]
        if missing:
            failures.append(f"{entry.id}: the {kind}/{reason} message does not name {missing}: {message}")
        ready = condition(obj, "Ready")
        if not ready or ready["status"] != "False":
            failures.append(f"{entry.id}: Ready is {ready}")
    assert not failures, "\n".join(failures)

    time.sleep(3)  # a sweep interval of the operator under test: nothing may happen late either
    assert snapshot(kafka_admin) == before, "Kafka's topics or configs changed"
