"""The floor of the test bed: what N DurableTopics cost with no operator in between.

    python -m bench.floor --topics N [--json PATH]

Three phases, each straight to its server: create the N objects (16 threads), create the N topics
in batched CreateTopics requests (1,000 topics each, all sent at once; RF 3, min.insync.replicas=2,
unclean.leader.election.enable=false), and write N realistic statuses (merge patches of the status
subresource, 16 threads). The sum is the least any operator could take on this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import bedcpu
from bench.cluster import Bench, cleanup, object_names, testbed_up
from bench.results import add_common_args, machine_info, new_run_id, result_header, say, write_json


def realistic_status(name: str) -> dict[str, Any]:
    """A status like the operator's for a Ready topic: observed facts, health and four conditions."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def condition(kind: str, status: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": "AllInSync" if kind == "ReplicasHealthy" else "Reconciled",
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": 1,
        }

    return {
        "observedGeneration": 1,
        "topicName": name,
        "topicId": "q2Xb0m3vTcKj9yR1uW4pAA",
        "partitions": 1,
        "replicationFactor": 3,
        "minInSyncReplicas": 2,
        "unmanagedConfigs": [],
        "health": {"partitions": 1, "underReplicated": 0, "underMinIsr": 0, "atMinIsr": 0, "offline": 0},
        "conditions": [
            condition("Ready", "True", f"Kafka topic {name} matches the spec and the durability policy."),
            condition("Reconciling", "False", "No work is under way."),
            condition("Stalled", "False", "Nothing blocks reconciliation."),
            condition("ReplicasHealthy", "True", f"Every partition of {name} has all its replicas in sync."),
        ],
        "lastReconcileTime": now,
    }


def run_floor(bench: Bench, n: int, run_id: str, *, keep: bool = False) -> dict[str, Any]:
    """Measures the three phases on their own names (`bf-RUN-*`, namespace `bench-floor-RUN`)."""
    namespace = f"bench-floor-{run_id}"
    names = object_names(f"bf-{run_id}", n)
    bench.create_namespace(namespace)
    try:
        say(f"floor: creating {n} objects from {bench.threads} threads")
        cpu_before = bedcpu.sample(bench.bed.state_dir)
        began = time.monotonic()
        bench.create_objects(namespace, names)
        objects = time.monotonic() - began
        say(f"floor: creating {n} topics in batched CreateTopics")
        began = time.monotonic()
        requests = bench.create_topics(names)
        topics = time.monotonic() - began
        say(f"floor: {n} status patches from {bench.threads} threads")
        began = time.monotonic()
        bench.patch_statuses(namespace, names, realistic_status)
        patches = time.monotonic() - began
        cpu = bedcpu.window(cpu_before, bedcpu.sample(bench.bed.state_dir), objects + topics + patches)
    finally:
        if keep:
            say(f"kept namespace {namespace} and topics bf-{run_id}-*")
        else:
            cleanup(bench, namespace, names)
    return {
        "n": n,
        "threads": bench.threads,
        "create_objects_seconds": round(objects, 3),
        "create_topics_seconds": round(topics, 3),
        "create_topics_requests": requests,
        "status_patches_seconds": round(patches, 3),
        "total_seconds": round(objects + topics + patches, 3),
        "cpu": cpu,
    }


def print_floor(floor: dict[str, Any]) -> None:
    print(f"floor, N = {floor['n']} (no operator; {floor['threads']} client threads):")
    print(f"  create {floor['n']} objects:        {floor['create_objects_seconds']:8.2f} s")
    print(
        f"  CreateTopics of {floor['n']} topics: {floor['create_topics_seconds']:8.2f} s "
        f"({floor['create_topics_requests']} request(s))"
    )
    print(f"  {floor['n']} status patches:         {floor['status_patches_seconds']:8.2f} s")
    print(f"  floor (sum):                {floor['total_seconds']:8.2f} s")
    if "cpu" in floor:
        print(f"  {bedcpu.summary(floor['cpu'])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    args = parser.parse_args(argv)
    run_id = new_run_id()
    bed = testbed_up()
    bench = Bench(bed, args.threads)
    result: dict[str, Any] = result_header("floor", run_id, argv)
    result["floor"] = run_floor(bench, args.topics, run_id, keep=args.keep)
    result["machine"]["loadavg_end"] = machine_info()["loadavg"]
    print_floor(result["floor"])
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
