"""The test bed's processes: start them (or adopt running ones), break them on purpose, stop them.

What they are, their ports, files and command lines, and the environment variables that change
them: see :mod:`tests.testbed.config`. How every bed records, adopts, breaks and stops its processes:
:mod:`tests.testbed.supervisor` and :mod:`tests.testbed.kafka_cluster`.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from .config import (
    BROKER_IDS,
    ENV_PREFIX,
    STOP_ORDER,
    KubectlError,
    Layout,
    PodNetwork,
    PortBusyError,
    Ports,
    TestbedError,
    ephemeral_port_range,
    kafka_name,
    kafka_properties,
    new_kafka_uuid,
    token_file_text,
    write_kubeconfig,
)
from .kafka_cluster import NODE_IDS, KafkaCluster
from .procs import port_is_free, port_listens, port_owner
from .security import KafkaSecurity

__all__ = ["BROKER_IDS", "KubectlError", "PortBusyError", "Ports", "Testbed", "TestbedError"]

log = logging.getLogger(__name__)


class Testbed(KafkaCluster):
    """One test bed: start it, reuse it, break parts of it on purpose, and stop it.

    ``up()`` starts it (or adopts one already running in ``state_dir``) and returns True when this
    call started it. ``down()`` stops it, from any process, using ``state.json``.
    """

    __test__ = False
    STOP_ORDER = STOP_ORDER
    LABEL = "the test bed"
    RACKS: ClassVar[Mapping[int, str]] = {node_id: f"r{node_id}" for node_id in BROKER_IDS}

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        port_base: int | None = None,
        ports: Ports | None = None,
        cache_dir: Path | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        super().__init__(Layout.from_env(env, state_dir, cache_dir))
        self.cache_dir = self.layout.cache_dir
        if ports is not None:
            self._configured_ports = ports
        elif port_base is not None:
            self._configured_ports = Ports.from_base(port_base)
        else:
            self._configured_ports = Ports.from_env(env)

    # ------------------------------------------------------------------ paths and properties

    @property
    def kafka_libs(self) -> Path:
        return self.layout.kafka_libs

    @property
    def kubectl_path(self) -> Path:
        return self.layout.kubectl

    @property
    def helm_path(self) -> Path:
        return self.layout.helm

    @property
    def prometheus_operator_crds_dir(self) -> Path:
        """The Prometheus Operator's CRDs (``install.sh prometheus-operator-crds``), one file each."""
        return self.layout.prometheus_operator_crds

    @property
    def audit_log(self) -> Path:
        return self.layout.audit_log

    @property
    def kubeconfig(self) -> Path:
        """An admin kubeconfig (user ``admin`` in group system:masters)."""
        return self.state_dir / "kubeconfig"

    @property
    def ports(self) -> Ports:
        """The ports of the running test bed, or the configured ones when none is running."""
        state = self._state or self._load_state()
        if state and "ports" in state:
            return Ports(**state["ports"])
        return self._configured_ports

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.ports.broker(i)}" for i in BROKER_IDS)

    def bootstrap_servers_for(self, protocol: str) -> str:
        """Bootstrap servers of the brokers' ``protocol`` listener (PLAINTEXT, SASL_PLAINTEXT, SASL_SSL, SSL)."""
        ports = [self.ports.broker(i, protocol) for i in BROKER_IDS]
        if not all(ports):
            raise TestbedError(
                f"the test bed in {self.state_dir} was started without {protocol} listeners "
                f"(by an older tests/testbed); restart it: {self._down_hint()}"
            )
        return ",".join(f"127.0.0.1:{port}" for port in ports)

    @property
    def bootstrap_servers_sasl(self) -> str:
        """The SASL_PLAINTEXT listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)."""
        return self.bootstrap_servers_for("SASL_PLAINTEXT")

    @property
    def bootstrap_servers_sasl_ssl(self) -> str:
        """The SASL_SSL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 over TLS)."""
        return self.bootstrap_servers_for("SASL_SSL")

    @property
    def bootstrap_servers_ssl(self) -> str:
        """The SSL listeners (mutual TLS: a client certificate signed by the bed's CA is required)."""
        return self.bootstrap_servers_for("SSL")

    @property
    def kafka_security(self) -> KafkaSecurity:
        """TLS files and SASL credentials of the authenticated listeners (made once per state dir)."""
        return KafkaSecurity(self.state_dir / "kafka-security")

    def kafka_client_properties(
        self, protocol: str, mechanism: str | None = None, *, password: str | None = None
    ) -> dict[str, str]:
        """librdkafka properties (bootstrap.servers included) of a client of the ``protocol`` listener.

        ``mechanism`` is the SASL mechanism of a SASL_* protocol; ``password`` replaces the user's.
        """
        return {
            "bootstrap.servers": self.bootstrap_servers_for(protocol),
            **self.kafka_security.client_properties(protocol, mechanism, password=password),
        }

    @property
    def pod_network(self) -> PodNetwork:
        """The addresses of the bed as Pods on its node see them (:mod:`tests.testbed.node`)."""
        return PodNetwork.for_ports(self.ports)

    @property
    def pod_bootstrap_servers(self) -> str:
        """The brokers' POD listeners as a Pod on the bed's node reaches them (while the node runs)."""
        ports = [self.ports.broker(i, "POD") for i in BROKER_IDS]
        if not all(ports):
            raise TestbedError(
                f"the test bed in {self.state_dir} was started without POD listeners "
                f"(by an older tests/testbed); restart it: {self._down_hint()}"
            )
        return ",".join(f"{self.pod_network.gateway}:{port}" for port in ports)

    @property
    def pod_api_server(self) -> tuple[str, int]:
        """Host and port of the API server for a Pod on the bed's node: the ``kubernetes`` Service's
        ClusterIP, which the kubelet also puts into every container's KUBERNETES_SERVICE_HOST/PORT."""
        return self.pod_network.service_ip, 443

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def admin_token(self) -> str:
        return str(self._require_state()["tokens"]["admin"])

    @property
    def nobody_token(self) -> str:
        """Token of user ``nobody``: authenticated, but with no RBAC binding at all."""
        return str(self._require_state()["tokens"]["nobody"])

    @property
    def cluster_id(self) -> str:
        return str(self._require_state()["cluster_id"])

    # ------------------------------------------------------------------ java helpers

    def java_command(self, main_class: str, *args: str, heap: str = "256m") -> list[str]:
        """A command line running ``main_class`` from the Kafka jars with the test bed's log4j2 config."""
        return self.layout.java_command(main_class, *args, heap=heap)

    def run_java(
        self, main_class: str, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a Kafka tool class (e.g. ``kafka.admin.ConfigCommand``) to completion, output captured."""
        cmd = self.java_command(main_class, *args)
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
        if check and result.returncode != 0:
            raise TestbedError(
                f"{main_class} {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout.strip()}\n{result.stderr.strip()}"
            )
        return result

    def set_broker_default(self, key: str, value: str) -> None:
        """Set a cluster-wide dynamic broker default (``--entity-default``), e.g. min.insync.replicas.

        A value holding commas must be written in brackets, as ConfigCommand wants: ``[a,b]``.
        """
        self._config_command("--alter", "--add-config", f"{key}={value}")

    def delete_broker_default(self, key: str) -> None:
        self._config_command("--alter", "--delete-config", key)

    def describe_broker_defaults(self) -> str:
        """ConfigCommand's description of the cluster-wide dynamic broker defaults."""
        return self._config_command("--describe").stdout

    def _config_command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run_java(
            "kafka.admin.ConfigCommand",
            "--bootstrap-server",
            self.bootstrap_servers,
            "--entity-type",
            "brokers",
            "--entity-default",
            *args,
        )

    # ------------------------------------------------------------------ kubernetes helpers

    def kubeconfig_for_token(self, token: str, path: Path | str, user: str = "token-user") -> Path:
        """Write a kubeconfig that talks to this API server as the holder of ``token``."""
        return write_kubeconfig(path, self.api_url, self.layout.certs_dir / "apiserver.crt", token, user)

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | str | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against the test bed (as admin unless ``kubeconfig`` says otherwise)."""
        cmd = [str(self.kubectl_path), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def apiserver_ready(self, timeout: float = 2.0) -> bool:
        """True when GET /readyz with the admin token answers 200."""
        return self._api_get("/readyz", timeout) == 200

    def _api_get(self, path: str, timeout: float) -> int:
        state = self._state or self._load_state()
        if not state:
            return 0
        request = urllib.request.Request(
            self.api_url + path, headers={"Authorization": f"Bearer {state['tokens']['admin']}"}
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                status: int = response.status
                return status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ssl.SSLError):
            return 0

    # ------------------------------------------------------------------ kafka helpers

    def kafka_config(self, **extra: Any) -> dict[str, Any]:
        """Base configuration of a confluent-kafka client of this cluster, plus ``extra``.

        Use it for clients that live through broker kills. librdkafka sends admin requests (create,
        delete, describe_topics) to the "controller" named in the last metadata response, which under
        KRaft is a random live broker. When that broker dies, a client with the default 5-minute
        metadata refresh keeps waiting for it ("Timed out waiting for controller") and burns most of a
        core retrying the connection; a 1 s refresh lets it move on once the broker is fenced.
        """
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "topic.metadata.refresh.interval.ms": 1000,
            **extra,
        }

    def wait_broker_count(self, n: int, timeout: float = 60.0) -> None:
        """Wait until describe_cluster reports exactly ``n`` brokers."""
        self._wait(lambda: self.broker_count(2.0) == n, timeout, f"describe_cluster to report {n} brokers")

    # ------------------------------------------------------------------ faults

    def kill_service(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Send ``sig`` to one of the test bed's processes (see STOP_ORDER for the names).

        For SIGKILL, SIGTERM and SIGINT, wait until the process is gone and its port is free; other
        signals (SIGSTOP, SIGCONT) are sent and not waited on.
        """
        self._kill(name, sig, timeout)

    def start_service(self, name: str, timeout: float = 120.0) -> None:
        """Start a stopped process again with its recorded command line and wait until it serves.

        A process paused with SIGSTOP is sent SIGCONT instead.
        """
        self._start_services([name], timeout)

    def kill_kafka_controller(self, sig: int = signal.SIGKILL) -> None:
        self.kill_service("kafka-controller", sig)

    def start_kafka_controller(self, timeout: float = 120.0) -> None:
        self.start_service("kafka-controller", timeout)

    def kill_apiserver(self, sig: int = signal.SIGKILL) -> None:
        self.kill_service("kube-apiserver", sig)

    def start_apiserver(self, timeout: float = 120.0) -> None:
        """Start the API server again (same flags, same etcd data) and wait for /readyz."""
        self.start_service("kube-apiserver", timeout)

    def ensure_running(self, timeout: float = 180.0) -> None:
        """Start every recorded process that is not running, then wait until the whole bed is healthy.

        For test fixtures that break things: call it in ``finally``.
        """
        order = ("etcd", "kube-apiserver", "kube-controller-manager", "kafka-controller")
        self._start_services([*order, *(f"broker-{i}" for i in BROKER_IDS)], timeout)
        self._wait_healthy(timeout)

    # ------------------------------------------------------------------ lifecycle

    def up(self, timeout: float = 240.0) -> bool:
        """Make the test bed usable; True when this call started it, False when it was already running.

        Usable means: describe_cluster reports the 3 brokers and /readyz answers 200 with the admin
        token (and the controller manager has created the default ServiceAccount).
        """
        return super().up(timeout)

    # ------------------------------------------------------------------ internals: what the bed is

    def _down_hint(self) -> str:
        return f"{ENV_PREFIX}DIR={self.state_dir} {sys.executable} -m tests.testbed down"

    def _endpoints(self) -> dict[str, str]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "api_url": self.api_url,
            "kubeconfig": str(self.kubeconfig),
        }

    def _healthy(self) -> bool:
        return self.apiserver_ready() and self.broker_count() == len(BROKER_IDS)

    def _service_ports(self, name: str) -> list[int]:
        port = self.ports.by_service().get(name)
        return [] if port is None else [port]

    def _recorded_ports(self, state: Mapping[str, Any]) -> dict[str, int] | None:
        return Ports(**state["ports"]).by_service() if "ports" in state else None

    def _admin_client_config(self) -> dict[str, Any]:
        return self.kafka_config(log_level=0)

    def _controller_port(self) -> int:
        return self.ports.kafka_controller

    def _plaintext_port(self, node_id: int) -> int:
        return self.ports.broker(node_id)

    def _listener_ports(self, node_id: int) -> dict[str, int]:
        ports = {
            protocol: self.ports.broker(node_id, protocol)
            for protocol in ("SASL_PLAINTEXT", "SSL", "SASL_SSL", "POD")
        }
        return {protocol: port for protocol, port in ports.items() if port}

    # ------------------------------------------------------------------ internals: checks

    def _check_programs(self) -> None:
        missing = self.layout.programs_missing()
        if missing:
            raise TestbedError(
                "the test bed's programs are not installed: "
                + ", ".join(missing)
                + ". Run `make testbed-install` (bash tests/testbed/install.sh)."
            )

    def _check_ports(self) -> None:
        seen: dict[int, str] = {}
        for service, port in self._configured_ports.by_service().items():
            if port in seen:
                raise TestbedError(f"port {port} is configured for both {seen[port]} and {service}")
            seen[port] = service
            if not port_is_free(port):
                raise PortBusyError(port, service, port_owner(port), self.state_dir)
        low, high = ephemeral_port_range()
        inside = sorted(p for p in seen if low <= p <= high)
        if inside:
            log.warning(
                "ports %d..%d are in the kernel's ephemeral range %d-%d: while a broker is down, a client "
                "retrying it can connect to itself on its port and keep the broker from binding it again; "
                "choose a %sPORT_BASE below %d for tests that kill brokers",
                inside[0],
                inside[-1],
                low,
                high,
                ENV_PREFIX,
                low - 50,
            )

    # ------------------------------------------------------------------ internals: start

    def _start(self, timeout: float) -> None:
        started_at = time.monotonic()
        ports = self._configured_ports
        layout = self.layout
        for stale in (self.kubeconfig, self.state_dir / "kubeconfig-nobody"):
            stale.unlink(missing_ok=True)
        state = self._new_state(
            ("data", "logs", "config", "certs"),
            ports=asdict(ports),
            cluster_id=new_kafka_uuid(),
            tokens={"admin": secrets.token_hex(24), "nobody": secrets.token_hex(24)},
        )
        cfg = layout.config_dir

        # etcd first: the API server needs it, and it starts in well under a second.
        self._spawn("etcd", layout.etcd_argv(ports))
        sa_key = cfg / "service-account.key"
        openssl = subprocess.Popen(
            ["openssl", "genrsa", "-out", str(sa_key), "2048"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        # Kafka storage, formatted meanwhile. The SCRAM credentials go into the controller's bootstrap
        # metadata (KRaft keeps them in the metadata log).
        self.kafka_security.ensure()
        formats = self._start_storage_formats(
            state["cluster_id"],
            {
                i: kafka_properties(
                    i,
                    ports,
                    layout.data_dir,
                    self.kafka_security,
                    default_threads=layout.kafka_default_threads,
                )
                for i in NODE_IDS
            },
            self.kafka_security.format_args(),
            heap="256m",
        )

        _, openssl_err = openssl.communicate(timeout=60)
        if openssl.returncode != 0:
            raise TestbedError(f"openssl genrsa failed: {openssl_err.decode(errors='replace')}")
        tokens = state["tokens"]
        token_file = cfg / "tokens.csv"
        token_file.write_text(token_file_text(tokens))
        token_file.chmod(0o600)
        self._wait(lambda: port_listens(ports.etcd), 30, f"etcd to listen on {ports.etcd}")
        self._spawn("kube-apiserver", layout.apiserver_argv(ports, token_file, sa_key))

        self._wait_storage_formats(formats)
        for node_id in NODE_IDS:
            self._spawn(kafka_name(node_id), layout.kafka_argv(node_id))

        def remaining() -> float:
            return max(5.0, timeout - (time.monotonic() - started_at))

        self._wait_serving("kube-apiserver", remaining())
        self.kubeconfig_for_token(tokens["admin"], self.kubeconfig, user="admin")
        self.kubeconfig_for_token(tokens["nobody"], self.state_dir / "kubeconfig-nobody", user="nobody")
        self._spawn("kube-controller-manager", layout.controller_manager_argv(self.kubeconfig, sa_key))
        for node_id in BROKER_IDS:
            self._wait_serving(f"broker-{node_id}", remaining())
        self._wait_healthy(remaining())
        # The controller manager works once it has created the default ServiceAccount.
        self._wait(
            lambda: self._api_get("/api/v1/namespaces/default/serviceaccounts/default", 2.0) == 200,
            remaining(),
            "kube-controller-manager to create the default ServiceAccount",
        )
        log.info("test bed up in %.1f s", time.monotonic() - started_at)

    # ------------------------------------------------------------------ internals: waiting

    def _wait_serving(self, name: str, timeout: float) -> None:
        ports = self.ports
        if name == "etcd":
            self._wait(lambda: port_listens(ports.etcd), timeout, f"{name} to listen")
        elif name == "kube-apiserver":
            self._wait(self.apiserver_ready, timeout, f"kube-apiserver /readyz on port {ports.apiserver}")
        else:
            # kube-controller-manager serves no port: being alive is all there is to check there.
            super()._wait_serving(name, timeout)

    def _wait_healthy(self, timeout: float) -> None:
        self._wait(self.apiserver_ready, timeout, "kube-apiserver /readyz")
        super()._wait_healthy(timeout)

    # ------------------------------------------------------------------ internals: stop

    def _stop_locked(self, state: dict[str, Any] | None, timeout: float = 60.0) -> None:
        # A node (tests/testbed/node.py) outlives no bed: stopped first, at down() and when the record
        # of a dead bed is cleared.
        if (self.state_dir / "node" / "state.json").exists():
            from .node import Node

            Node(self).down(timeout)
        super()._stop_locked(state, timeout)

    def _remove_runtime_files(self) -> None:
        super()._remove_runtime_files()
        shutil.rmtree(self.state_dir / "certs", ignore_errors=True)
        for path in (self.kubeconfig, self.state_dir / "kubeconfig-nobody"):
            path.unlink(missing_ok=True)
