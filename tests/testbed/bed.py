"""The test bed's processes: start them (or adopt running ones), break them on purpose, stop them.

What they are, their ports, files and command lines, and the environment variables that change
them: see :mod:`tests.testbed.config`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import (
    BROKER_IDS,
    ENV_PREFIX,
    STATE_FORMAT,
    STOP_ORDER,
    KubectlError,
    Layout,
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
from .procs import (
    is_alive,
    kafka_serves,
    port_is_free,
    port_listens,
    port_owner,
    process_start_time,
    signal_process,
    tail,
    wait_until,
)
from .security import KafkaSecurity

__all__ = ["BROKER_IDS", "KubectlError", "PortBusyError", "Ports", "Testbed", "TestbedError"]

log = logging.getLogger(__name__)


class Testbed:
    """One test bed: start it, reuse it, break parts of it on purpose, and stop it.

    ``up()`` starts it (or adopts one already running in ``state_dir``) and returns True when this
    call started it. ``down()`` stops it, from any process, using ``state.json``.
    """

    __test__ = False

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
        self.layout = Layout.from_env(env, state_dir, cache_dir)
        self.cache_dir = self.layout.cache_dir
        self.state_dir = self.layout.state_dir
        if ports is not None:
            self._configured_ports = ports
        elif port_base is not None:
            self._configured_ports = Ports.from_base(port_base)
        else:
            self._configured_ports = Ports.from_env(env)
        self.started = False  # this instance started the running test bed
        self.reused = False  # this instance adopted a test bed that was already running
        self._state: dict[str, Any] | None = None
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._admin: Any = None

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
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def logs_dir(self) -> Path:
        return self.layout.logs_dir

    @property
    def audit_log(self) -> Path:
        return self.layout.audit_log

    @property
    def data_dir(self) -> Path:
        return self.layout.data_dir

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

    def is_running(self) -> bool:
        """True when state.json records a test bed whose processes all run (not a health check)."""
        state = self._load_state()
        if not state:
            return False
        return all(self._alive(state, name) for name in STOP_ORDER)

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

    def admin_client(self) -> Any:
        """A confluent-kafka AdminClient of this instance (it lives as long as the Testbed object).

        It logs nothing: it is for the test bed's own checks, which expect brokers to be down.
        """
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(self.kafka_config(log_level=0))
        return self._admin

    def broker_nodes(self, timeout: float = 5.0) -> dict[int, str | None]:
        """Node id -> rack of the brokers the cluster reports alive (describe_cluster)."""
        result = self.admin_client().describe_cluster(request_timeout=timeout).result(timeout=timeout + 1)
        return {node.id: node.rack for node in result.nodes}

    def broker_count(self, timeout: float = 5.0) -> int:
        """Brokers that describe_cluster reports; 0 when no broker answers at all, -1 when unknown."""
        try:
            return len(self.broker_nodes(timeout))
        except Exception:
            if not any(kafka_serves(self.ports.broker(i)) for i in BROKER_IDS):
                return 0
            return -1

    def wait_broker_count(self, n: int, timeout: float = 60.0) -> None:
        """Wait until describe_cluster reports exactly ``n`` brokers."""
        self._wait(lambda: self.broker_count(2.0) == n, timeout, f"describe_cluster to report {n} brokers")

    # ------------------------------------------------------------------ faults

    def kill_service(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Send ``sig`` to one of the test bed's processes (see STOP_ORDER for the names).

        For SIGKILL, SIGTERM and SIGINT, wait until the process is gone and its port is free; other
        signals (SIGSTOP, SIGCONT) are sent and not waited on.
        """
        state = self._require_state()
        record = state["procs"].get(name)
        if record is None:
            raise TestbedError(f"no process named {name!r} in this test bed")
        pid, start_time = record.get("pid"), record.get("start_time")
        if not pid or not is_alive(pid, start_time):
            return
        signal_process(pid, sig, start_time)
        if sig not in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            return
        self._wait_gone(name, pid, start_time, timeout)
        record["pid"] = None
        record["start_time"] = None
        self._save_state()
        port = self.ports.by_service().get(name)
        if port is not None:
            wait_until(lambda: port_is_free(port), 10, f"port {port} of {name} to be free")

    def start_service(self, name: str, timeout: float = 120.0) -> None:
        """Start a stopped process again with its recorded command line and wait until it serves.

        A process paused with SIGSTOP is sent SIGCONT instead.
        """
        state = self._require_state()
        record = state["procs"].get(name)
        if record is None:
            raise TestbedError(f"no process named {name!r} in this test bed")
        if is_alive(record.get("pid"), record.get("start_time")):
            signal_process(record["pid"], signal.SIGCONT, record.get("start_time"))
        else:
            port = self.ports.by_service().get(name)
            if port is not None and not port_is_free(port):
                raise PortBusyError(port, name, port_owner(port), self.state_dir)
            self._spawn(name, record["argv"])
        self._wait_serving(name, timeout)

    def kill_broker(self, node_id: int, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        self.kill_service(f"broker-{node_id}", sig, timeout)

    def start_broker(self, node_id: int, timeout: float = 120.0) -> None:
        """Restart a broker (same properties, same data directory) and wait until it is registered."""
        self.start_service(f"broker-{node_id}", timeout)

    def kill_all_brokers(self, sig: int = signal.SIGKILL) -> None:
        for node_id in BROKER_IDS:
            name = f"broker-{node_id}"
            record = self._require_state()["procs"][name]
            signal_process(record.get("pid") or 0, sig, record.get("start_time"))
        for node_id in BROKER_IDS:
            self.kill_broker(node_id, sig)

    def start_all_brokers(self, timeout: float = 120.0) -> None:
        for node_id in BROKER_IDS:
            name = f"broker-{node_id}"
            record = self._require_state()["procs"][name]
            if not is_alive(record.get("pid"), record.get("start_time")):
                self._spawn(name, record["argv"])
        for node_id in BROKER_IDS:
            self.start_broker(node_id, timeout)

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
        state = self._require_state()
        order: tuple[str, ...] = ("etcd", "kube-apiserver", "kube-controller-manager", "kafka-controller")
        order += tuple(f"broker-{i}" for i in BROKER_IDS)
        stopped = []
        for name in order:
            record = state["procs"][name]
            if is_alive(record["pid"], record["start_time"]):
                signal_process(record["pid"], signal.SIGCONT, record["start_time"])  # if it was paused
            else:
                stopped.append(name)
        for name in stopped:
            self._spawn(name, state["procs"][name]["argv"])
        for name in stopped:
            self._wait_serving(name, timeout)
        self._wait_healthy(timeout)

    # ------------------------------------------------------------------ lifecycle

    def up(self, timeout: float = 240.0) -> bool:
        """Make the test bed usable; True when this call started it, False when it was already running.

        Usable means: describe_cluster reports the 3 brokers and /readyz answers 200 with the admin
        token (and the controller manager has created the default ServiceAccount).
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state = self._load_state()
            if state:
                alive = {name: self._alive(state, name) for name in STOP_ORDER}
                if all(alive.values()):
                    self._state = state
                    try:
                        self._wait_healthy(60)
                    except TimeoutError as exc:
                        raise TestbedError(
                            f"a test bed is running in {self.state_dir} but is not healthy ({exc}). "
                            f"Stop it with: {self._down_hint()}"
                        ) from exc
                    if not self.started:
                        self.reused = True
                    return False
                if any(alive.values()):
                    dead = ", ".join(name for name, ok in alive.items() if not ok)
                    raise TestbedError(
                        f"the test bed in {self.state_dir} is only partly running (not running: {dead}); "
                        f"perhaps a test broke it and was interrupted. Stop it with: {self._down_hint()}"
                    )
                log.info("removing the record of a test bed that is no longer running in %s", self.state_dir)
                self._stop_locked(state)
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
        """Stop the test bed recorded in the state directory; True when something was running."""
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

    def status(self) -> dict[str, Any]:
        """What runs, with pids, and whether the endpoints are healthy (for ``python -m tests.testbed status``)."""
        state = self._load_state()
        if not state:
            return {"state_dir": str(self.state_dir), "running": False, "processes": {}}
        self._state = state
        procs = {
            name: {"pid": state["procs"][name].get("pid"), "alive": self._alive(state, name)}
            for name in STOP_ORDER
            if name in state["procs"]
        }
        running = all(p["alive"] for p in procs.values())
        healthy = running and self.apiserver_ready() and self.broker_count() == len(BROKER_IDS)
        return {
            "state_dir": str(self.state_dir),
            "running": running,
            "healthy": healthy,
            "bootstrap_servers": self.bootstrap_servers,
            "api_url": self.api_url,
            "kubeconfig": str(self.kubeconfig),
            "processes": procs,
        }

    # ------------------------------------------------------------------ internals: state

    def _down_hint(self) -> str:
        return f"{ENV_PREFIX}DIR={self.state_dir} {sys.executable} -m tests.testbed down"

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
        tmp.replace(self.state_file)

    def _require_state(self) -> dict[str, Any]:
        if self._state is None:
            self._state = self._load_state()
        if self._state is None:
            raise TestbedError(f"no test bed is running in {self.state_dir}; call up() first")
        return self._state

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
        missing = self.layout.programs_missing()
        if missing:
            raise TestbedError(
                "the test bed's programs are not installed: "
                + ", ".join(missing)
                + ". Run `make testbed-install` (bash tests/testbed/install.sh)."
            )

    def _check_ports(self, ports: Ports) -> None:
        seen: dict[int, str] = {}
        for service, port in ports.by_service().items():
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
        for sub in ("data", "logs", "config", "certs"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
            (self.state_dir / sub).mkdir(parents=True)
        for stale in (self.kubeconfig, self.state_dir / "kubeconfig-nobody"):
            stale.unlink(missing_ok=True)

        self._state = {
            "format": STATE_FORMAT,
            "state_dir": str(self.state_dir),
            "ports": asdict(ports),
            "cluster_id": new_kafka_uuid(),
            "tokens": {"admin": secrets.token_hex(24), "nobody": secrets.token_hex(24)},
            "started_at": time.time(),
            "starter_pid": os.getpid(),
            "procs": {},
        }
        self._save_state()
        cfg = layout.config_dir

        # etcd first: the API server needs it, and it starts in well under a second.
        self._spawn("etcd", layout.etcd_argv(ports))
        sa_key = cfg / "service-account.key"
        openssl = subprocess.Popen(
            ["openssl", "genrsa", "-out", str(sa_key), "2048"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        # Kafka storage: format the four data directories with one cluster id, in parallel. The SCRAM
        # credentials go into the controller's bootstrap metadata (KRaft keeps them in the metadata log).
        self.kafka_security.ensure()
        formats: list[tuple[int, subprocess.Popen[bytes]]] = []
        for node_id in (0, *BROKER_IDS):
            props = cfg / f"{kafka_name(node_id)}.properties"
            props.write_text(kafka_properties(node_id, ports, layout.data_dir, self.kafka_security))
            props.chmod(0o600)  # the PLAIN user's password is in the JAAS config
            scram = self.kafka_security.format_args() if node_id == 0 else []
            cmd = layout.java_command(
                "kafka.tools.StorageTool", "format", "-t", self._state["cluster_id"], "-c", str(props), *scram
            )
            out = (self.logs_dir / f"format-{kafka_name(node_id)}.out").open("wb")
            with out:
                formats.append(
                    (
                        node_id,
                        subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True),
                    )
                )

        _, openssl_err = openssl.communicate(timeout=60)
        if openssl.returncode != 0:
            raise TestbedError(f"openssl genrsa failed: {openssl_err.decode(errors='replace')}")
        tokens = self._state["tokens"]
        token_file = cfg / "tokens.csv"
        token_file.write_text(token_file_text(tokens))
        token_file.chmod(0o600)
        self._wait(lambda: port_listens(ports.etcd), 30, f"etcd to listen on {ports.etcd}")
        self._spawn("kube-apiserver", layout.apiserver_argv(ports, token_file, sa_key))

        for node_id, proc in formats:
            try:
                rc = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = -1
            if rc != 0:
                name = kafka_name(node_id)
                raise TestbedError(
                    f"formatting the storage of {name} failed:\n{tail(self.logs_dir / f'format-{name}.out')}"
                )
        for node_id in (0, *BROKER_IDS):
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

    # ------------------------------------------------------------------ internals: waiting

    def _dead(self) -> list[str]:
        state = self._require_state()
        return [
            name for name in state["procs"] if state["procs"][name]["pid"] and not self._alive(state, name)
        ]

    def _wait(self, check: Any, timeout: float, what: str) -> None:
        """wait_until, failing early (with the log's tail) when a process of the bed has died."""

        def guarded() -> bool:
            dead = self._dead()
            if dead:
                name = dead[0]
                record = self._require_state()["procs"][name]
                kafka_log = self.logs_dir / f"{name}.log"
                logs = tail(Path(record["log"]))
                if kafka_log.exists():
                    logs += "\n--- " + str(kafka_log) + "\n" + tail(kafka_log)
                raise TestbedError(f"{name} exited while waiting for {what}; its log ends with:\n{logs}")
            return bool(check())

        wait_until(guarded, timeout, what, interval=0.2)

    def _wait_serving(self, name: str, timeout: float) -> None:
        ports = self.ports
        if name.startswith("broker-"):
            node_id = int(name.split("-")[1])
            port = ports.broker(node_id)
            self._wait(lambda: kafka_serves(port), timeout, f"{name} to serve on port {port}")
            for protocol in ("SASL_PLAINTEXT", "SSL", "SASL_SSL"):
                other = ports.broker(node_id, protocol)
                if other:
                    self._wait(
                        lambda other=other: port_listens(other),
                        timeout,
                        f"{name} to listen on {other} ({protocol})",
                    )
            self._wait(
                lambda: node_id in self._broker_ids_or_empty(),
                timeout,
                f"the cluster to report {name} registered",
            )
        elif name == "kafka-controller":
            self._wait(lambda: port_listens(ports.kafka_controller), timeout, f"{name} to listen")
        elif name == "etcd":
            self._wait(lambda: port_listens(ports.etcd), timeout, f"{name} to listen")
        elif name == "kube-apiserver":
            self._wait(self.apiserver_ready, timeout, f"kube-apiserver /readyz on port {ports.apiserver}")
        # kube-controller-manager serves no port: being alive is all there is to check here.

    def _broker_ids_or_empty(self) -> set[int]:
        try:
            return set(self.broker_nodes(2.0))
        except Exception:
            return set()

    def _wait_healthy(self, timeout: float) -> None:
        self._wait(self.apiserver_ready, timeout, "kube-apiserver /readyz")
        self._wait(
            lambda: self._broker_ids_or_empty() == set(BROKER_IDS),
            timeout,
            f"describe_cluster to report brokers {list(BROKER_IDS)}",
        )

    def _wait_gone(self, name: str, pid: int, start_time: int | None, timeout: float) -> None:
        child = self._children.get(name)

        def gone() -> bool:
            if child is not None:
                child.poll()
            return not is_alive(pid, start_time)

        wait_until(gone, timeout, f"{name} (pid {pid}) to exit", interval=0.05)

    # ------------------------------------------------------------------ internals: stop

    def _stop_locked(self, state: dict[str, Any] | None, timeout: float = 60.0) -> None:
        if state is None:
            return
        self._admin = None
        procs: dict[str, Any] = state.get("procs", {})
        names = [n for n in STOP_ORDER if n in procs] + [n for n in procs if n not in STOP_ORDER]
        for name in names:
            record = procs[name]
            signal_process(record.get("pid") or 0, signal.SIGKILL, record.get("start_time"))
        for name in names:
            record = procs[name]
            if record.get("pid"):
                self._wait_gone(name, record["pid"], record.get("start_time"), timeout)
        self._children.clear()
        ports = Ports(**state["ports"]) if "ports" in state else None
        if ports is not None and procs:
            busy: list[str] = []

            def all_free() -> bool:
                busy[:] = [f"{p} ({s})" for s, p in ports.by_service().items() if not port_is_free(p)]
                return not busy

            try:
                wait_until(all_free, 15, "the test bed's ports to be free")
            except TimeoutError as exc:
                raise TestbedError(f"stopped the test bed, but these ports are still busy: {busy}") from exc
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.state_dir / "certs", ignore_errors=True)
        for path in (self.kubeconfig, self.state_dir / "kubeconfig-nobody", self.state_file):
            path.unlink(missing_ok=True)
        self._state = None
