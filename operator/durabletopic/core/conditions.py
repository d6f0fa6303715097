"""kstatus conditions: which ones a plan, an error or a drift gives, and how they are written
without losing their transition times. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durabletopic.core.plan import Action, CreateTopic, Reassign, TopicPlan, action_view
from durabletopic.core.reasons import ConditionType, Reason

# A condition's message is cut to this many characters, so that no object can make its own status
# larger than the API server stores (Kubernetes allows 32,768 per condition message).
MAX_MESSAGE = 2048


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def truncated(condition: Condition) -> Condition:
    if len(condition.message) <= MAX_MESSAGE:
        return condition
    return Condition(
        condition.type, condition.status, condition.reason, condition.message[: MAX_MESSAGE - 1] + "…"
    )


def summary_conditions(
    *, ready: tuple[bool, str, str], reconciling: tuple[str, str] | None, stalled: tuple[str, str] | None
) -> list[Condition]:
    ready_ok, ready_reason, ready_message = ready
    conditions = [Condition(ConditionType.READY, ready_ok, ready_reason, ready_message)]
    if reconciling:
        conditions.append(Condition(ConditionType.RECONCILING, True, *reconciling))
    else:
        conditions.append(Condition(ConditionType.RECONCILING, False, ready_reason, "No work is under way."))
    if stalled:
        conditions.append(Condition(ConditionType.STALLED, True, *stalled))
    else:
        conditions.append(
            Condition(ConditionType.STALLED, False, ready_reason, "Nothing blocks reconciliation.")
        )
    return conditions


def conditions_for_error(reason: str, message: str, *, retrying: bool) -> list[Condition]:
    """Not Ready: Reconciling while the operator retries by itself, Stalled while it needs a person."""
    if retrying:
        return summary_conditions(ready=(False, reason, message), reconciling=(reason, message), stalled=None)
    return summary_conditions(ready=(False, reason, message), reconciling=None, stalled=(reason, message))


def merge_conditions(
    conditions: Sequence[Condition], previous: Sequence[Mapping[str, Any]], generation: int, now: str
) -> list[dict[str, Any]]:
    """Conditions as written to status: lastTransitionTime kept while a condition's status holds."""
    before = {c.get("type"): c for c in previous if isinstance(c, Mapping)}
    merged = []
    for condition in conditions:
        status = "True" if condition.status else "False"
        old = before.get(condition.type)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        merged.append(
            {
                "type": str(condition.type),
                "status": status,
                "reason": str(condition.reason),
                "message": condition.message,
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return merged


def kept_condition(conditions: Sequence[Mapping[str, Any]], kind: str) -> Condition | None:
    """The condition `kind` as the object's status has it now, to be written again unchanged."""
    for condition in conditions:
        if condition.get("type") == kind:
            return Condition(
                kind,
                condition.get("status") == "True",
                condition.get("reason", ""),
                condition.get("message", ""),
            )
    return None


def condition_reason(conditions: Sequence[Mapping[str, Any]], kind: str) -> str | None:
    """The reason of the condition `kind` when it is True."""
    for condition in conditions:
        if condition.get("type") == kind and condition.get("status") == "True":
            return str(condition.get("reason"))
    return None


def conditions_for_plan(plan: TopicPlan, topic_name: str) -> list[Condition]:
    """Conditions for the state the topic is in after the operator has acted on it.

    `plan` is planned against the topic as re-read after the actions: pending actions mean the work
    is still under way.
    """
    if plan.refusals:
        first = plan.refusals[0]
        message = " ".join(r.message.rstrip(".") + "." for r in plan.refusals)
        return summary_conditions(
            ready=(False, first.reason, message), reconciling=None, stalled=(first.reason, message)
        )
    if plan.moving:
        message = f"Kafka is moving replicas of topic {topic_name}; waiting for the reassignment to finish."
        reason = Reason.REASSIGNING
        return summary_conditions(ready=(False, reason, message), reconciling=(reason, message), stalled=None)
    if plan.actions:
        if any(isinstance(a, CreateTopic) for a in plan.actions):
            reason = Reason.CREATING
        elif any(isinstance(a, Reassign) for a in plan.actions):
            reason = Reason.REASSIGNING
        else:
            reason = Reason.UPDATING
        message = f"Kafka topic {topic_name}: " + "; ".join(describe_action(a) for a in plan.actions) + "."
        return summary_conditions(ready=(False, reason, message), reconciling=(reason, message), stalled=None)
    if plan.waiting:
        message = f"Kafka topic {topic_name}: {plan.waiting}."
        reason = Reason.WAITING_FOR_REPLICAS
        return summary_conditions(ready=(False, reason, message), reconciling=(reason, message), stalled=None)
    if plan.open_differences:
        keys = ", ".join(d.key for d in plan.open_differences)
        message = f"Kafka topic {topic_name} differs from the spec ({keys}) and driftPolicy is Report: nothing is changed."
        return summary_conditions(ready=(False, Reason.DRIFTED, message), reconciling=None, stalled=None)
    message = f"Kafka topic {topic_name} matches the spec and the durability policy."
    if plan.kept:
        kept = "; ".join(f"{d.key} is {d.actual} where the spec asks for {d.expected}" for d in plan.kept)
        message += f" It is more durable than asked ({kept}): the operator leaves that as it is."
    return summary_conditions(ready=(True, Reason.RECONCILED, message), reconciling=None, stalled=None)


def describe_action(action: Action) -> str:
    """The status message's words for an action under way."""
    view = action_view(action, None)
    kind = view["action"]
    if kind == "create":
        return f"creating with {view['partitions']} partitions and replication factor {view['replicationFactor']}"
    if kind == "add-partitions":
        return f"adding partitions up to {view['to']}"
    if kind == "reassign":
        return f"moving {len(view['assignment'])} partitions to replication factor {view['to']}"
    changes = [
        f"{key}={change['to']}" if change["to"] is not None else f"removing {key}"
        for key, change in view["configs"].items()
    ]
    return "setting " + ", ".join(changes)


def drifted_condition(entries: Sequence[Mapping[str, str]], *, reverted: bool = False) -> Condition:
    if entries:
        keys = ", ".join(f"{d['key']} ({d['severity']})" for d in entries)
        return Condition(
            ConditionType.DRIFTED,
            True,
            Reason.DRIFT_DETECTED,
            f"Kafka differs from the spec in {keys}: reported, not changed.",
        )
    if reverted:
        return Condition(
            ConditionType.DRIFTED, False, Reason.DRIFT_REVERTED, "Drift was detected and put right."
        )
    return Condition(ConditionType.DRIFTED, False, Reason.DRIFT_RESOLVED, "Kafka matches the spec again.")


def says_nothing_new(
    status: Mapping[str, Any], previous: Mapping[str, Any], ignore: Sequence[str] = ()
) -> bool:
    """A resource's new status says nothing the stored one does not (transition times and `ignore` aside)."""

    def essence(s: Mapping[str, Any]) -> Any:
        conditions = [
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in s.get("conditions") or []
        ]
        rest = {k: v for k, v in s.items() if k != "conditions" and k not in ignore}
        return conditions, rest

    return bool(essence(status) == essence(previous))
