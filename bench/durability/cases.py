"""The lab's cases: one failure each, run with the weak setting and with the safe one.

Every run has a fresh topic with one partition (so the choreography knows its leader and followers). A
weak topic is created directly with the weak configs; a safe topic is a DurableTopic the operator
created (replication factor 3, min.insync.replicas 2, unclean leader election off). A run is: steps
before the probe, then ``durabletopic probe`` with the run's clients, whose fault command runs half way
through the writes and whose recover command runs at three quarters, once the fault is over.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

Setting = Literal["weak", "safe"]

SAFE_SPEC: Final[Mapping[str, object]] = {"partitions": 1, "replicationFactor": 3, "minInSyncReplicas": 2}


@dataclass(frozen=True)
class Placement:
    """Partition 0 of a topic: its leader and its followers, in replica order."""

    leader: int
    followers: tuple[int, ...]


@dataclass(frozen=True)
class WeakTopic:
    replicas: tuple[int, ...]
    configs: Mapping[str, str]


Steps = Callable[[str, Placement], list[str]]


def _none(topic: str, placement: Placement) -> list[str]:
    return []


@dataclass(frozen=True)
class Run:
    case: int
    setting: Setting
    what: str  # the setting in words, for the table
    topic: WeakTopic | None  # None: a DurableTopic with SAFE_SPEC
    probe_args: Sequence[str]
    before: Steps = _none
    fault: Steps = _none
    recover: Steps = _none


@dataclass(frozen=True)
class Case:
    number: int
    title: str
    failure: str
    prevents: str  # what the safe setting does, for the table
    loss: str  # the count (a field of report.RunResult) that shows this case's loss


def _ids(brokers: Sequence[int]) -> str:
    return ",".join(str(b) for b in brokers)


def steps_command(steps: Sequence[str]) -> str:
    """The shell command that runs ``steps`` (``bench.durability.faults``) from the repository root."""
    return shlex.join([sys.executable, "-m", "bench.durability.faults", *steps])


CASES: Final[Mapping[int, Case]] = {
    1: Case(
        1,
        "Unclean leader election",
        "a follower stops; the leader takes writes alone; the leader dies; the stale follower comes back "
        "first; the old leader returns",
        "acks=all is refused while the ISR is too small, and no replica that missed writes is elected",
        "lost",
    ),
    2: Case(
        2,
        "Fire-and-forget producer",
        "the partition's leader is killed while the producer writes, and restarted",
        "acks=all, idempotence, retries with backoff and a checked callback re-send what failed",
        "never_arrived",
    ),
    3: Case(
        3,
        "Commit before processing",
        "the consumer is SIGKILLed in the middle of a batch; another one of the group takes over",
        "auto commit off, commit after processing: the batch is handed over again and absorbed by "
        "idempotent processing",
        "not_processed",
    ),
    4: Case(
        4,
        "Two of three brokers down",
        "both followers die; the leader takes writes alone, then dies; the followers come back first; "
        "the old leader returns",
        "min.insync.replicas=2 refuses writes that only one broker holds; no stale replica is elected",
        "lost",
    ),
}


# ----------------------------------------------------------------------------- case 1


def _unclean_weak_before(topic: str, p: Placement) -> list[str]:
    stale = p.followers[0]
    return [f"kill={stale}", f"isr={topic}={p.leader}"]


def _unclean_weak_fault(topic: str, p: Placement) -> list[str]:
    stale = p.followers[0]
    # The stale follower must be elected before the old leader returns, or the old leader is
    # elected cleanly and nothing is lost.
    return [f"kill={p.leader}", f"start={stale}", f"leader={topic}={stale}"]


def _unclean_safe_before(topic: str, p: Placement) -> list[str]:
    stale, in_sync = p.followers
    return [f"kill={stale}", f"isr={topic}={_ids([p.leader, in_sync])}"]


def _unclean_safe_fault(topic: str, p: Placement) -> list[str]:
    stale, in_sync = p.followers
    return [f"kill={p.leader}", f"leader={topic}={in_sync}", f"start={stale}", "sleep=3"]


def _old_leader_returns(topic: str, p: Placement) -> list[str]:
    return [f"start={p.leader}", f"isr={topic}={_ids([p.leader, *p.followers])}"]


# ----------------------------------------------------------------------------- case 2


def _leader_killed(topic: str, p: Placement) -> list[str]:
    return [f"kill={p.leader}", f"leader={topic}={_ids(p.followers)}"]


# ----------------------------------------------------------------------------- case 4


def _followers_die(topic: str, p: Placement) -> list[str]:
    followers = p.followers
    return [
        *(f"kill={f}" for f in followers),
        f"isr={topic}={p.leader}",
        "sleep=3",  # the leader alone: acknowledged (weak) or refused (safe)
        f"kill={p.leader}",
        *(f"start={f}" for f in followers),
        # Weak: one of them is elected uncleanly; safe: none is, the partition waits for its leader.
        f"leader?={topic}={_ids(followers)}:30",
    ]


_PRODUCE: Final = ["--messages", "20000"]

_CONSUME: Final = [
    "--messages",
    "10000",
    "--consumer-crash-after",
    "5000",
    "--consumer-batch",
    "500",
    "--processing-ms",
    "0.5",
]

# Case 2: both producers give a send 5 s (delivery.timeout.ms), less than the ~9 s a SIGKILLed leader
# takes to be replaced: what waits for the dead leader expires. The checked producer sees it and sends
# again; the fire-and-forget one never looks. (A send in flight at the kill fails at once either way.)
_FAIL_FAST: Final = ["--delivery-timeout", "5", "--timeout", "300"]
# The checked producer rides out the fault: each attempt 10 s, re-sent up to 30 times.
_RIDE_OUT: Final = ["--delivery-timeout", "10", "--max-retries", "30", "--timeout", "300"]


# The weak broker settings: one in-sync replica is enough, and any replica may be elected.
_WEAK_BROKER: Final = {"min.insync.replicas": "1", "unclean.leader.election.enable": "true"}
_SAFE_TOPIC: Final = "DurableTopic (RF 3, min.insync.replicas=2, unclean off); acks=all"
_CHECKED_PRODUCER: Final = [*_PRODUCE, "--rate", "1000", *_RIDE_OUT]


def runs() -> list[Run]:
    """Every run of the lab, case by case, weak before safe."""
    return [
        Run(
            1,
            "weak",
            "RF 2, min.insync.replicas=1, unclean election on; acks=1",
            WeakTopic((1, 2), _WEAK_BROKER),
            [*_PRODUCE, "--rate", "1000", "--acks", "1", *_RIDE_OUT],
            before=_unclean_weak_before,
            fault=_unclean_weak_fault,
            recover=_old_leader_returns,
        ),
        Run(
            1,
            "safe",
            _SAFE_TOPIC,
            None,
            _CHECKED_PRODUCER,
            before=_unclean_safe_before,
            fault=_unclean_safe_fault,
            recover=_old_leader_returns,
        ),
        Run(
            2,
            "weak",
            "fire-and-forget: acks=1, retries=0, callback not checked",
            None,
            [*_PRODUCE, "--rate", "5000", *_FAIL_FAST, "--producer", "fire-and-forget", "--acks", "1"],
            fault=_leader_killed,
            recover=_old_leader_returns,
        ),
        Run(
            2,
            "safe",
            "client profile: acks=all, idempotence, retries with backoff, callback checked",
            None,
            [*_PRODUCE, "--rate", "5000", *_FAIL_FAST, "--max-retries", "30"],
            fault=_leader_killed,
            recover=_old_leader_returns,
        ),
        Run(
            3,
            "weak",
            "auto commit (offsets committed as records are handed over)",
            None,
            [*_CONSUME, "--consumer", "auto-commit"],
        ),
        Run(
            3,
            "safe",
            "auto commit off, commit after processing, idempotent processing",
            None,
            [*_CONSUME, "--consumer", "checked"],
        ),
        Run(
            4,
            "weak",
            "RF 3, min.insync.replicas=1 (Kafka's default), unclean election on; acks=all",
            WeakTopic((1, 2, 3), _WEAK_BROKER),
            _CHECKED_PRODUCER,
            fault=_followers_die,
            recover=_old_leader_returns,
        ),
        Run(
            4,
            "safe",
            _SAFE_TOPIC,
            None,
            _CHECKED_PRODUCER,
            fault=_followers_die,
            recover=_old_leader_returns,
        ),
    ]
