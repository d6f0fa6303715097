"""A second Kafka cluster, "cluster B", for tests of an operator that manages several clusters at once.

It runs from the same cached jars as the main test bed (:mod:`tests.testbed.config`; nothing more to
install) but is a cluster of its own: its own cluster id, data, ports and racks, and SCRAM
authentication, while the main bed's cluster ("cluster A") stays reachable unauthenticated.

Processes (each in its own session; pids and start times recorded in ``STATE_DIR/state.json``):

* ``kafka-controller`` - KRaft controller, node.id 0
* ``broker-1`` .. ``broker-3`` - brokers, node ids 1..3 (the same ids as cluster A's: another cluster),
  ``broker.rack`` b1..b3, two listeners each, both on 127.0.0.1:

  - ``CLIENT`` - SASL_PLAINTEXT, mechanism SCRAM-SHA-512 only: ``bootstrap_servers``, for the operator
    under test and for tests (``client_properties()``, ``admin_config()``, ``admin_client()``)
  - ``INTERNAL`` - PLAINTEXT, inter-broker traffic and the bed's health checks:
    ``bootstrap_servers_internal``

One SCRAM user, ``operator`` (``username``), with a random ``password`` made at every fresh start, kept in
state.json (mode 0600) and written into the metadata log by ``StorageTool format --add-scram`` (see
:func:`tests.testbed.security.scram_format_args`). There is no authorizer: an authenticated client may
do anything.

Ports, all below the kernel's ephemeral range and apart from the main bed's base+0..43: from
``B = DURABLETOPIC_TESTBED_PORT_BASE + 60`` (29460 by default), B+0 (controller), B+1..3 (brokers,
INTERNAL), B+11..13 (brokers, CLIENT). Each is checked free before a start, and a busy one is named in
the error (:class:`~tests.testbed.config.PortBusyError`).

Environment variables (constructor arguments win over them), besides those of the main bed that say
where the programs are (``DURABLETOPIC_CACHE``, ``DURABLETOPIC_KAFKA_VERSION``,
``DURABLETOPIC_TESTBED_JAVA``, ``DURABLETOPIC_TESTBED_JAVA_OPTS``):

``DURABLETOPIC_TESTBED_SECOND_DIR``
    state directory: data, logs, configs, state.json (default ``$DURABLETOPIC_TESTBED_DIR/kafka-b``)
``DURABLETOPIC_TESTBED_SECOND_PORT_BASE``
    its first port, B above (default ``DURABLETOPIC_TESTBED_PORT_BASE`` + 60)
``DURABLETOPIC_TESTBED_SECOND_KAFKA_HEAP``
    maximum heap of each of its four JVMs (default 256m)

Use it from tests through the session fixture ``second_kafka`` of ``tests/conftest.py`` (started on first
use, or reused when running; stopped at the end of the session if that session started it, unless
``DURABLETOPIC_TESTBED_KEEP=1``); ``second_kafka_admin`` is an authenticated AdminClient and
``second_kafka_faults`` restarts whatever a test killed. By hand, from the repository root::

    python -m tests.testbed up-second      # start it, or reuse the running one; prints how to reach it
    python -m tests.testbed status-second  # exit status 0 healthy, 1 not running, 2 unhealthy
    python -m tests.testbed down-second    # stop it: no process left, ports free, data wiped

Like the main bed, a cluster already running in the state directory is reused, never started twice;
data are wiped at ``down()`` and at every fresh ``up()``; logs stay in ``STATE_DIR/logs`` until the next
fresh ``up()``.

Cost, measured on the 2-core test machine (Java 17, serial GC, C1 only, 256m heaps, the main bed running
idle): a cold ``up()`` takes 7-10 s (the four storage formats in parallel, then the four JVMs until the
three brokers are registered and answer SCRAM clients); ``start_all_brokers()`` after
``kill_all_brokers()`` 5-11 s; ``down()`` 0.1 s. The four JVMs hold about 0.6 GB resident (controller
about 140 MB, each broker about 160 MB; 636 MB after the integration tests), as much as the main bed's
Kafka JVMs with 384m heaps: idle brokers use far less heap than either limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .config import (
    BROKER_IDS,
    DEFAULT_PORT_BASE,
    ENV_PREFIX,
    Layout,
    PortBusyError,
    Ports,
    TestbedError,
    kafka_name,
    new_kafka_uuid,
)
from .procs import (
    is_alive,
    kafka_serves,
    port_is_free,
    port_listens,
    port_owner,
    process_start_time,
    rss_bytes,
    signal_process,
    tail,
    wait_until,
)
from .security import SCRAM_JAAS, USERNAME, scram_format_args

__all__ = ["PORT_OFFSET", "RACKS", "SCRAM_MECHANISM", "SECURITY_PROTOCOL", "SecondKafka", "SecondPorts"]

log = logging.getLogger(__name__)

SECOND_ENV: Final = f"{ENV_PREFIX}SECOND_"
PORT_OFFSET: Final = 60
DEFAULT_HEAP: Final = "256m"
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
SECURITY_PROTOCOL: Final = "SASL_PLAINTEXT"
RACKS: Final = {node_id: f"b{node_id}" for node_id in BROKER_IDS}
NODE_IDS: Final = (0, *BROKER_IDS)
# Brokers first: a broker told to stop waits for the controller forever.
STOP_ORDER: Final = (*(kafka_name(i) for i in BROKER_IDS), kafka_name(0))
STATE_FORMAT: Final = 1


@dataclass(frozen=True)
class SecondPorts:
    """The TCP ports of cluster B, all on 127.0.0.1, from its first port ``base``."""

    base: int

    @property
    def kafka_controller(self) -> int:
        return self.base

    def internal(self, node_id: int) -> int:
        """The broker's INTERNAL (PLAINTEXT) listener."""
        return self.base + node_id

    def client(self, node_id: int) -> int:
        """The broker's CLIENT (SASL_PLAINTEXT, SCRAM-SHA-512) listener."""
        return self.base + 10 + node_id

    def by_service(self) -> dict[str, int]:
        """Port per service name: ``kafka-controller``, ``broker-N`` (INTERNAL), ``broker-N-client``."""
        return {
            "kafka-controller": self.kafka_controller,
            **{kafka_name(i): self.internal(i) for i in BROKER_IDS},
            **{f"{kafka_name(i)}-client": self.client(i) for i in BROKER_IDS},
        }

    def of(self, name: str) -> list[int]:
        """The ports a process (``kafka-controller``, ``broker-N``) listens on."""
        return [port for service, port in self.by_service().items() if service in (name, f"{name}-client")]


def second_kafka_properties(node_id: int, ports: SecondPorts, data_dir: Path) -> str:
    """The properties file of cluster B's node ``node_id`` (0: the KRaft controller, 1..3: the brokers)."""
    props = {
        "node.id": str(node_id),
        "controller.quorum.voters": f"0@127.0.0.1:{ports.kafka_controller}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT",
        "log.dirs": str(data_dir / kafka_name(node_id)),
    }
    props |= _controller_properties(ports) if node_id == 0 else _broker_properties(node_id, ports)
    lines = [f"{key}={value}" for key, value in props.items()]
    return "# written by tests/testbed/second.py\n" + "\n".join(lines) + "\n"


def _controller_properties(ports: SecondPorts) -> dict[str, str]:
    return {"process.roles": "controller", "listeners": f"CONTROLLER://127.0.0.1:{ports.kafka_controller}"}


def _broker_properties(node_id: int, ports: SecondPorts) -> dict[str, str]:
    listeners = f"INTERNAL://127.0.0.1:{ports.internal(node_id)},CLIENT://127.0.0.1:{ports.client(node_id)}"
    return {
        "process.roles": "broker",
        "broker.rack": RACKS[node_id],
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "INTERNAL",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": SCRAM_JAAS,
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
        # Memory: the log cleaner's dedupe buffer (128 MB by default) is on the heap.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }


class SecondKafka:
    """Cluster B: start it (or adopt the running one), break its brokers on purpose, stop it.

    ``up()`` returns True when this call started it; ``down()`` (or ``stop()``) stops it from any
    process, using ``state.json``.
    """

    __test__ = False

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        port_base: int | None = None,
        cache_dir: Path | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        main = Layout.from_env(env, cache_dir=cache_dir)
        state = Path(state_dir or env.get(f"{SECOND_ENV}DIR") or main.state_dir / "kafka-b")
        self.state_dir = state.expanduser().absolute()
        heap = env.get(f"{SECOND_ENV}KAFKA_HEAP") or DEFAULT_HEAP
        self.layout = dataclasses.replace(Layout.from_env(env, self.state_dir, cache_dir), kafka_heap=heap)
        main_base = int(env.get(f"{ENV_PREFIX}PORT_BASE") or DEFAULT_PORT_BASE)
        base = port_base or int(env.get(f"{SECOND_ENV}PORT_BASE") or main_base + PORT_OFFSET)
        self._configured_ports = SecondPorts(base)
        self._main_ports = Ports.from_env(env)
        self.started = False  # this instance started the running cluster
        self.reused = False  # this instance adopted a cluster that was already running
        self._state: dict[str, Any] | None = None
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._admin: Any = None

    # ------------------------------------------------------------------ where and how to reach it

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def logs_dir(self) -> Path:
        return self.layout.logs_dir

    @property
    def data_dir(self) -> Path:
        return self.layout.data_dir

    @property
    def ports(self) -> SecondPorts:
        """The ports of the running cluster, or the configured ones when none is running."""
        state = self._state or self._load_state()
        return SecondPorts(int(state["port_base"])) if state else self._configured_ports

    @property
    def bootstrap_servers(self) -> str:
        """The CLIENT listeners: SASL_PLAINTEXT with SCRAM-SHA-512."""
        return ",".join(f"127.0.0.1:{self.ports.client(i)}" for i in BROKER_IDS)

    @property
    def bootstrap_servers_internal(self) -> str:
        """The INTERNAL listeners: PLAINTEXT, no authentication (the brokers' own traffic)."""
        return ",".join(f"127.0.0.1:{self.ports.internal(i)}" for i in BROKER_IDS)

    @property
    def security_protocol(self) -> str:
        return SECURITY_PROTOCOL

    @property
    def sasl_mechanism(self) -> str:
        return SCRAM_MECHANISM

    @property
    def username(self) -> str:
        return str(self._require_state()["username"])

    @property
    def password(self) -> str:
        return str(self._require_state()["password"])

    @property
    def cluster_id(self) -> str:
        return str(self._require_state()["cluster_id"])

    def client_properties(self, *, password: str | None = None) -> dict[str, str]:
        """librdkafka properties of an authenticated client (``password`` replaces the right one)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": SECURITY_PROTOCOL,
            "sasl.mechanism": SCRAM_MECHANISM,
            "sasl.username": self.username,
            "sasl.password": self.password if password is None else password,
        }

    def admin_config(self, **extra: Any) -> dict[str, Any]:
        """A confluent-kafka AdminClient config for test code: authenticated, plus ``extra``.

        Its metadata is refreshed every second, so that it moves on from a killed broker (see
        ``Testbed.kafka_config``).
        """
        return {**self.client_properties(), "topic.metadata.refresh.interval.ms": 1000, **extra}

    def admin_client(self) -> Any:
        """An authenticated AdminClient of this instance, logging nothing (it expects brokers to be down)."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(self.admin_config(log_level=0))
        return self._admin

    def broker_nodes(self, timeout: float = 5.0) -> dict[int, str | None]:
        """Node id -> rack of the brokers the cluster reports alive, asked with SCRAM credentials."""
        result = self.admin_client().describe_cluster(request_timeout=timeout).result(timeout=timeout + 1)
        return {node.id: node.rack for node in result.nodes}

    def broker_nodes_or_empty(self) -> dict[int, str | None]:
        """``broker_nodes()``, or {} when the cluster does not answer."""
        try:
            return self.broker_nodes(2.0)
        except Exception:
            return {}

    def broker_count(self, timeout: float = 5.0) -> int:
        """Brokers that describe_cluster reports; 0 when no broker answers at all, -1 when unknown."""
        try:
            return len(self.broker_nodes(timeout))
        except Exception:
            if not any(kafka_serves(self.ports.internal(i)) for i in BROKER_IDS):
                return 0
            return -1

    def processes(self) -> dict[str, tuple[int | None, int | None]]:
        """Name -> (pid, start time) of the recorded processes; (None, None) for a killed one."""
        state = self._load_state() or self._state or {}
        return {name: (rec.get("pid"), rec.get("start_time")) for name, rec in state.get("procs", {}).items()}

    def memory(self) -> dict[str, int]:
        """Name -> resident memory (bytes) of the running processes."""
        running = {
            name: pid for name, (pid, start) in self.processes().items() if pid and is_alive(pid, start)
        }
        return {name: rss_bytes(pid) for name, pid in running.items()}

    def is_running(self) -> bool:
        """True when state.json records a cluster whose four processes all run (not a health check)."""
        state = self._load_state()
        return state is not None and all(self._alive(state, name) for name in STOP_ORDER)

    def status(self) -> dict[str, Any]:
        """What runs, with pids, and whether it is healthy (for ``python -m tests.testbed status-second``)."""
        state = self._load_state()
        if not state:
            return {"state_dir": str(self.state_dir), "running": False, "healthy": False, "processes": {}}
        self._state = state
        recorded = [name for name in STOP_ORDER if name in state["procs"]]
        procs = {
            name: {"pid": state["procs"][name].get("pid"), "alive": self._alive(state, name)}
            for name in recorded
        }
        running = bool(procs) and all(p["alive"] for p in procs.values())
        return {
            "state_dir": str(self.state_dir),
            "running": running,
            "healthy": running and self.broker_nodes_or_empty() == RACKS,
            "bootstrap_servers": self.bootstrap_servers,
            "processes": procs,
        }

    # ------------------------------------------------------------------ faults

    def kill_broker(self, node_id: int, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Send ``sig`` to a broker; for SIGKILL, SIGTERM and SIGINT wait until it is gone, ports free."""
        self._kill(kafka_name(node_id), sig, timeout)

    def start_broker(self, node_id: int, timeout: float = 120.0) -> None:
        """Restart a broker (same properties, same data) and wait until it serves SCRAM clients again."""
        self._start_services([kafka_name(node_id)], timeout)

    def kill_all_brokers(self, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Send ``sig`` to the three brokers at once; for a kill, wait until all are gone, ports free."""
        names = [kafka_name(i) for i in BROKER_IDS]
        for name in names:
            record = self._record(name)
            signal_process(record.get("pid") or 0, sig, record.get("start_time"))
        for name in names:
            self._kill(name, sig, timeout)

    def start_all_brokers(self, timeout: float = 120.0) -> None:
        """Start the stopped brokers and wait until describe_cluster (authenticated) reports all three."""
        self._start_services([kafka_name(i) for i in BROKER_IDS], timeout)
        self._wait_healthy(timeout)

    def ensure_running(self, timeout: float = 120.0) -> None:
        """Start every recorded process that is not running and wait until the cluster is healthy."""
        self._start_services([kafka_name(0), *(kafka_name(i) for i in BROKER_IDS)], timeout)
        self._wait_healthy(timeout)

    # ------------------------------------------------------------------ lifecycle

    def up(self, timeout: float = 180.0) -> bool:
        """Make cluster B usable; True when this call started it, False when it was already running.

        Usable means: describe_cluster, asked with the SCRAM credentials, reports brokers 1..3 in racks
        b1..b3.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state = self._load_state()
            if state and self._adopt(state):
                return False
            self._check_programs()
            self._check_ports(self._configured_ports)
            try:
                self._start(timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    self._stop_locked(self._state)
                raise
            self.started = True
            self.reused = False
            return True

    def down(self, timeout: float = 60.0) -> bool:
        """Stop the cluster recorded in the state directory; True when something was running.

        Afterwards no process of it runs, its ports are free and its data are gone (the logs stay).
        """
        if not self.state_dir.exists():
            return False
        with self._locked():
            state = self._load_state() or self._state
            if not state:
                return False
            was_running = any(self._alive(state, name) for name in STOP_ORDER)
            self._stop_locked(state, timeout)
            self.started = False
            self.reused = False
            return was_running

    def stop(self, timeout: float = 60.0) -> bool:
        """The same as ``down()``."""
        return self.down(timeout)

    # ------------------------------------------------------------------ internals: state

    def _down_hint(self) -> str:
        return f"{SECOND_ENV}DIR={self.state_dir} {sys.executable} -m tests.testbed down-second"

    def _adopt(self, state: dict[str, Any]) -> bool:
        """Reuse the recorded cluster if it all runs (True); clear the record of a dead one (False)."""
        alive = {name: self._alive(state, name) for name in STOP_ORDER}
        if all(alive.values()):
            self._state = state
            try:
                self._wait_healthy(60)
            except TimeoutError as exc:
                raise TestbedError(
                    f"cluster B is running in {self.state_dir} but is not healthy ({exc}). "
                    f"Stop it with: {self._down_hint()}"
                ) from exc
            self.reused = not self.started
            return True
        if any(alive.values()):
            dead = ", ".join(name for name, ok in alive.items() if not ok)
            raise TestbedError(
                f"cluster B in {self.state_dir} is only partly running (not running: {dead}); perhaps a "
                f"test broke it and was interrupted. Stop it with: {self._down_hint()}"
            )
        log.info("removing the record of a cluster B that is no longer running in %s", self.state_dir)
        self._stop_locked(state)
        return False

    def _load_state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TestbedError(f"cannot read {self.state_file}: {exc}") from exc
        if data.get("format") != STATE_FORMAT:
            raise TestbedError(f"{self.state_file} has an unknown format; stop its processes by hand")
        return data

    def _save_state(self) -> None:
        assert self._state is not None
        tmp = self.state_file.with_name("state.json.tmp")
        tmp.write_text(json.dumps(self._state, indent=2) + "\n")
        tmp.chmod(0o600)  # it holds the SCRAM password
        tmp.replace(self.state_file)

    def _require_state(self) -> dict[str, Any]:
        if self._state is None:
            self._state = self._load_state()
        if self._state is None:
            raise TestbedError(f"cluster B is not running in {self.state_dir}; call up() first")
        return self._state

    def _record(self, name: str) -> dict[str, Any]:
        record: dict[str, Any] | None = self._require_state()["procs"].get(name)
        if record is None:
            raise TestbedError(f"no process named {name!r} in cluster B")
        return record

    def _alive(self, state: Mapping[str, Any], name: str) -> bool:
        record = state.get("procs", {}).get(name)
        if not record:
            return False
        child = self._children.get(name)
        if child is not None:
            child.poll()
        return is_alive(record.get("pid"), record.get("start_time"))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.state_dir / "lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ internals: checks

    def _check_programs(self) -> None:
        missing = [str(p) for p in (self.layout.kafka_home / ".complete",) if not p.exists()]
        if shutil.which(str(self.layout.java)) is None:
            missing.append(f"java ({self.layout.java})")
        if missing:
            raise TestbedError(
                f"the Kafka jars or java are missing: {', '.join(missing)}. "
                "Run `make testbed-install` (bash tests/testbed/install.sh kafka)."
            )

    def _check_ports(self, ports: SecondPorts) -> None:
        main = {port: service for service, port in self._main_ports.by_service().items()}
        hint = f"{SECOND_ENV}PORT_BASE"
        for service, port in ports.by_service().items():
            if port in main:
                raise TestbedError(
                    f"port {port} of cluster B's {service} is the main test bed's {main[port]}; "
                    f"choose another {hint}"
                )
            if not port_is_free(port):
                raise PortBusyError(port, f"cluster B's {service}", port_owner(port), self.state_dir, hint)

    # ------------------------------------------------------------------ internals: start

    def _start(self, timeout: float) -> None:
        began = time.monotonic()
        for sub in ("data", "logs", "config"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
            (self.state_dir / sub).mkdir(parents=True)
        self._state = {
            "format": STATE_FORMAT,
            "state_dir": str(self.state_dir),
            "port_base": self._configured_ports.base,
            "cluster_id": new_kafka_uuid(),
            "username": USERNAME,
            "password": secrets.token_hex(16),
            "started_at": time.time(),
            "starter_pid": os.getpid(),
            "procs": {},
        }
        self._save_state()
        self._format_storage()
        for node_id in NODE_IDS:
            self._spawn(kafka_name(node_id), self.layout.kafka_argv(node_id))

        def remaining() -> float:
            return max(5.0, timeout - (time.monotonic() - began))

        for node_id in BROKER_IDS:
            self._wait_serving(kafka_name(node_id), remaining())
        self._wait_healthy(remaining())
        self._state["up_seconds"] = round(time.monotonic() - began, 1)
        self._save_state()
        log.info("cluster B up in %.1f s", time.monotonic() - began)

    def _format_storage(self) -> None:
        """Write the four properties files and format the data directories with one cluster id, in
        parallel; the SCRAM credentials go into the controller's bootstrap metadata."""
        state = self._require_state()
        formats: list[tuple[str, subprocess.Popen[bytes]]] = []
        for node_id in NODE_IDS:
            name = kafka_name(node_id)
            props = self.layout.config_dir / f"{name}.properties"
            props.write_text(second_kafka_properties(node_id, self._configured_ports, self.data_dir))
            scram = [] if node_id else scram_format_args(USERNAME, state["password"], (SCRAM_MECHANISM,))
            cmd = self.layout.java_command(
                "kafka.tools.StorageTool", "format", "-t", state["cluster_id"], "-c", str(props), *scram,
                heap="128m", log_file=self.logs_dir / "kafka-tools.log",
            )  # fmt: skip
            with (self.logs_dir / f"format-{name}.out").open("wb") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            formats.append((name, proc))
        for name, proc in formats:
            try:
                rc = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = -1
            if rc != 0:
                raise TestbedError(
                    f"formatting the storage of cluster B's {name} failed:\n"
                    f"{tail(self.logs_dir / f'format-{name}.out')}"
                )

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        state = self._require_state()
        out_path = self.logs_dir / f"{name}.out"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with out_path.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self._children[name] = proc
        state["procs"][name] = {
            "pid": proc.pid,
            "start_time": process_start_time(proc.pid),
            "argv": list(argv),
            "log": str(out_path),
        }
        self._save_state()

    def _start_services(self, names: Sequence[str], timeout: float) -> None:
        """Start those of ``names`` that are not running (SIGCONT the paused ones), then wait for them."""
        stopped = []
        for name in names:
            record = self._record(name)
            if is_alive(record.get("pid"), record.get("start_time")):
                signal_process(record["pid"], signal.SIGCONT, record.get("start_time"))
                continue
            for port in self.ports.of(name):
                if not port_is_free(port):
                    raise PortBusyError(port, f"cluster B's {name}", port_owner(port), self.state_dir)
            self._spawn(name, record["argv"])
            stopped.append(name)
        for name in stopped:
            self._wait_serving(name, timeout)

    # ------------------------------------------------------------------ internals: waiting

    def _wait(self, check: Any, timeout: float, what: str) -> None:
        """wait_until, failing early (with the log's tail) when a process of the cluster has died."""

        def guarded() -> bool:
            state = self._require_state()
            dead = [n for n, r in state["procs"].items() if r["pid"] and not self._alive(state, n)]
            if dead:
                logs = tail(Path(state["procs"][dead[0]]["log"]))
                kafka_log = self.logs_dir / f"{dead[0]}.log"
                if kafka_log.exists():
                    logs += f"\n--- {kafka_log}\n{tail(kafka_log)}"
                raise TestbedError(
                    f"cluster B's {dead[0]} exited while waiting for {what}; its log ends:\n{logs}"
                )
            return bool(check())

        wait_until(guarded, timeout, what, interval=0.2)

    def _wait_serving(self, name: str, timeout: float) -> None:
        ports = self.ports
        if name == kafka_name(0):
            self._wait(lambda: port_listens(ports.kafka_controller), timeout, f"cluster B's {name} to listen")
            return
        node_id = int(name.split("-")[1])
        internal, client = ports.internal(node_id), ports.client(node_id)
        self._wait(lambda: kafka_serves(internal), timeout, f"cluster B's {name} to serve on {internal}")
        self._wait(lambda: port_listens(client), timeout, f"cluster B's {name} to listen on {client}")
        self._wait(
            lambda: node_id in self.broker_nodes_or_empty(),
            timeout,
            f"cluster B to report {name} registered (to a SCRAM client)",
        )

    def _wait_healthy(self, timeout: float) -> None:
        self._wait(
            lambda: self.broker_nodes_or_empty() == RACKS,
            timeout,
            f"cluster B's describe_cluster to report brokers and racks {RACKS}",
        )

    def _wait_gone(self, name: str, pid: int, start_time: int | None, timeout: float) -> None:
        child = self._children.get(name)

        def gone() -> bool:
            if child is not None:
                child.poll()
            return not is_alive(pid, start_time)

        wait_until(gone, timeout, f"cluster B's {name} (pid {pid}) to exit", interval=0.05)

    # ------------------------------------------------------------------ internals: stop

    def _kill(self, name: str, sig: int, timeout: float) -> None:
        record = self._record(name)
        pid, start_time = record.get("pid"), record.get("start_time")
        if not pid or not is_alive(pid, start_time):
            return
        signal_process(pid, sig, start_time)
        if sig not in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            return
        self._wait_gone(name, pid, start_time, timeout)
        record["pid"] = record["start_time"] = None
        self._save_state()
        ports = self.ports.of(name)
        wait_until(
            lambda: all(map(port_is_free, ports)), 10, f"ports {ports} of cluster B's {name} to be free"
        )

    def _stop_locked(self, state: dict[str, Any] | None, timeout: float = 60.0) -> None:
        if state is None:
            return
        self._admin = None
        procs: dict[str, Any] = state.get("procs", {})
        names = [n for n in STOP_ORDER if n in procs] + [n for n in procs if n not in STOP_ORDER]
        for name in names:
            signal_process(procs[name].get("pid") or 0, signal.SIGKILL, procs[name].get("start_time"))
        for name in names:
            if procs[name].get("pid"):
                self._wait_gone(name, procs[name]["pid"], procs[name].get("start_time"), timeout)
        self._children.clear()
        if procs and "port_base" in state:
            self._wait_ports_free(SecondPorts(int(state["port_base"])))
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
        self._state = None

    def _wait_ports_free(self, ports: SecondPorts) -> None:
        busy: list[str] = []

        def all_free() -> bool:
            busy[:] = [f"{p} ({s})" for s, p in ports.by_service().items() if not port_is_free(p)]
            return not busy

        try:
            wait_until(all_free, 15, "cluster B's ports to be free")
        except TimeoutError as exc:
            raise TestbedError(f"stopped cluster B, but these ports are still busy: {busy}") from exc
