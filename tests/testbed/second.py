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

import dataclasses
import logging
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

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
from .kafka_cluster import NODE_IDS, KafkaCluster
from .procs import is_alive, port_is_free, port_owner, rss_bytes
from .security import SCRAM_JAAS, USERNAME, scram_format_args

__all__ = ["PORT_OFFSET", "RACKS", "SCRAM_MECHANISM", "SECURITY_PROTOCOL", "SecondKafka", "SecondPorts"]

log = logging.getLogger(__name__)

SECOND_ENV: Final = f"{ENV_PREFIX}SECOND_"
PORT_OFFSET: Final = 60
DEFAULT_HEAP: Final = "256m"
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
SECURITY_PROTOCOL: Final = "SASL_PLAINTEXT"
RACKS: Final = {node_id: f"b{node_id}" for node_id in BROKER_IDS}
# Brokers first: a broker told to stop waits for the controller forever.
STOP_ORDER: Final = (*(kafka_name(i) for i in BROKER_IDS), kafka_name(0))


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


class SecondKafka(KafkaCluster):
    """Cluster B: start it (or adopt the running one), break its brokers on purpose, stop it.

    ``up()`` returns True when this call started it; ``down()`` (or ``stop()``) stops it from any
    process, using ``state.json``.
    """

    __test__ = False
    STOP_ORDER = STOP_ORDER
    LABEL = "cluster B"
    PROCESS_LABEL = "cluster B's {name}"
    RACKS: ClassVar[Mapping[int, str]] = RACKS

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
        heap = env.get(f"{SECOND_ENV}KAFKA_HEAP") or DEFAULT_HEAP
        layout = Layout.from_env(env, state.expanduser().absolute(), cache_dir)
        super().__init__(dataclasses.replace(layout, kafka_heap=heap), private_state=True)  # the password
        main_base = int(env.get(f"{ENV_PREFIX}PORT_BASE") or DEFAULT_PORT_BASE)
        base = port_base or int(env.get(f"{SECOND_ENV}PORT_BASE") or main_base + PORT_OFFSET)
        self._configured_ports = SecondPorts(base)
        self._main_ports = Ports.from_env(env)

    # ------------------------------------------------------------------ where and how to reach it

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
        return super().up(timeout)

    def stop(self, timeout: float = 60.0) -> bool:
        """The same as ``down()``."""
        return self.down(timeout)

    # ------------------------------------------------------------------ internals: what the cluster is

    def _down_hint(self) -> str:
        return f"{SECOND_ENV}DIR={self.state_dir} {sys.executable} -m tests.testbed down-second"

    def _endpoints(self) -> dict[str, str]:
        return {"bootstrap_servers": self.bootstrap_servers}

    def _service_ports(self, name: str) -> list[int]:
        return self.ports.of(name)

    def _recorded_ports(self, state: Mapping[str, Any]) -> dict[str, int] | None:
        return SecondPorts(int(state["port_base"])).by_service() if "port_base" in state else None

    def _admin_client_config(self) -> dict[str, Any]:
        return self.admin_config(log_level=0)

    def _controller_port(self) -> int:
        return self.ports.kafka_controller

    def _plaintext_port(self, node_id: int) -> int:
        return self.ports.internal(node_id)

    def _listener_ports(self, node_id: int) -> dict[str, int]:
        return {"CLIENT": self.ports.client(node_id)}

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

    def _check_ports(self) -> None:
        main = {port: service for service, port in self._main_ports.by_service().items()}
        hint = f"{SECOND_ENV}PORT_BASE"
        for service, port in self._configured_ports.by_service().items():
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
        state = self._new_state(
            ("data", "logs", "config"),
            port_base=self._configured_ports.base,
            cluster_id=new_kafka_uuid(),
            username=USERNAME,
            password=secrets.token_hex(16),
        )
        properties = {i: second_kafka_properties(i, self._configured_ports, self.data_dir) for i in NODE_IDS}
        scram = scram_format_args(USERNAME, state["password"], (SCRAM_MECHANISM,))
        self._wait_storage_formats(
            self._start_storage_formats(state["cluster_id"], properties, scram, "128m")
        )
        for node_id in NODE_IDS:
            self._spawn(kafka_name(node_id), self.layout.kafka_argv(node_id))

        def remaining() -> float:
            return max(5.0, timeout - (time.monotonic() - began))

        for node_id in BROKER_IDS:
            self._wait_serving(kafka_name(node_id), remaining())
        self._wait_healthy(remaining())
        state["up_seconds"] = round(time.monotonic() - began, 1)
        self._save_state()
        log.info("cluster B up in %.1f s", time.monotonic() - began)
