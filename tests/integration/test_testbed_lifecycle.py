"""The test bed's own lifecycle: a second instance starts, is reused, and stops completely from the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.testbed import PortBusyError, Ports, Testbed
from tests.testbed.__main__ import run_cli
from tests.testbed.procs import is_alive, port_is_free, port_listens

pytestmark = pytest.mark.testbed


def _free_port_base(first: int = 30400) -> int:
    """A port base whose ports are all free and not those of the default test bed."""
    taken = set(Testbed().ports.by_service().values())
    for base in range(first, 32000, 100):
        ports = set(Ports.from_base(base).by_service().values())
        if not ports & taken and all(port_is_free(p) for p in ports):
            return base
    raise AssertionError("no free port base between 30400 and 32000")


def _cli(command: str, state_dir: Path, base: int) -> subprocess.CompletedProcess[str]:
    env = {
        "DURABLETOPIC_TESTBED_DIR": str(state_dir),
        "DURABLETOPIC_TESTBED_PORT_BASE": str(base),
    }
    return run_cli(command, env)


def test_second_bed_starts_is_reused_and_stops_from_the_cli(tmp_path: Path) -> None:
    base = _free_port_base()
    state_dir = tmp_path / "second-bed"
    bed = Testbed(state_dir=state_dir, port_base=base)
    try:
        began = time.monotonic()
        assert bed.up() is True
        cold = time.monotonic() - began
        assert bed.bootstrap_servers == f"127.0.0.1:{base + 1},127.0.0.1:{base + 2},127.0.0.1:{base + 3}"
        assert bed.api_url == f"https://127.0.0.1:{base + 43}"
        status = bed.status()
        assert status["healthy"], status
        pids = {
            name: (record["pid"], record["start_time"])
            for name, record in bed._require_state()["procs"].items()
        }
        assert len(pids) == 7 and all(is_alive(pid, start) for pid, start in pids.values())

        # A second object for the same state directory adopts the running bed instead of starting one.
        began = time.monotonic()
        again = Testbed(state_dir=state_dir, port_base=base + 1000)
        assert again.up() is False and again.reused
        warm = time.monotonic() - began
        assert again.ports == bed.ports  # the running bed's ports, not the ones asked for
        assert again.admin_token == bed.admin_token

        assert _cli("status", state_dir, base).returncode == 0
        env_lines = _cli("env", state_dir, base).stdout
        assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in env_lines
        assert f"DURABLETOPIC_BOOTSTRAP_SERVERS={bed.bootstrap_servers}" in env_lines.replace("'", "")

        began = time.monotonic()
        down = _cli("down", state_dir, base)
        took = time.monotonic() - began
        assert down.returncode == 0, down.stderr
        assert "stopped" in down.stdout
        print(f"second bed: cold up {cold:.1f} s, reuse {warm:.2f} s, down via CLI {took:.1f} s")

        left = [name for name, (pid, start) in pids.items() if is_alive(pid, start)]
        assert left == [], f"still running after down: {left}"
        listening = [p for p in Ports.from_base(base).by_service().values() if port_listens(p)]
        assert listening == [], f"still listening after down: {listening}"
        assert all(port_is_free(p) for p in Ports.from_base(base).by_service().values())
        assert not (state_dir / "state.json").exists()
        assert _cli("status", state_dir, base).returncode == 1
    finally:
        bed.down()


def test_busy_port_is_refused_naming_the_port(tmp_path: Path) -> None:
    base = _free_port_base(31000)
    busy = base + 2  # broker-2
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", busy))
        squatter.listen()
        bed = Testbed(state_dir=tmp_path / "busy", port_base=base)
        with pytest.raises(PortBusyError) as refused:
            bed.up()
        message = str(refused.value)
        assert f"port {busy} (for broker-2)" in message
        assert f"pid {os.getpid()}" in message  # who holds it
        assert refused.value.port == busy
        assert not (tmp_path / "busy" / "state.json").exists()
        assert not bed.is_running()

        cli = _cli("up", tmp_path / "busy", base)
        assert cli.returncode == 1
        assert f"port {busy}" in cli.stderr
    # Nothing of ours took any other port meanwhile.
    assert all(port_is_free(p) for p in Ports.from_base(base).by_service().values())


def test_fault_handles_break_and_restore_the_shared_bed(testbed_faults: Testbed) -> None:
    bed = testbed_faults

    bed.kill_apiserver()
    assert not bed.apiserver_ready()
    assert bed.kubectl("get", "namespaces", check=False, timeout=30).returncode != 0
    bed.start_apiserver()
    assert bed.kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"

    bed.kill_all_brokers()
    assert bed.broker_count(1.0) == 0
    bed.start_all_brokers()
    bed.wait_broker_count(3, timeout=60)
    assert bed.broker_nodes() == {1: "r1", 2: "r2", 3: "r3"}

    key = "log.retention.bytes"  # dynamic defaults are cluster-wide and outlive the test: undo it
    try:
        bed.set_broker_default(key, "1073741824")
        assert f"{key}=1073741824" in bed.describe_broker_defaults()
    finally:
        bed.delete_broker_default(key)
    assert key not in bed.describe_broker_defaults()
