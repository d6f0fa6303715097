"""`durabletopic plan`: what the operator would do to Kafka for these manifests, changing nothing."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from durabletopic import rules, validate
from durabletopic.commands.common import (
    add_floor_flags,
    add_kafka_flags,
    client_config_from,
    policy_from,
    quiet_librdkafka,
)
from durabletopic.model import ClusterInfo, DurableTopicSpec, ObservedTopic, Policy
from durabletopic.plan import (
    AddPartitions,
    AlterConfigs,
    CreateTopic,
    Reason,
    Reassign,
    Refusal,
    plan_topic,
)

EXIT_NO_CHANGES, EXIT_REFUSED, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2, 3
REJECTED = "RejectedByAPIServer"


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "plan",
        help="show what the operator would do to Kafka for these manifests, changing nothing",
        description="Read the topics the DurableTopic manifests in PATH... declare from Kafka (one batched "
        "request) and print what the operator would do: create, alter configs, add partitions, move replicas, "
        "or refuse and why. Nothing is changed. Exit 0 no changes, 3 changes pending, 1 refusals "
        "(invalid manifests included), 2 errors.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML file, directory, or - for stdin")
    add_kafka_flags(parser)
    parser.add_argument("--output", choices=["table", "json"], default="table")
    add_floor_flags(parser)
    parser.set_defaults(handler=run)


@dataclass(slots=True)
class TopicPlanView:
    """One manifest's outcome, as printed."""

    manifest: validate.Manifest
    topic: str | None = None
    spec: DurableTopicSpec | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, str]] = field(default_factory=list)

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


def build_views(report: validate.Report) -> list[TopicPlanView]:
    """Each manifest with its spec, or refused: rejected by the API server, or a second claim on a topic."""
    views: list[TopicPlanView] = []
    claimed: dict[str, TopicPlanView] = {}
    for manifest in report.manifests:
        view = TopicPlanView(manifest)
        views.append(view)
        rejected = [
            f
            for f in report.findings_of(manifest)
            if f.stage is validate.Stage.API_SERVER and f.severity is validate.Severity.ERROR
        ]
        for finding in rejected:
            view.refusals.append({"reason": REJECTED, "field": finding.field, "message": finding.message})
        if rejected:
            continue
        try:
            view.spec = DurableTopicSpec.model_validate(manifest.admitted_spec())
        except ValidationError as error:  # pragma: no cover - the schema check admits only valid specs
            view.refusals.append({"reason": REJECTED, "field": "spec", "message": str(error)})
            continue
        view.topic = view.spec.resolved_topic_name(manifest.name)
        first = claimed.setdefault(view.topic, view)
        if first is not view:
            view.refusals.append(
                {
                    "reason": str(Reason.TOPIC_CONFLICT),
                    "field": "spec.topicName",
                    "message": f"topic {view.topic} is also declared by {first.manifest.where} "
                    f"({first.manifest.name}): the operator gives it to the oldest object only",
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
        view.steps += [_step(action, current) for action in plan.actions]


def _refusal(refusal: Refusal) -> dict[str, str]:
    return {"reason": str(refusal.reason), "field": refusal.field or "", "message": refusal.message}


def _current_value(key: str, current: ObservedTopic | None) -> str:
    if current is None:
        return "unset"
    if key in current.overrides:
        return current.overrides[key]
    if key in current.effective:
        return f"{current.effective[key]} (broker default)"
    return "unset"


def _step(action: Any, current: ObservedTopic | None) -> dict[str, Any]:
    if isinstance(action, CreateTopic):
        return {
            "action": "create",
            "partitions": action.partitions,
            "replicationFactor": action.replication_factor,
            "configs": dict(sorted(action.configs.items())),
        }
    if isinstance(action, AlterConfigs):
        return {
            "action": "alter",
            "configs": {
                key: {"from": _current_value(key, current), "to": value}
                for key, value in sorted(action.configs.items())
            },
        }
    if isinstance(action, AddPartitions):
        return {
            "action": "add-partitions",
            "from": current.partition_count if current else 0,
            "to": action.total,
        }
    if isinstance(action, Reassign):
        return {
            "action": "reassign",
            "from": current.replication_factor if current else 0,
            "to": action.target_replication_factor,
            "assignment": {str(p): list(replicas) for p, replicas in sorted(action.assignment.items())},
        }
    raise TypeError(f"unknown action {action!r}")  # pragma: no cover


def render_table(views: Sequence[TopicPlanView]) -> str:
    out = io.StringIO()
    for view in views:
        m = view.manifest
        topic = f" (topic {view.topic})" if view.topic else ""
        print(f"{m.where} {m.name or '<no name>'}{topic}", file=out)
        for step in view.steps:
            print(f"  {_describe(step)}", file=out)
        for refusal in view.refusals:
            print(f"  refuse {refusal['reason']}: {refusal['message']}", file=out)
        if not view.steps and not view.refusals:
            print("  no changes", file=out)
    counts = {status: sum(v.status == status for v in views) for status in ("create", "change", "refused")}
    unchanged = len(views) - sum(counts.values())
    print(
        f"plan: {counts['create']} to create, {counts['change']} to change, {counts['refused']} refused, "
        f"{unchanged} unchanged",
        file=out,
    )
    return out.getvalue().rstrip("\n")


def _describe(step: Mapping[str, Any]) -> str:
    action = step["action"]
    if action == "create":
        configs = ", ".join(f"{k}={v}" for k, v in step["configs"].items())
        return (
            f"create {step['partitions']} partitions, replication factor {step['replicationFactor']}, "
            f"configs {configs}"
        )
    if action == "alter":
        return "; ".join(
            f"alter {key} {change['from']} -> {change['to'] if change['to'] is not None else '(override removed)'}"
            for key, change in step["configs"].items()
        )
    if action == "add-partitions":
        return f"add partitions {step['from']} -> {step['to']}"
    return f"reassign to RF {step['to']} (replication factor {step['from']} -> {step['to']}, partitions moved one by one)"


def exit_code(views: Sequence[TopicPlanView]) -> int:
    if any(v.refusals for v in views):
        return EXIT_REFUSED
    return EXIT_CHANGES if any(v.steps for v in views) else EXIT_NO_CHANGES


async def read_kafka(
    args: argparse.Namespace, names: Sequence[str]
) -> tuple[dict[str, ObservedTopic | None], ClusterInfo]:
    """The cluster (once) and every topic (one batched describe), read-only."""
    from durabletopic.kafka.admin import KafkaAdmin

    kafka = KafkaAdmin(args.bootstrap_servers, client_config_from(args), request_timeout_s=args.timeout)
    try:
        cluster = await kafka.describe_cluster()
        observed = await kafka.describe_topics(names) if names else {}
    finally:
        kafka.close()
    return observed, cluster


def run(args: argparse.Namespace) -> int:
    from durabletopic.kafka.admin import KafkaAdminError

    policy = policy_from(args)
    report = validate.validate(args.paths, policy)
    if report.errors:
        for error in report.errors:
            print(f"durabletopic plan: {error}", file=sys.stderr)
        return EXIT_ERROR
    views = build_views(report)
    names = sorted(
        {
            v.topic
            for v in views
            if v.spec is not None and v.topic and rules.topic_name_problem(v.topic) is None
        }
    )
    observed: dict[str, ObservedTopic | None] = {}
    cluster = ClusterInfo(brokers=())
    if names:
        quiet_librdkafka()
        try:
            observed, cluster = asyncio.run(asyncio.wait_for(read_kafka(args, names), args.timeout * 3 + 5))
        except (KafkaAdminError, TimeoutError, OSError, ValueError) as error:
            reason = str(error) or type(error).__name__
            print(
                f"durabletopic plan: cannot read Kafka at {args.bootstrap_servers}: {reason}", file=sys.stderr
            )
            return EXIT_ERROR
    apply_plans(views, observed, cluster, policy)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "changes": any(v.steps for v in views),
                    "refused": any(v.refusals for v in views),
                    "topics": [v.as_dict() for v in views],
                },
                indent=2,
            )
        )
    else:
        print(render_table(views))
    return exit_code(views)
