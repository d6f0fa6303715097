"""Session fixtures of the test suite.

Only tests that ask for ``testbed`` (or a fixture built on it) start the local test bed; they are marked
``testbed`` automatically, so ``pytest -m 'not testbed'`` skips them. The bed is started once per
session, or a running one (``make testbed-up``, ``make demo``) is reused; at the end of the session it
is stopped only if this session started it (set DURABLETOPIC_TESTBED_KEEP=1 to leave it running for the
next run).

``node`` is the test bed's node (:mod:`tests.testbed.node`: containerd, kubelet, kube-scheduler; root
only), on which Pods run from images imported with ``node.import_image``: started on first use (or
reused) and stopped at the end of the session on the same terms.

``second_kafka`` is a second Kafka cluster with SCRAM authentication (:mod:`tests.testbed.second`), for
tests of several clusters: started on first use (or reused), and stopped at the end of the session on the
same terms.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests import failure_logs
from tests.testbed import SecondKafka, Testbed
from tests.testbed.node import Node

_BED_FIXTURES = frozenset(
    {
        *("testbed", "testbed_faults", "bootstrap_servers", "kubeconfig", "kafka_admin"),
        *("second_kafka", "second_kafka_faults", "second_kafka_admin", "node"),
    }
)
_RUN_ID = secrets.token_hex(3)
_counter = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _BED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.testbed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    failure_logs.remember_offsets(item)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that ran an operator shows what the operator logged meanwhile; one that ran the
    operator in Pods shows the Pods' logs."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    report.sections.extend(failure_logs.operator_sections(item))
    funcargs = getattr(item, "funcargs", {})
    if "node" in funcargs and "testbed" in funcargs:
        report.sections.extend(failure_logs.pod_sections(funcargs["testbed"]))


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    """The running test bed (started for this session, or reused)."""
    bed = Testbed()
    keep = os.environ.get("DURABLETOPIC_TESTBED_KEEP", "") not in ("", "0")
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped and bed.started and not keep:
            stopped = True
            bed.down()

    # SIGTERM (a CI timeout, a closed terminal) would skip both the teardown and atexit: make it an
    # interrupt, which pytest answers with the session teardown.
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    atexit.register(stop)
    try:
        bed.up()
        yield bed
    finally:
        try:
            stop()
        finally:
            atexit.unregister(stop)
            if previous in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def testbed_faults(testbed: Testbed) -> Iterator[Testbed]:
    """The test bed, for a test that kills parts of it: afterwards everything is started again."""
    try:
        yield testbed
    finally:
        testbed.ensure_running()


@pytest.fixture(scope="session")
def bootstrap_servers(testbed: Testbed) -> str:
    return testbed.bootstrap_servers


@pytest.fixture(scope="session")
def kubeconfig(testbed: Testbed) -> Path:
    """An admin kubeconfig of the test bed."""
    return testbed.kubeconfig


@pytest.fixture(scope="session")
def kafka_admin(testbed: Testbed) -> Iterator[Any]:
    """A confluent-kafka AdminClient for the whole session (it must outlive the futures it returns).

    Its metadata is refreshed every second (see Testbed.kafka_config), so it survives broker kills.
    """
    from confluent_kafka.admin import AdminClient

    client = AdminClient(testbed.kafka_config())
    yield client
    del client


def _keep() -> bool:
    return os.environ.get("DURABLETOPIC_TESTBED_KEEP", "") not in ("", "0")


@contextlib.contextmanager
def _stopped_at_session_end(stop: Callable[[], object]) -> Iterator[None]:
    """Call ``stop`` once when the block ends, at exit, or on SIGTERM (made an interrupt, which pytest
    answers with the session teardown)."""
    stopped = False

    def stop_once() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            stop()

    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    atexit.register(stop_once)
    try:
        yield
    finally:
        try:
            stop_once()
        finally:
            atexit.unregister(stop_once)
            if previous in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def second_kafka() -> Iterator[SecondKafka]:
    """Cluster B: a second Kafka cluster, SCRAM-SHA-512 on SASL_PLAINTEXT (started for this session, or
    reused; stopped at its end only if this session started it, and DURABLETOPIC_TESTBED_KEEP is unset)."""
    cluster = SecondKafka()
    keep = _keep()

    def stop() -> None:
        if cluster.started and not keep:
            cluster.down()

    with _stopped_at_session_end(stop):
        cluster.up()
        yield cluster


@pytest.fixture(scope="session")
def node(testbed: Testbed) -> Iterator[Node]:
    """The test bed's node, Ready: Pods of the bed's API server run there (started for this session, or
    reused; stopped at its end only if this session started it, and DURABLETOPIC_TESTBED_KEEP is unset)."""
    bed_node = Node(testbed)
    keep = _keep()

    def stop() -> None:
        if bed_node.started and not keep:
            bed_node.down()

    with _stopped_at_session_end(stop):
        bed_node.up()
        yield bed_node


@pytest.fixture
def second_kafka_faults(second_kafka: SecondKafka) -> Iterator[SecondKafka]:
    """Cluster B, for a test that kills parts of it: afterwards everything is started again."""
    try:
        yield second_kafka
    finally:
        second_kafka.ensure_running()


@pytest.fixture(scope="session")
def second_kafka_admin(second_kafka: SecondKafka) -> Iterator[Any]:
    """An AdminClient of cluster B with its SCRAM credentials, for the whole session."""
    from confluent_kafka.admin import AdminClient

    client = AdminClient(second_kafka.admin_config())
    yield client
    del client


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name prefix unique to this test run, valid as a Kafka topic and a Kubernetes name.

    Lowercase letters, digits and '-', starting with a letter, at most 40 characters, so that a suffix
    still fits in a 63-character DNS label. Topic names are cluster-wide and tests run again and again
    against one cluster: build every name from this.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:24].strip("-")
    return f"t-{slug}-{_RUN_ID}{next(_counter)}"
