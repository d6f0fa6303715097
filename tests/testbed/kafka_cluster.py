"""What both beds' Kafka clusters have in common: a KRaft controller (node 0) and brokers 1..3, their
storage formatted with one cluster id, an admin client of the bed's own, and brokers broken and restarted
on purpose."""

from __future__ import annotations

import abc
import signal
import subprocess
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Final

from .config import BROKER_IDS, Layout, TestbedError, kafka_name
from .procs import kafka_serves, port_listens, tail
from .supervisor import Supervisor

__all__ = ["NODE_IDS", "KafkaCluster"]

NODE_IDS: Final = (0, *BROKER_IDS)
BROKER_NAMES: Final = tuple(kafka_name(i) for i in BROKER_IDS)


class KafkaCluster(Supervisor):
    """A bed running a KRaft Kafka cluster: node 0 the controller, ``BROKER_IDS`` the brokers."""

    RACKS: ClassVar[Mapping[int, str]]  # broker.rack of each broker

    def __init__(self, layout: Layout, *, private_state: bool = False) -> None:
        super().__init__(layout, private_state=private_state)
        self._admin: Any = None

    def admin_client(self) -> Any:
        """A confluent-kafka AdminClient of this instance (it lives as long as the object).

        It logs nothing: it is for the bed's own checks, which expect brokers to be down.
        """
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(self._admin_client_config())
        return self._admin

    def broker_nodes(self, timeout: float = 5.0) -> dict[int, str | None]:
        """Node id -> rack of the brokers the cluster reports alive (describe_cluster, by admin_client())."""
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
            if not any(kafka_serves(self._plaintext_port(i)) for i in BROKER_IDS):
                return 0
            return -1

    # ------------------------------------------------------------------ faults

    def kill_broker(self, node_id: int, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Send ``sig`` to a broker; for SIGKILL, SIGTERM and SIGINT wait until it is gone, ports free."""
        self._kill(kafka_name(node_id), sig, timeout)

    def start_broker(self, node_id: int, timeout: float = 120.0) -> None:
        """Restart a broker (same properties, same data directory) and wait until it serves and
        ``admin_client()`` sees it registered."""
        self._start_services([kafka_name(node_id)], timeout)

    def kill_all_brokers(self, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Send ``sig`` to the three brokers at once; for a kill, wait until all are gone, ports free."""
        self._signal_all(BROKER_NAMES, sig)
        for name in BROKER_NAMES:
            self._kill(name, sig, timeout)

    def start_all_brokers(self, timeout: float = 120.0) -> None:
        """Start the stopped brokers and wait until describe_cluster reports all three."""
        self._start_services(BROKER_NAMES, timeout)
        self._wait_brokers(timeout)

    # ------------------------------------------------------------------ what a Kafka bed says about itself

    @abc.abstractmethod
    def _admin_client_config(self) -> dict[str, Any]:
        """The configuration of ``admin_client()``."""

    @abc.abstractmethod
    def _controller_port(self) -> int:
        """The KRaft controller's listener."""

    @abc.abstractmethod
    def _plaintext_port(self, node_id: int) -> int:
        """The broker's unauthenticated listener, the one the bed's health checks ask."""

    @abc.abstractmethod
    def _listener_ports(self, node_id: int) -> dict[str, int]:
        """Listener name -> port of the broker's other listeners."""

    # ------------------------------------------------------------------ internals

    def _healthy(self) -> bool:
        return self.broker_nodes_or_empty() == self.RACKS

    def _wait_healthy(self, timeout: float) -> None:
        self._wait_brokers(timeout)

    def _wait_brokers(self, timeout: float) -> None:
        self._wait(
            lambda: self.broker_nodes_or_empty() == self.RACKS,
            timeout,
            f"{self.LABEL}'s describe_cluster to report brokers and racks {dict(self.RACKS)}",
        )

    def _wait_serving(self, name: str, timeout: float) -> None:
        who = self._process_label(name)
        if name == kafka_name(0):
            port = self._controller_port()
            self._wait(lambda: port_listens(port), timeout, f"{who} to listen on {port}")
        elif name in BROKER_NAMES:
            node_id = int(name.split("-")[1])
            port = self._plaintext_port(node_id)
            self._wait(lambda: kafka_serves(port), timeout, f"{who} to serve on port {port}")
            for listener, other in self._listener_ports(node_id).items():
                self._wait(partial(port_listens, other), timeout, f"{who} to listen on {other} ({listener})")
            self._wait(
                lambda: node_id in self.broker_nodes_or_empty(),
                timeout,
                f"{self.LABEL} to report {name} registered",
            )

    def _start_storage_formats(
        self, cluster_id: str, properties: Mapping[int, str], controller_args: Sequence[str], heap: str
    ) -> list[tuple[str, subprocess.Popen[bytes]]]:
        """Write each node's properties file and start formatting its data directory with ``cluster_id``,
        all in parallel; ``controller_args`` (SCRAM credentials) go into the controller's bootstrap
        metadata."""
        formats = []
        for node_id in NODE_IDS:
            name = kafka_name(node_id)
            props = self.layout.config_dir / f"{name}.properties"
            props.write_text(properties[node_id])
            props.chmod(0o600)  # a JAAS config in it may hold a password
            cmd = self.layout.java_command(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
                *(controller_args if node_id == 0 else ()), heap=heap,
            )  # fmt: skip
            with (self.logs_dir / f"format-{name}.out").open("wb") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            formats.append((name, proc))
        return formats

    def _wait_storage_formats(self, formats: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> None:
        for name, proc in formats:
            try:
                rc = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = -1
            if rc != 0:
                raise TestbedError(
                    f"formatting the storage of {self._process_label(name)} failed:\n"
                    f"{tail(self.logs_dir / f'format-{name}.out')}"
                )

    def _stop_locked(self, state: dict[str, Any] | None, timeout: float = 60.0) -> None:
        self._admin = None
        super()._stop_locked(state, timeout)
