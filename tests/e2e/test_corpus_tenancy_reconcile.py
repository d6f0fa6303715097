"""One source of tenancy rules, the operator's leg: the real operator gives every manifest of the
tenancy corpus the verdict `validate --policy` and the admission policies give it (`test_corpus_tenancy`).

The corpus's DurabilityPolicies and namespaces are created under names of this run, with no admission
policy bound to them, so that every manifest is admitted and the operator alone judges it: an entry
with findings ends `Stalled/PolicyViolation` naming exactly the rules (and policies) of its header, and
nothing of it reaches Kafka; a valid entry is never refused by a policy.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from tests import corpus
from tests.e2e import helpers
from tests.e2e.helpers import Kube, condition, wait_for

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("operator")]

CORPUS = corpus.tenancy()
RULE = re.compile(r"\(rule ([a-z-]+)\)")


@pytest.fixture(scope="module")
def scope(testbed: Any, crd_installed: None) -> Iterator[corpus.RunScope]:
    scope = corpus.RunScope(f"r{uuid.uuid4().hex[:6]}")
    namespaces = [scope.namespace(name) for name in CORPUS.namespaces]
    for logical, labels in CORPUS.namespaces.items():
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": scope.namespace(logical)}}
        body["metadata"]["labels"] = scope.namespace_labels(dict(labels))
        testbed.kubectl("apply", "-f", "-", input=json.dumps(body))
    policies = [scope.policy(p) for p in CORPUS.policies]
    testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(policies))
    yield scope
    for policy in policies:
        testbed.kubectl(
            "delete", "durabilitypolicy", policy["metadata"]["name"], "--ignore-not-found", check=False
        )
    for namespace in namespaces:
        testbed.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def concluded(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kube.get(namespace, name)
        return obj if condition(obj, "Ready") is not None else None

    return wait_for(f"{namespace}/{name} judged by the operator", probe, 60)


def test_the_operator_gives_the_corpus_its_verdicts(
    testbed: Any, kube: Kube, scope: corpus.RunScope, kafka_admin: AdminClient
) -> None:
    applied: list[tuple[corpus.Entry, int, str, str]] = []
    for entry in CORPUS.entries:
        assert entry.namespace is not None
        namespace = scope.namespace(entry.namespace)
        documents = [d for d in yaml.safe_load_all(scope.entry_text(entry)) if d]
        for number, document in enumerate(documents):
            if number:
                time.sleep(1.05)  # creation timestamps have one-second resolution: the order is the age
            result = testbed.kubectl(
                "apply", "-n", namespace, "-f", "-", input=json.dumps(document), check=False
            )
            assert result.returncode == 0, f"{entry.id}[{number}]: not admitted: {result.stderr}"
            applied.append((entry, number, namespace, document["metadata"]["name"]))

    failures = []
    for entry, number, namespace, name in applied:
        expected = {e for e in entry.expected if e.document in (None, number)}
        if any(e.document is not None for e in entry.expected) and not any(
            e.document == number for e in expected
        ):
            expected = set()
        obj = concluded(kube, namespace, name)
        stalled = condition(obj, "Stalled") or {}
        refused = stalled.get("status") == "True" and stalled.get("reason") == "PolicyViolation"
        message = str(stalled.get("message", ""))
        if not expected:
            if refused:
                failures.append(f"{entry.id}[{number}]: refused by the operator: {message}")
            continue
        if not refused:
            failures.append(
                f"{entry.id}[{number}]: expected {sorted(e.rule for e in expected)}, got {stalled}"
            )
            continue
        if set(RULE.findall(message)) != {e.rule for e in expected}:
            failures.append(
                f"{entry.id}[{number}]: rules {RULE.findall(message)} != {sorted(e.rule for e in expected)}"
            )
        for e in expected:
            if e.field.split("[")[0] not in message:
                failures.append(f"{entry.id}[{number}]: {e.field} not named in {message}")
            if e.policy and scope.policy_name(e.policy) not in message:
                failures.append(f"{entry.id}[{number}]: policy {e.policy} not named in {message}")
        topic = obj["spec"].get("topicName") or name
        if (
            helpers.describe(kafka_admin, topic) is not None
            and not topic.startswith("__")
            and topic != "_schemas"
        ):
            failures.append(f"{entry.id}[{number}]: topic {topic} exists in Kafka")
    assert failures == [], "\n".join(failures)
