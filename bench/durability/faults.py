"""Fault steps on the test bed's brokers, run in order by the probe's fault and recover commands.

    python -m bench.durability.faults STEP [STEP ...]

Steps:

    kill=N               SIGKILL broker N and wait until it is gone
    start=N              start broker N and wait until it serves
    isr=TOPIC=1,2        wait until partition 0 of TOPIC has exactly these in-sync replicas (any order)
    leader=TOPIC=2,3     wait until partition 0 of TOPIC is led by one of these brokers
    leader?=TOPIC=2,3:S  the same, but go on after S seconds without one (a clean setting may elect none)
    sleep=S              wait S seconds

Every wait gives up (exit 1) after 180 s unless it says otherwise. Each step's time is printed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from tests.testbed import Testbed

WAIT_SECONDS = 180.0


class StepFailed(RuntimeError):
    pass


def partition_state(bed: Testbed, topic: str) -> tuple[int, frozenset[int]]:
    """(leader, in-sync replicas) of partition 0 of ``topic``, leader -1 when it has none."""
    metadata = bed.admin_client().list_topics(topic, timeout=10)
    partition = metadata.topics[topic].partitions[0]
    return partition.leader, frozenset(partition.isrs)


def _wait(
    check: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS, *, required: bool = True
) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # a broker just killed: the metadata request may fail; look again
            pass
        time.sleep(0.2)
    if required:
        raise StepFailed(f"{what}: not after {seconds:g} s")
    return False


def _brokers(text: str) -> frozenset[int]:
    return frozenset(int(b) for b in text.split(","))


def run_step(bed: Testbed, step: str) -> str:
    name, _, argument = step.partition("=")
    if name == "kill":
        bed.kill_broker(int(argument))
        return f"broker {argument} killed"
    if name == "start":
        bed.start_broker(int(argument))
        return f"broker {argument} started"
    if name == "sleep":
        time.sleep(float(argument))
        return f"slept {argument} s"
    topic, _, wanted = argument.rpartition("=")
    if name == "isr":
        isr = _brokers(wanted)
        _wait(lambda: partition_state(bed, topic)[1] == isr, f"in-sync replicas {sorted(isr)} of {topic}")
        return f"in-sync replicas of {topic}: {sorted(isr)}"
    if name in ("leader", "leader?"):
        brokers, _, limit = wanted.partition(":")
        leaders = _brokers(brokers)
        seconds = float(limit) if limit else WAIT_SECONDS
        found = _wait(
            lambda: partition_state(bed, topic)[0] in leaders,
            f"a leader among {sorted(leaders)} for {topic}",
            seconds,
            required=name == "leader",
        )
        leader, isr = partition_state(bed, topic)
        return f"{topic}: leader {leader}, in-sync {sorted(isr)}" + ("" if found else " (none elected)")
    raise StepFailed(f"unknown step {step!r}")


def main(argv: Sequence[str]) -> int:
    bed = Testbed()
    bed.status()
    began = time.monotonic()
    for step in argv:
        try:
            said = run_step(bed, step)
        except StepFailed as error:
            print(f"{time.monotonic() - began:6.1f} s  {step}: {error}", flush=True)
            return 1
        print(f"{time.monotonic() - began:6.1f} s  {said}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
