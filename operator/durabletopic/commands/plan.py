"""`durabletopic plan`: what the operator would do to Kafka for these manifests, changing nothing."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from durabletopic.commands.common import (
    add_floor_flags,
    add_kafka_flags,
    add_tenancy_flags,
    kafka_target_from,
    policy_from,
    quiet_librdkafka,
    tenancy_from,
)
from durabletopic.core import rules
from durabletopic.core.model import ClusterInfo, ObservedTopic
from durabletopic.tools import validate
from durabletopic.tools.clusterref import TargetError
from durabletopic.tools.planview import (
    EXIT_ERROR,
    TopicPlanView,
    apply_plans,
    build_views,
    exit_code,
    read_kafka,
)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "plan",
        help="show what the operator would do to Kafka for these manifests, changing nothing",
        description="Read the topics the DurableTopic manifests in PATH... declare from Kafka (one batched "
        "request) and print what the operator would do: create, alter configs, add partitions, move replicas, "
        "or refuse and why. Nothing is changed. The internal topics and, with --policy, the rules of the "
        "DurabilityPolicies that select each object's namespace and the namespace quotas (counted in the order "
        "of the files; the cluster counts its objects oldest first) are refusals too, made before Kafka is read. Adoption is not judged: plan "
        "cannot know whether the operator created a topic that exists in Kafka, so a policy's adoption rule "
        "is left to the operator. Exit 0 no changes, 3 changes pending, 1 refusals (invalid manifests "
        "included), 2 errors.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML file, directory, or - for stdin")
    add_kafka_flags(parser)
    parser.add_argument("--output", choices=["table", "json"], default="table")
    add_floor_flags(parser)
    add_tenancy_flags(parser)
    parser.set_defaults(handler=run)


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


def run(args: argparse.Namespace) -> int:
    from durabletopic.loop.ports import KafkaAdminError

    policy = policy_from(args)
    read = tenancy_from(args)
    report = validate.validate(args.paths, policy, tenancy=read.tenancy)
    report.errors[:0] = read.errors
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
            target = kafka_target_from(args)
        except (TargetError, OSError) as error:
            print(f"durabletopic plan: {error}", file=sys.stderr)
            return EXIT_ERROR
        try:
            observed, cluster = asyncio.run(
                asyncio.wait_for(
                    read_kafka(target.bootstrap_servers, target.client_config, args.timeout, names),
                    args.timeout * 3 + 5,
                )
            )
        except (KafkaAdminError, TimeoutError, OSError, ValueError) as error:
            reason = str(error) or type(error).__name__
            print(f"durabletopic plan: cannot read Kafka at {target}: {reason}", file=sys.stderr)
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
