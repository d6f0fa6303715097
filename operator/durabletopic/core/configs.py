"""Kafka config keys the operator reasons about, and the one parser of each kind of value."""

from __future__ import annotations

MIN_INSYNC_REPLICAS = "min.insync.replicas"
UNCLEAN_LEADER_ELECTION = "unclean.leader.election.enable"
DURABILITY_KEYS = frozenset({MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION})

# Topic configs the operator sets while it moves replicas, and removes afterwards.
THROTTLE_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
THROTTLE_ALL_REPLICAS = "*"
# Broker configs that carry the throttle's rate while replicas move.
BROKER_THROTTLE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")

# Kafka's own default when neither the topic nor the broker sets min.insync.replicas.
KAFKA_DEFAULT_MIN_INSYNC_REPLICAS = 1


def parse_int(value: str | None) -> int | None:
    """An integer config value, or None when it is unset or not an integer."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def is_enabled(value: str | None) -> bool:
    """A boolean config value: only "true" (any case) is on; unset is off."""
    return (value or "").strip().lower() == "true"


def same_value(actual: str | None, expected: str) -> bool:
    """Kafka echoes values back normalised: "TRUE" and "true" are the same setting."""
    if actual is None:
        return False
    return actual == expected or actual.strip().lower() == expected.strip().lower()
