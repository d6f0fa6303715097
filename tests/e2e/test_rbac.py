"""The operator's RBAC is what it uses, and nothing more: the API server's audit log of the operator's
ServiceAccount, after it went through every kind of work, against what deploy/ grants it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import CLUSTER_CA, CLUSTER_SECRET, Identity, operator_instead
from tests.e2e.helpers import Kube, ready, reason_of, wait_for
from tests.testbed.operator_process import OPERATOR_NAMESPACE, OperatorProcess

pytestmark = [pytest.mark.testbed]

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:durable-topic-operator"
LEASE = "durable-topic-operator"

Permission = tuple[str, str, str]  # (API group, resource[/subresource], verb)


def granted(documents: list[dict[str, Any]]) -> set[Permission]:
    """Every (group, resource, verb) the roles among `documents` grant, wildcards refused."""
    permissions: set[Permission] = set()
    for document in documents:
        if document.get("kind") not in ("ClusterRole", "Role"):
            continue
        for rule in document.get("rules") or []:
            for value in rule["apiGroups"] + rule["resources"] + rule["verbs"]:
                assert value != "*", f"{document['metadata']['name']} grants a wildcard"
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        permissions.add((group, resource, verb))
    return permissions


def used(audit_log: Path, user: str, since: str) -> tuple[set[Permission], list[dict[str, Any]]]:
    """What `user` asked the API server for since `since` (an RFC 3339 time: the log spans the test
    bed's life), and what it was refused. A server-side apply that creates its object is authorized
    for `create` too, inside the one `patch` request the log shows."""
    permissions: set[Permission] = set()
    refused = []
    for path in sorted(audit_log.parent.glob(audit_log.stem + "*" + audit_log.suffix)):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("user", {}).get("username") != user or "objectRef" not in event:
                continue
            if event.get("requestReceivedTimestamp", "") < since:
                continue
            ref = event["objectRef"]
            resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            group = ref.get("apiGroup", "")
            permissions.add((group, resource, event["verb"]))
            if event["verb"] == "patch" and event.get("responseStatus", {}).get("code") == 201:
                permissions.add((group, resource, "create"))
            if _denied_by_rbac(event):
                refused.append(event)
    return permissions, refused


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _denied_by_rbac(event: dict[str, Any]) -> bool:
    """Refused by the authorizer: at the request, or inside it (server-side apply that creates an object
    is authorized once more, for `create`); not, say, by a namespace being deleted."""
    if event.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid":
        return True
    status = event.get("responseStatus", {})
    return status.get("code") == 403 and " cannot " in status.get("message", "")


def exercise(kube: Kube, namespace: str, testbed: Any, credentials: str = OPERATOR_NAMESPACE) -> None:
    """Every kind of work: a finalizer, a status, a client profile, an event, a deletion, the status
    of a DurabilityPolicy that selects the namespace, and a KafkaCluster whose credentials (a Secret)
    and CA (a ConfigMap) live in `credentials`."""
    with kafka_cluster(testbed, credentials):
        _exercise_policy(kube, namespace, testbed)


@contextlib.contextmanager
def kafka_cluster(testbed: Any, credentials: str) -> Iterator[None]:
    """A KafkaCluster for the test bed's SASL_SSL listener, until it is Ready."""
    properties = testbed.kafka_client_properties("SASL_SSL", "SCRAM-SHA-512")
    name = f"rbac-{credentials}"
    documents = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CLUSTER_SECRET, "namespace": credentials},
            "stringData": {"username": properties["sasl.username"], "password": properties["sasl.password"]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CLUSTER_CA, "namespace": credentials},
            "data": {"ca.crt": Path(properties["ssl.ca.location"]).read_text()},
        },
        {
            "apiVersion": "durabletopic.dev/v1alpha1",
            "kind": "KafkaCluster",
            "metadata": {"name": name},
            "spec": {
                "bootstrapServers": testbed.bootstrap_servers_sasl_ssl,
                "authentication": {
                    "sasl": {
                        "mechanism": "SCRAM-SHA-512",
                        "secretRef": {"namespace": credentials, "name": CLUSTER_SECRET},
                    }
                },
                "tls": {
                    "enabled": True,
                    "caRef": {"kind": "ConfigMap", "namespace": credentials, "name": CLUSTER_CA},
                },
            },
        },
    ]
    testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    try:

        def connected() -> bool:
            got = testbed.kubectl("get", "kafkacluster", name, "-o", "json").stdout
            conditions = (json.loads(got).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["reason"] == "Connected" for c in conditions)

        wait_for("the KafkaCluster connected", connected, 60)
        yield
    finally:
        testbed.kubectl("delete", "kafkacluster", name, "--ignore-not-found", check=False)
        testbed.kubectl(
            "delete", "secret", CLUSTER_SECRET, "-n", credentials, "--ignore-not-found", check=False
        )
        testbed.kubectl(
            "delete", "configmap", CLUSTER_CA, "-n", credentials, "--ignore-not-found", check=False
        )


def _exercise_policy(kube: Kube, namespace: str, testbed: Any) -> None:
    policy = {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "DurabilityPolicy",
        "metadata": {"name": f"rbac-{namespace}"},
        "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
    }
    testbed.kubectl("apply", "-f", "-", input=json.dumps(policy))
    try:
        _exercise(kube, namespace)

        def governs() -> bool:
            got = testbed.kubectl("get", "durabilitypolicy", policy["metadata"]["name"], "-o", "json").stdout
            return (json.loads(got).get("status") or {}).get("durableTopics") == 1

        wait_for("the policy's status", governs, 30)
    finally:
        testbed.kubectl(
            "delete", "durabilitypolicy", policy["metadata"]["name"], "--ignore-not-found", check=False
        )


def _exercise(kube: Kube, namespace: str) -> None:
    topic = f"{namespace}.rbac"
    kube.create(namespace, "rbac", {"topicName": topic, "partitions": 1, "deletionPolicy": "Delete"})
    ready(kube, namespace, "rbac")
    wait_for(
        "the client profile",
        lambda: any(
            c.metadata.name == "rbac-client-profile"
            for c in kube.core.list_namespaced_config_map(namespace).items
        ),
        timeout=30,
    )
    refused = {"topicName": f"{namespace}.refused", "partitions": 1, "config": {"retention.ms": "x"}}
    kube.create(namespace, "refused", refused)
    reason_of(kube, namespace, "refused", "Stalled", "InvalidConfig")
    kube.delete(namespace, "rbac")
    wait_for("the object deleted", lambda: not kube.exists(namespace, "rbac"), 30)


def assert_least_privilege(audit_log: Path, user: str, roles: list[dict[str, Any]], since: str) -> None:
    allowed = granted(roles)
    asked, refused = used(audit_log, user, since)
    assert asked, f"no request of {user} in {audit_log}"
    assert refused == [], [f"{e['verb']} {e['requestURI']}" for e in refused]
    assert asked <= allowed, sorted(asked - allowed)
    assert allowed <= asked, f"granted but never used: {sorted(allowed - asked)}"


def test_cluster_wide_rbac_is_what_the_operator_uses(  # type: ignore[no-untyped-def]
    testbed, kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    """deploy/'s RBAC, for the operator of the session (cluster-wide, leader through a Lease), from its
    start: without its Lease, which it creates again."""
    since = now()
    operator.stop()
    testbed.kubectl("delete", "lease", LEASE, "-n", OPERATOR_NAMESPACE, "--ignore-not-found")
    operator.start()
    exercise(kube, namespace, testbed)
    rendered = testbed.kubectl("kustomize", str(ROOT / "deploy")).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    assert_least_privilege(testbed.audit_log, OPERATOR_USER, documents, since)


def test_namespaced_rbac_is_what_the_operator_uses(  # type: ignore[no-untyped-def]
    testbed,
    kube: Kube,
    namespace: str,
    namespaced_identity: Identity,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    """The chart's RBAC with watchNamespaces, for an operator that watches only that namespace."""
    since = now()
    settings = {
        "DURABLETOPIC_NAMESPACES": namespace,
        "DURABLETOPIC_LEADER_ELECTION_NAMESPACE": namespaced_identity.namespace,
    }
    log = tmp_path / "namespaced-operator.log"
    with operator_instead(operator, log, kubeconfig=namespaced_identity.kubeconfig, **settings):
        exercise(kube, namespace, testbed, namespaced_identity.namespace)
    assert_least_privilege(testbed.audit_log, namespaced_identity.user, namespaced_identity.rbac, since)
