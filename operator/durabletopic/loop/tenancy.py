"""The DurabilityPolicies and namespace labels the operator knows, each object's verdict under them,
and the policies' own status.

Fed by watch events and by the full listing that precedes the leader's first pass, so that no
DurableTopic is acted on before every policy is known. The verdicts are the core's
(`core/tenancy/rules.py`); this module holds the state they are computed from.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from durabletopic.core.conditions import says_nothing_new
from durabletopic.core.model import ObjectRef
from durabletopic.core.rules import Violation
from durabletopic.core.tenancy import internal
from durabletopic.core.tenancy.model import TenantPolicy
from durabletopic.core.tenancy.rules import TopicRequest, check_quotas, check_request, governing
from durabletopic.core.tenancy.status import Governed, conflicts, policy_status
from durabletopic.loop.ports import ApiError, KubePort, MetricsPort
from durabletopic.loop.store import DurableTopicObject, Store, TopicKey

log = logging.getLogger(__name__)

STATUS_INTERVAL_SECONDS = 2.0


class Tenancy:
    def __init__(self, internal_topic_exceptions: Collection[str] = ()) -> None:
        self.exceptions = frozenset(internal_topic_exceptions)
        self.policies: dict[str, TenantPolicy] = {}
        self.policy_statuses: dict[str, dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self._governing: dict[str, list[TenantPolicy]] = {}
        # The last verdict of every object, for the policies' counts.
        self.verdicts: dict[ObjectRef, list[Violation]] = {}
        # Kafka topic ids some DurableTopic recorded, by topic: a topic the operator created for an object
        # since deleted with Retain is not "unmanaged" to the next object that declares it.
        self.managed_ids: dict[TopicKey, str] = {}
        self.dirty = True
        # Bumped whenever the rules or the labels change; the quota verdicts of a namespace are kept
        # until it or the store changes.
        self.version = 0
        self._quota_cache: dict[str, tuple[tuple[int, int], dict[ObjectRef, Violation]]] = {}
        # Each object's verdict on its own, kept while the same copy of it is judged under the same rules.
        self._own: dict[ObjectRef, tuple[DurableTopicObject, int, list[Violation]]] = {}

    # ----- state -----

    def observe_policy(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """A DurabilityPolicy event; True when the rules changed (the governed objects must be judged again)."""
        name = str((body.get("metadata") or {}).get("name", ""))
        if event_type == "DELETED":
            self.policy_statuses.pop(name, None)
            return self._set_policies({k: v for k, v in self.policies.items() if k != name})
        self.policy_statuses[name] = dict(body.get("status") or {})
        return self._set_policies({**self.policies, name: TenantPolicy.from_body(body)})

    def observe_namespace(self, event_type: str | None, body: Mapping[str, Any]) -> str | None:
        """A Namespace event; the namespace's name when its labels changed."""
        meta = body.get("metadata") or {}
        name = str(meta.get("name", ""))
        labels = None if event_type == "DELETED" else dict(meta.get("labels") or {})
        if self.namespaces.get(name) == labels:
            return None
        if labels is None:
            self.namespaces.pop(name, None)
        else:
            self.namespaces[name] = labels
        self._governing.pop(name, None)
        self.dirty = True
        self.version += 1
        return name

    def replace(self, policies: Iterable[Mapping[str, Any]], namespaces: Iterable[Mapping[str, Any]]) -> bool:
        """The state from full listings; True when anything changed."""
        listed = {TenantPolicy.from_body(b).name: b for b in policies}
        self.policy_statuses = {name: dict(b.get("status") or {}) for name, b in listed.items()}
        changed = self._set_policies({name: TenantPolicy.from_body(b) for name, b in listed.items()})
        labels = {
            str((b.get("metadata") or {}).get("name", "")): dict(
                (b.get("metadata") or {}).get("labels") or {}
            )
            for b in namespaces
        }
        if labels != self.namespaces:
            self.namespaces = labels
            self._governing.clear()
            self.version += 1
            self.dirty = changed = True
        return changed

    def _set_policies(self, policies: dict[str, TenantPolicy]) -> bool:
        if policies == self.policies:
            return False
        self.policies = policies
        self._governing.clear()
        self.version += 1
        self.dirty = True
        return True

    def governing(self, namespace: str) -> list[TenantPolicy]:
        found = self._governing.get(namespace)
        if found is None:
            found = governing(self.policies.values(), self.namespaces.get(namespace, {}))
            self._governing[namespace] = found
        return found

    def remember(self, key: TopicKey, topic_id: object) -> None:
        """A topic id some DurableTopic recorded as the topic the operator manages for it."""
        if isinstance(topic_id, str) and topic_id:
            self.managed_ids[key] = topic_id

    def operator_created(self, key: TopicKey, topic_id: str) -> bool:
        return self.managed_ids.get(key) == topic_id

    def forget(self, ref: ObjectRef) -> None:
        self.verdicts.pop(ref, None)
        self._own.pop(ref, None)
        self.dirty = True

    # ----- verdicts -----

    def judge(self, store: Store, objects: Iterable[DurableTopicObject]) -> dict[ObjectRef, list[Violation]]:
        """The violations of each object (empty: none): operator-wide rules, its namespace's policies,
        and its namespace's quotas, counted over every object of the namespace, oldest first."""
        verdicts: dict[ObjectRef, list[Violation]] = {}
        quota_namespaces: set[str] = set()
        for obj in objects:
            verdicts[obj.ref] = self._own_violations(obj)
            if any(_has_quota(p) for p in self.governing(obj.ref.namespace)):
                quota_namespaces.add(obj.ref.namespace)
        if quota_namespaces:
            for refused in self._quotas(store, quota_namespaces).values():
                for ref, violation in refused.items():
                    if ref in verdicts and not verdicts[ref]:
                        verdicts[ref] = [violation]
        return verdicts

    def record(self, ref: ObjectRef, violations: list[Violation]) -> None:
        """The verdict a pass concluded for an object, for the policies' counts."""
        if self.verdicts.get(ref) != violations:
            self.verdicts[ref] = violations
            self.dirty = True

    def _own_violations(self, obj: DurableTopicObject) -> list[Violation]:
        cached = self._own.get(obj.ref)
        if cached is not None and cached[0] is obj and cached[1] == self.version:
            return cached[2]
        found = self._judge_alone(obj)
        self._own[obj.ref] = (obj, self.version, found)
        return found

    def _judge_alone(self, obj: DurableTopicObject) -> list[Violation]:
        try:
            spec = obj.spec()
        except ValueError:
            return []  # refused as an invalid spec, before any policy
        request = TopicRequest.of(obj.ref.namespace, obj.ref.name, spec)
        found = internal.check_topic_name(request.topic_name, request.topic_field, self.exceptions)
        return found + check_request(self.governing(obj.ref.namespace), request)

    def _quotas(self, store: Store, namespaces: set[str]) -> dict[str, dict[ObjectRef, Violation]]:
        key = (self.version, store.mark())
        refused: dict[str, dict[ObjectRef, Violation]] = {}
        missing = set()
        for namespace in namespaces:
            cached = self._quota_cache.get(namespace)
            if cached is not None and cached[0] == key:
                refused[namespace] = cached[1]
            else:
                missing.add(namespace)
        for namespace, found in self._count_quotas(store, missing).items():
            self._quota_cache[namespace] = (key, found)
            refused[namespace] = found
        return refused

    def _count_quotas(self, store: Store, namespaces: set[str]) -> dict[str, dict[ObjectRef, Violation]]:
        members: dict[str, list[DurableTopicObject]] = {ns: [] for ns in namespaces}
        for obj in store:
            if obj.ref.namespace in members and not obj.deleting:
                members[obj.ref.namespace].append(obj)
        refused: dict[str, dict[ObjectRef, Violation]] = {}
        for namespace, objs in members.items():
            requests = []
            for obj in sorted(objs, key=lambda o: (o.created, o.ref.name)):
                if self._own_violations(obj):
                    continue
                spec = obj.spec()
                requests.append((obj.ref, TopicRequest.of(namespace, obj.ref.name, spec)))
            refused[namespace] = check_quotas(self.governing(namespace), requests)
        return refused

    def affected(self, store: Store, namespaces: Collection[str] | None) -> list[ObjectRef]:
        """Objects to judge again after a change of policies (None: every namespace) or labels."""
        return [obj.ref for obj in store if namespaces is None or obj.ref.namespace in namespaces]

    # ----- the policies' status -----

    def statuses(self, store: Store, now: str) -> dict[str, tuple[dict[str, Any], Governed, Counter[str]]]:
        """Each policy's status, what it governs, and its violations by rule."""
        per_namespace = Counter(obj.ref.namespace for obj in store)
        found = conflicts(list(self.policies.values()), self.namespaces)
        result = {}
        for name, policy in self.policies.items():
            selected = {ns for ns, labels in self.namespaces.items() if policy.selects(labels)}
            by_rule: Counter[str] = Counter(
                v.rule
                for ref, violations in self.verdicts.items()
                if ref.namespace in selected
                for v in {v.rule: v for v in violations if v.policy == name}.values()
            )
            violating = sum(
                1
                for ref, violations in self.verdicts.items()
                if ref.namespace in selected and any(v.policy == name for v in violations)
            )
            governed = Governed(len(selected), sum(per_namespace[ns] for ns in selected), violating)
            status = policy_status(
                policy, governed, found.get(name, []), self.policy_statuses.get(name, {}), now
            )
            result[name] = (status, governed, by_rule)
        return result

    def operator_wide_violations(self) -> Counter[str]:
        return Counter(v.rule for violations in self.verdicts.values() for v in violations if not v.policy)


def _has_quota(policy: TenantPolicy) -> bool:
    spec = policy.spec
    return spec.max_topics_per_namespace is not None or spec.max_partitions_per_namespace is not None


async def write_policy_statuses(
    tenancy: Tenancy, store: Store, kube: KubePort, metrics: MetricsPort, now: Callable[[], str]
) -> None:
    """While leading: each policy's status and metrics, written when they change."""
    while True:
        if tenancy.dirty:
            tenancy.dirty = False
            computed = tenancy.statuses(store, now())
            metrics.set_policies(
                {
                    name: (governed.namespaces, governed.durable_topics)
                    for name, (_, governed, _) in computed.items()
                },
                {
                    **{
                        (name, rule): n
                        for name, (_, _, by_rule) in computed.items()
                        for rule, n in by_rule.items()
                    },
                    **{("", rule): n for rule, n in tenancy.operator_wide_violations().items()},
                },
            )
            writes = [
                _write(tenancy, kube, name, status)
                for name, (status, _, _) in computed.items()
                if not says_nothing_new(status, tenancy.policy_statuses.get(name, {}))
            ]
            await asyncio.gather(*writes)
        await asyncio.sleep(STATUS_INTERVAL_SECONDS)


async def _write(tenancy: Tenancy, kube: KubePort, name: str, status: dict[str, Any]) -> None:
    try:
        await kube.write_policy_status(name, status, tenancy.policy_statuses.get(name, {}))
    except ApiError as error:
        if error.status != 404:
            log.warning("status of DurabilityPolicy %s not written (%s); tried again", name, error)
            tenancy.dirty = True
        return
    tenancy.policy_statuses[name] = status
