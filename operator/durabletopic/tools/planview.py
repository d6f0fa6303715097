"""What `durabletopic plan` shows: each manifest's topic and what the operator would do to it, or
why it would refuse, computed by the core's planner against what Kafka has now. Changes nothing.

The planner checks the spec and the floors; the rules of DurabilityPolicies, the internal topics and the
namespace quotas come from `validate`'s findings (`validate.POLICY_RULES`). Adoption is not judged: plan
cannot know whether the operator created a topic that exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from durabletopic.core.findings import Finding
from durabletopic.core.model import ClusterInfo, DurableTopicSpec, ObservedTopic, Policy
from durabletopic.core.ownership import Claim, conflict_message, owner_of
from durabletopic.core.plan import Refusal, action_view, plan_topic
from durabletopic.core.reasons import Reason, Severity, Stage
from durabletopic.tools.manifests import Manifest
from durabletopic.tools.schema import admitted_spec
from durabletopic.tools.validate import POLICY_RULES, Report

EXIT_NO_CHANGES, EXIT_REFUSED, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2, 3
REJECTED = "RejectedByAPIServer"


@dataclass(slots=True)
class TopicPlanView:
    """One manifest's outcome, as printed."""

    manifest: Manifest
    topic: str | None = None
    spec: DurableTopicSpec | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, str | None]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.refusals:
            return "refused"
        if any(step["action"] == "create" for step in self.steps):
            return "create"
        return "change" if self.steps else "unchanged"

    def as_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "file": m.file,
            "line": m.line,
            "document": m.document,
            "namespace": m.namespace,
            "name": m.name,
            "topic": self.topic,
            "status": self.status,
            "actions": self.steps,
            "refusals": self.refusals,
        }


def _refusal_of(finding: Finding, reason: str) -> dict[str, str | None]:
    return {
        "reason": reason,
        "field": finding.field,
        "message": finding.message,
        "policy": finding.policy or None,
    }


def _errors(report: Report, manifest: Manifest) -> list[Finding]:
    return [f for f in report.findings_of(manifest) if f.severity is Severity.ERROR]


def build_views(report: Report) -> list[TopicPlanView]:
    """Each manifest with its spec, or refused: rejected by the API server, refused by a DurabilityPolicy
    or as an internal topic, or a second claim on a topic. An object the API server or an admission
    policy refuses never exists: it claims no topic."""
    views: list[TopicPlanView] = []
    claims: dict[str, list[tuple[Claim, TopicPlanView]]] = {}
    for manifest in report.manifests:
        view = TopicPlanView(manifest)
        views.append(view)
        errors = _errors(report, manifest)
        rejected = [f for f in errors if f.stage is Stage.API_SERVER]
        view.refusals += [_refusal_of(f, REJECTED) for f in rejected]
        if rejected:
            continue
        try:
            spec = DurableTopicSpec.model_validate(admitted_spec(manifest.object))
        except ValidationError as error:  # pragma: no cover - the schema check admits only valid specs
            view.refusals.append({"reason": REJECTED, "field": "spec", "message": str(error), "policy": None})
            continue
        view.topic = spec.resolved_topic_name(manifest.name)
        if any(f.rule in POLICY_RULES for f in errors):
            # Refused before Kafka is looked at: by every rule it breaks, the floors included.
            view.refusals += [_refusal_of(f, str(Reason.POLICY_VIOLATION)) for f in errors]
        else:
            view.spec = spec
        if any(f.stage is Stage.ADMISSION_POLICY for f in errors):
            continue
        # Offline, the order of the manifests stands in for the objects' age.
        age = f"{len(views):09d}"
        claim = Claim(manifest.namespace or "", manifest.name, manifest.where, created=age)
        claims.setdefault(view.topic, []).append((claim, view))
    for topic, claimants in claims.items():
        owner = owner_of(c for c, _ in claimants)
        owner_view = next(v for c, v in claimants if c == owner)
        for claim, view in claimants:
            if claim != owner:
                view.refusals.append(
                    {
                        "reason": str(Reason.TOPIC_CONFLICT),
                        "field": "spec.topicName",
                        "message": conflict_message(topic, owner_view.manifest.where),
                        "policy": None,
                    }
                )
                view.spec = None
    return views


def apply_plans(
    views: Sequence[TopicPlanView],
    observed: Mapping[str, ObservedTopic | None],
    cluster: ClusterInfo,
    policy: Policy,
) -> None:
    for view in views:
        if view.spec is None or view.topic is None:
            continue
        current = observed.get(view.topic)
        plan = plan_topic(view.spec, view.topic, current, cluster, policy, spec_already_applied=False)
        view.refusals += [_refusal(r) for r in plan.refusals]
        view.steps += [action_view(action, current) for action in plan.actions]


def _refusal(refusal: Refusal) -> dict[str, str | None]:
    return {
        "reason": str(refusal.reason),
        "field": refusal.field or "",
        "message": refusal.message,
        "policy": None,
    }


def exit_code(views: Sequence[TopicPlanView]) -> int:
    if any(v.refusals for v in views):
        return EXIT_REFUSED
    return EXIT_CHANGES if any(v.steps for v in views) else EXIT_NO_CHANGES


async def read_kafka(
    bootstrap_servers: str, client_config: Mapping[str, str], request_timeout_s: float, names: Sequence[str]
) -> tuple[dict[str, ObservedTopic | None], ClusterInfo]:
    """The cluster (once) and every topic (one batched describe), read-only."""
    from durabletopic.adapters.kafka.admin import KafkaAdmin  # confluent-kafka loads only when needed

    kafka = KafkaAdmin(bootstrap_servers, client_config, request_timeout_s=request_timeout_s)
    try:
        cluster = await kafka.describe_cluster()
        observed = await kafka.describe_topics(names) if names else {}
    finally:
        kafka.close()
    return observed, cluster
