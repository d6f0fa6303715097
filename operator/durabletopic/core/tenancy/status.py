"""What a DurabilityPolicy's status says: the namespaces and DurableTopics it governs, how many break
it now, and whether its prefixes overlap another policy's. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durabletopic.core.conditions import Condition, merge_conditions
from durabletopic.core.reasons import PolicyConditionType, Reason
from durabletopic.core.tenancy.model import TenantPolicy


@dataclass(frozen=True, slots=True)
class Governed:
    """What one policy governs now."""

    namespaces: int = 0
    durable_topics: int = 0
    violations: int = 0


def _overlap(left: Iterable[str], right: Iterable[str]) -> bool:
    right = list(right)
    return any(a.startswith(b) or b.startswith(a) for a in left for b in right)


def conflicts(
    policies: Sequence[TenantPolicy], namespaces: Mapping[str, Mapping[str, str]]
) -> dict[str, list[str]]:
    """For each policy, the policies whose topic name prefixes overlap its own for namespaces the two
    do not share: a name one group may use, the other may use too. Policies without prefixes (any
    name) are left out: they give no name to anyone."""
    selected = {p.name: {ns for ns, labels in namespaces.items() if p.selects(labels)} for p in policies}
    prefixed = [p for p in policies if p.spec.topic_name_prefixes and p.problem is None]
    found: dict[str, list[str]] = {p.name: [] for p in policies}
    for i, a in enumerate(prefixed):
        for b in prefixed[i + 1 :]:
            only_a = selected[a.name] - selected[b.name]
            only_b = selected[b.name] - selected[a.name]
            prefixes_a = {p for ns in only_a for p in a.prefixes_for(ns)}
            prefixes_b = {p for ns in only_b for p in b.prefixes_for(ns)}
            if _overlap(prefixes_a, prefixes_b):
                found[a.name].append(b.name)
                found[b.name].append(a.name)
    return found


def policy_status(
    policy: TenantPolicy,
    governed: Governed,
    conflicting_with: Sequence[str],
    previous: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    if policy.problem is not None:
        ready = Condition(
            PolicyConditionType.READY,
            False,
            Reason.INVALID_POLICY,
            f"The policy cannot be read ({policy.problem}): it selects no namespace until it is fixed.",
        )
    else:
        ready = Condition(
            PolicyConditionType.READY,
            True,
            Reason.ENFORCED,
            f"Enforced on {governed.namespaces} namespace(s) and {governed.durable_topics} DurableTopic(s); "
            f"{governed.violations} break it now (Stalled, their topics untouched).",
        )
    if conflicting_with:
        conflicting = Condition(
            PolicyConditionType.CONFLICTING,
            True,
            Reason.OVERLAPPING_PREFIXES,
            f"Its topic name prefixes overlap those DurabilityPolicy {', '.join(conflicting_with)} gives to "
            "namespaces this policy does not select: teams of both groups may claim the same topic names "
            "(the oldest DurableTopic wins). Give each group prefixes of its own.",
        )
    else:
        conflicting = Condition(
            PolicyConditionType.CONFLICTING, False, Reason.NO_OVERLAP, "No other policy's prefixes overlap."
        )
    return {
        "observedGeneration": policy.generation,
        "conditions": merge_conditions(
            [ready, conflicting], previous.get("conditions") or [], policy.generation, now
        ),
        "namespaces": governed.namespaces,
        "durableTopics": governed.durable_topics,
        "violations": governed.violations,
        "conflictingPolicies": sorted(conflicting_with),
    }
