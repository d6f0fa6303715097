"""Flags that several subcommands share."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from durabletopic.adapters.kafka.clientconfig import LIBRDKAFKA_LOGGER, read_client_properties
from durabletopic.core.model import DEFAULT_MIN_INSYNC_REPLICAS, DEFAULT_REPLICATION_FACTOR, Policy
from durabletopic.tools import clusterref, tenancy
from durabletopic.tools.clusterref import KafkaTarget


def add_kafka_target_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Where Kafka is: --bootstrap-servers, or --cluster, a KafkaCluster read through a kubeconfig."""
    target = parser.add_mutually_exclusive_group(required=required)
    target.add_argument("--bootstrap-servers", help="Kafka bootstrap servers, host:port[,...]")
    target.add_argument(
        "--cluster",
        metavar="NAME",
        help="the KafkaCluster NAME: its bootstrap servers and credentials (the Secrets and ConfigMaps it "
        "names) are read through --kubeconfig, and Kafka must report its clusterId (spec, else status)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        default=None,
        help="the kubeconfig of --cluster (default: $KUBECONFIG, else ~/.kube/config, as kubectl)",
    )
    parser.add_argument(
        "--kafka-config-file",
        type=Path,
        default=None,
        help="extra librdkafka properties, key=value lines (with --cluster, the KafkaCluster's win)",
    )


def add_kafka_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    add_kafka_target_flags(parser, required=required)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for Kafka (default 10)")


def add_floor_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-replication-factor",
        type=int,
        default=DEFAULT_REPLICATION_FACTOR,
        help=f"replication factor floor (default {DEFAULT_REPLICATION_FACTOR})",
    )
    parser.add_argument(
        "--min-insync-replicas",
        type=int,
        default=DEFAULT_MIN_INSYNC_REPLICAS,
        help=f"min.insync.replicas floor (default {DEFAULT_MIN_INSYNC_REPLICAS})",
    )


def policy_from(args: argparse.Namespace) -> Policy:
    return Policy(
        min_replication_factor=args.min_replication_factor, min_insync_replicas=args.min_insync_replicas
    )


def _namespace_label(text: str) -> tuple[str, str, str]:
    try:
        return tenancy.parse_namespace_label(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_tenancy_flags(parser: argparse.ArgumentParser) -> None:
    """The DurabilityPolicies, the namespaces' labels and the internal-topic exceptions to check with."""
    group = parser.add_argument_group(
        "tenancy",
        "the rules of DurabilityPolicy objects, as the admission policy and the operator enforce them",
    )
    group.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="PATH",
        help="YAML file or directory of DurabilityPolicy objects (other kinds are ignored; "
        "`kubectl get dtp -o yaml` output works); repeatable",
    )
    group.add_argument(
        "--namespace-labels",
        action="append",
        default=[],
        metavar="FILE",
        help="the labels of the namespaces the policies select by: Namespace objects "
        "(`kubectl get namespaces -o yaml`), or a mapping NAMESPACE: {KEY: VALUE}; repeatable",
    )
    group.add_argument(
        "--namespace-label",
        action="append",
        default=[],
        type=_namespace_label,
        metavar="NS:KEY=VALUE",
        help="one label of one namespace, on top of --namespace-labels; repeatable",
    )
    group.add_argument(
        "--namespace",
        default=tenancy.DEFAULT_NAMESPACE,
        metavar="NS",
        help=f"the namespace of manifests without metadata.namespace, as kubectl's -n "
        f"(default: {tenancy.DEFAULT_NAMESPACE})",
    )
    group.add_argument(
        "--internal-topic-exception",
        action="append",
        default=[],
        metavar="NAME",
        help="an internal or system topic (a name starting with __, _schemas, connect-configs, connect-offsets, "
        "connect-status) DurableTopics may manage all the same, "
        "as the operator's internalTopicExceptions setting; repeatable",
    )


def tenancy_from(args: argparse.Namespace) -> tenancy.TenancyInput:
    return tenancy.load(
        args.policy,
        args.namespace_labels,
        args.namespace_label,
        args.internal_topic_exception,
        args.namespace,
    )


def client_config_from(args: argparse.Namespace) -> dict[str, str]:
    return read_client_properties(args.kafka_config_file) if args.kafka_config_file else {}


def kafka_target_from(args: argparse.Namespace, timeout_s: float | None = None) -> KafkaTarget:
    """The Kafka of the kafka target flags, with its client properties; with --cluster, checked to be the
    cluster the KafkaCluster must be. Raises TargetError, or OSError for an unreadable properties file."""
    return clusterref.resolve(
        args.bootstrap_servers,
        args.cluster,
        kubeconfig=args.kubeconfig,
        base_config=client_config_from(args),
        timeout_s=args.timeout if timeout_s is None else timeout_s,
    )


def quiet_librdkafka() -> None:
    """A command's output is its own: librdkafka's connection chatter stays out of it."""
    librdkafka = logging.getLogger(LIBRDKAFKA_LOGGER)
    librdkafka.addHandler(logging.NullHandler())
    librdkafka.propagate = False
