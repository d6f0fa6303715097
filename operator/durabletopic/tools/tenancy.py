"""What the offline tools need to judge DurableTopics by the tenancy rules: the DurabilityPolicy objects,
the labels of the namespaces, and the internal topics the operator may manage all the same.

Policies and Namespaces are read from YAML files as kubectl writes them (`kubectl get dtp -o yaml` and
`kubectl get namespaces -o yaml` included: a `List` is read item by item). Namespace labels may also be
a plain mapping, namespace -> {label: value}. Every namespace carries `kubernetes.io/metadata.name`,
as the API server sets it on every namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durabletopic.core import crd
from durabletopic.core.tenancy import crd as policy_crd
from durabletopic.core.tenancy import rules as tenancy_rules
from durabletopic.core.tenancy.model import TenantPolicy
from durabletopic.tools.manifests import Document, ReadError, group_of, read_documents

DEFAULT_NAMESPACE = "default"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class Tenancy:
    """The policies, the namespaces' labels and the internal-topic exceptions a check runs with.

    `default_namespace` is the namespace of a manifest without metadata.namespace (kubectl's `-n`).
    """

    policies: tuple[TenantPolicy, ...] = ()
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    internal_topic_exceptions: frozenset[str] = frozenset()
    default_namespace: str = DEFAULT_NAMESPACE

    def labels_of(self, namespace: str) -> dict[str, str]:
        return {**self.namespace_labels.get(namespace, {}), NAMESPACE_NAME_LABEL: namespace}

    def governing(self, namespace: str) -> list[TenantPolicy]:
        """The policies that select `namespace`, by name."""
        return tenancy_rules.governing(self.policies, self.labels_of(namespace))


@dataclass(slots=True)
class TenancyInput:
    """A Tenancy as read from files and flags, and what could not be read."""

    tenancy: Tenancy
    errors: list[ReadError]


def _objects(document: Any) -> Iterator[Any]:
    """A document's objects: the items of a List, or the document itself."""
    kind = document.get("kind") if isinstance(document, dict) else None
    if isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list):
        yield from document["items"]
    else:
        yield document


def _is_policy(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == policy_crd.KIND and group_of(obj) == crd.GROUP


def _policy_name(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and name else None


def load_policies(paths: Sequence[str]) -> tuple[list[TenantPolicy], list[ReadError]]:
    """The DurabilityPolicy objects in `paths` (other kinds are ignored), by name.

    A policy the API server would not store (no name, a spec that does not read, a name given twice) is
    an error: the check would not be the cluster's.
    """
    read = read_documents(paths)
    errors = list(read.errors)
    found: dict[str, tuple[TenantPolicy, str]] = {}
    for file, document in read.documents:
        for obj in _objects(document.value):
            if not _is_policy(obj):
                continue
            where = f"{file}:{document.line}"
            name = _policy_name(obj)
            if name is None:
                errors.append(_error(file, document, "a DurabilityPolicy without metadata.name"))
                continue
            policy = TenantPolicy.from_body(obj)
            if policy.problem is not None:
                errors.append(_error(file, document, f"DurabilityPolicy {name}: {policy.problem}"))
            elif name in found:
                errors.append(
                    _error(file, document, f"DurabilityPolicy {name} is also defined at {found[name][1]}")
                )
            else:
                found[name] = (policy, where)
    return [found[name][0] for name in sorted(found)], errors


def _error(file: str, document: Document, message: str) -> ReadError:
    return ReadError(file, document.line, None, message)


def _string_labels(labels: Any) -> dict[str, str] | None:
    """Labels as Kubernetes holds them (strings only), or None if they are not."""
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return None
    return {str(k): v for k, v in labels.items()}


def _namespace_entries(obj: Any) -> Iterator[tuple[str, Any]]:
    """(namespace, labels) of a Namespace object, or of each entry of a mapping namespace -> labels."""
    if not isinstance(obj, dict):
        return
    if obj.get("kind") == "Namespace":
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        name = metadata.get("name")
        if isinstance(name, str) and name:
            yield name, metadata.get("labels")
    elif "kind" not in obj and "apiVersion" not in obj:
        yield from ((str(k), v) for k, v in obj.items())


def load_namespace_labels(paths: Sequence[str]) -> tuple[dict[str, dict[str, str]], list[ReadError]]:
    """The labels of each namespace in `paths`: Namespace objects, or mappings namespace -> labels."""
    read = read_documents(paths)
    errors = list(read.errors)
    labels: dict[str, dict[str, str]] = {}
    for file, document in read.documents:
        for obj in _objects(document.value):
            for namespace, raw in _namespace_entries(obj):
                strings = _string_labels(raw)
                if strings is None:
                    message = (
                        f"namespace {namespace}: labels must be a mapping of strings (quote true, 1, ...)"
                    )
                    errors.append(_error(file, document, message))
                else:
                    labels.setdefault(namespace, {}).update(strings)
    return labels, errors


def parse_namespace_label(text: str) -> tuple[str, str, str]:
    """`NS:KEY=VALUE` as (namespace, key, value); raises ValueError otherwise."""
    namespace, colon, assignment = text.partition(":")
    key, equals, value = assignment.partition("=")
    if not (colon and equals and namespace and key):
        raise ValueError(f"{text!r} is not NAMESPACE:KEY=VALUE")
    return namespace, key, value


def load(
    policy_paths: Sequence[str] = (),
    label_paths: Sequence[str] = (),
    labels: Iterable[tuple[str, str, str]] = (),
    internal_topic_exceptions: Iterable[str] = (),
    default_namespace: str = DEFAULT_NAMESPACE,
) -> TenancyInput:
    """A Tenancy from policy files, namespace label files, then single labels (which win)."""
    policies, errors = load_policies(policy_paths) if policy_paths else ([], [])
    namespace_labels, label_errors = load_namespace_labels(label_paths) if label_paths else ({}, [])
    for namespace, key, value in labels:
        namespace_labels.setdefault(namespace, {})[key] = value
    tenancy = Tenancy(
        tuple(policies), namespace_labels, frozenset(internal_topic_exceptions), default_namespace
    )
    return TenancyInput(tenancy, errors + label_errors)
