"""The second Kafka cluster ("cluster B"): SCRAM only, a cluster of its own, broken and restored on
purpose, and gone without a trace after down."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tests.testbed import PortBusyError, SecondKafka, Testbed
from tests.testbed.__main__ import run_cli
from tests.testbed.procs import is_alive, port_is_free, port_listens
from tests.testbed.second import RACKS, SecondPorts

pytestmark = pytest.mark.testbed


def _create_topic(admin: Any, name: str) -> None:
    futures = admin.create_topics(
        [NewTopic(name, 3, 3, config={"min.insync.replicas": "2"})], request_timeout=30
    )
    futures[name].result(timeout=60)


def _describe(admin: Any, name: str, timeout: float = 15) -> Any:
    future = admin.describe_topics(TopicCollection([name]), request_timeout=timeout)[name]
    return future.result(timeout=timeout + 5)


def _wait_described(admin: Any, name: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _describe(admin, name, 5)
        except KafkaException:  # a request to a broker that is still starting: ask again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _refused(config: dict[str, Any]) -> str:
    """The errors a client with ``config`` reports when it asks cluster B for its topics (which must fail)."""
    errors: list[Any] = []
    settings: dict[str, Any] = {**config, "log_level": 0, "error_cb": errors.append}
    client = AdminClient(settings)
    try:
        client.list_topics(timeout=3)
    except KafkaException as exc:
        client.poll(0.5)  # deliver the errors to error_cb
        return "\n".join([str(exc), *(str(e) for e in errors)])
    raise AssertionError(f"a client with {config} was let in")


def test_topic_created_and_described_with_scram(
    second_kafka: SecondKafka, second_kafka_admin: Any, unique: str
) -> None:
    name = f"{unique}-b"
    _create_topic(second_kafka_admin, name)
    try:
        description = _wait_described(second_kafka_admin, name)
        assert len(description.partitions) == 3
        assert all(len(p.replicas) == 3 for p in description.partitions)
        assert second_kafka.broker_nodes() == RACKS == {1: "b1", 2: "b2", 3: "b3"}
        assert name in second_kafka_admin.list_topics(timeout=10).topics
    finally:
        second_kafka_admin.delete_topics([name], request_timeout=30)[name].result(timeout=60)


def test_unauthenticated_and_wrong_clients_are_refused(second_kafka: SecondKafka) -> None:
    # No credentials at all: the broker closes the connection.
    assert "_TRANSPORT" in _refused({"bootstrap.servers": second_kafka.bootstrap_servers})
    wrong = _refused(second_kafka.client_properties(password="not-the-password"))
    assert "invalid credentials" in wrong
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        other = _refused({**second_kafka.client_properties(), "sasl.mechanism": mechanism})
        assert "Unsupported SASL mechanism" in other
    # The right credentials are let in.
    AdminClient(second_kafka.admin_config(log_level=0)).list_topics(timeout=10)
    assert second_kafka.security_protocol == "SASL_PLAINTEXT"
    assert second_kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert second_kafka.username == "operator" and len(second_kafka.password) >= 32


def test_cluster_b_is_another_cluster(
    second_kafka: SecondKafka, second_kafka_admin: Any, testbed: Testbed, kafka_admin: Any
) -> None:
    cluster_a = kafka_admin.describe_cluster(request_timeout=10).result(timeout=15)  # no credentials
    cluster_b = second_kafka_admin.describe_cluster(request_timeout=10).result(timeout=15)
    assert cluster_b.cluster_id == second_kafka.cluster_id
    assert cluster_a.cluster_id == testbed.cluster_id
    assert cluster_b.cluster_id != cluster_a.cluster_id
    assert {n.rack for n in cluster_a.nodes} == {"r1", "r2", "r3"}
    assert not set(second_kafka.ports.by_service().values()) & set(testbed.ports.by_service().values())


def test_kill_all_brokers_and_start_them_again(second_kafka_faults: SecondKafka, unique: str) -> None:
    cluster = second_kafka_faults
    admin = AdminClient(cluster.admin_config())
    name = f"{unique}-b"
    _create_topic(admin, name)
    _wait_described(admin, name)
    brokers = {n: p for n, p in cluster.processes().items() if n.startswith("broker-")}

    cluster.kill_all_brokers()
    assert not any(is_alive(pid, start) for pid, start in brokers.values())
    assert cluster.broker_count(1.0) == 0
    with pytest.raises(KafkaException):
        _describe(admin, name, timeout=3)
    assert cluster.is_running() is False

    began = time.monotonic()
    cluster.start_all_brokers()
    print(f"cluster B: brokers back in {time.monotonic() - began:.1f} s")
    assert cluster.broker_nodes() == RACKS
    assert len(_wait_described(admin, name).partitions) == 3  # the data survived
    admin.delete_topics([name], request_timeout=30)[name].result(timeout=60)


def _free_base(first: int = 31500) -> int:
    """A first port for a throwaway cluster B whose ports are free and no test bed's."""
    taken = set(Testbed().ports.by_service().values()) | set(SecondKafka().ports.by_service().values())
    for base in range(first, 32000, 20):
        ports = set(SecondPorts(base).by_service().values())
        if not ports & taken and all(port_is_free(p) for p in ports):
            return base
    raise AssertionError(f"no free ports for cluster B between {first} and 32000")


def _cli(command: str, state_dir: Path, base: int) -> subprocess.CompletedProcess[str]:
    env = {
        "DURABLETOPIC_TESTBED_SECOND_DIR": str(state_dir),
        "DURABLETOPIC_TESTBED_SECOND_PORT_BASE": str(base),
    }
    return run_cli(command, env)


def test_up_and_down_leave_nothing_behind(tmp_path: Path) -> None:
    base = _free_base()
    state_dir = tmp_path / "kafka-b"
    cluster = SecondKafka(state_dir, port_base=base)
    try:
        began = time.monotonic()
        assert cluster.up() is True
        took = time.monotonic() - began
        memory = cluster.memory()
        print(f"cluster B: up in {took:.1f} s, RSS {sum(memory.values()) / 2**20:.0f} MiB {memory}")
        assert cluster.bootstrap_servers == ",".join(f"127.0.0.1:{base + 10 + i}" for i in (1, 2, 3))
        processes = cluster.processes()
        assert len(processes) == 4 and all(is_alive(pid, start) for pid, start in processes.values())
        assert _cli("status-second", state_dir, base).returncode == 0
        assert SecondKafka(state_dir, port_base=base + 100).up() is False  # the running one is reused

        down = _cli("down-second", state_dir, base)
        assert down.returncode == 0, down.stderr
        assert "stopped" in down.stdout
        assert [n for n, (pid, start) in processes.items() if is_alive(pid, start)] == []
        ports = SecondPorts(base).by_service().values()
        assert [p for p in ports if port_listens(p) or not port_is_free(p)] == []
        assert not cluster.state_file.exists()
        assert not (state_dir / "data").exists()
        assert _cli("status-second", state_dir, base).returncode == 1
        assert cluster.down() is False
    finally:
        cluster.down()


def test_busy_port_is_refused_naming_it(tmp_path: Path) -> None:
    base = _free_base(31700)
    busy = SecondPorts(base).client(2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", busy))
        squatter.listen()
        cluster = SecondKafka(tmp_path / "busy", port_base=base)
        with pytest.raises(PortBusyError) as refused:
            cluster.up()
        assert f"port {busy} (for cluster B's broker-2-client)" in str(refused.value)
        assert "DURABLETOPIC_TESTBED_SECOND_PORT_BASE" in str(refused.value)
        assert not cluster.state_file.exists()
    assert all(port_is_free(p) for p in SecondPorts(base).by_service().values())
