"""Flags that several subcommands share."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from durabletopic.adapters.kafka.clientconfig import LIBRDKAFKA_LOGGER, read_client_properties
from durabletopic.core.model import DEFAULT_MIN_INSYNC_REPLICAS, DEFAULT_REPLICATION_FACTOR, Policy


def add_kafka_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--bootstrap-servers", required=required, help="Kafka bootstrap servers, host:port[,...]"
    )
    parser.add_argument(
        "--kafka-config-file", type=Path, default=None, help="extra librdkafka properties, key=value lines"
    )
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


def client_config_from(args: argparse.Namespace) -> dict[str, str]:
    return read_client_properties(args.kafka_config_file) if args.kafka_config_file else {}


def quiet_librdkafka() -> None:
    """A command's output is its own: librdkafka's connection chatter stays out of it."""
    librdkafka = logging.getLogger(LIBRDKAFKA_LOGGER)
    librdkafka.addHandler(logging.NullHandler())
    librdkafka.propagate = False
