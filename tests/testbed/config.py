"""The test bed's configuration: versions, ports, where its programs and files live, and the
configuration files and command lines of its processes. `bed.py` runs them.

Processes (each in its own session, pids and start times recorded in ``STATE_DIR/state.json``):

* ``kafka-controller`` - KRaft controller, node.id 0
* ``broker-1`` .. ``broker-3`` - Kafka brokers, node ids 1..3, broker.rack r1..r3; each has four
  listeners: ``PLAINTEXT`` (the default bootstrap, ``bootstrap_servers``; inter-broker traffic too),
  ``SASL_PLAINTEXT`` (``bootstrap_servers_sasl``), ``SASL_SSL`` (``bootstrap_servers_sasl_ssl``), both
  with mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, ``SSL`` with a client certificate
  required (``bootstrap_servers_ssl``), and ``POD`` (PLAINTEXT, bound to 127.0.0.1, advertised at the
  pod network's gateway: ``pod_bootstrap_servers``, reached from Pods through the node's forwarder;
  see :class:`PodNetwork` and :mod:`tests.testbed.node`). One user, ``operator`` (``kafka_security.username`` /
  ``.password``); the TLS material is PEM (CA ``kafka_security.ca_file``, client certificate and key);
  see :mod:`tests.testbed.security`. ``kafka_client_properties(protocol, mechanism)`` gives the
  librdkafka properties of a client. The controller listener stays PLAINTEXT; there is no authorizer.
* ``etcd`` - etcd with ``--unsafe-no-fsync``
* ``kube-apiserver`` - RBAC, a token file (an admin in system:masters and a ``nobody`` user with no
  bindings), service-account keys, a self-signed serving certificate
* ``kube-controller-manager`` - namespace, garbage-collector, serviceaccount(-token), deployment,
  replicaset, root-ca publisher, node-lifecycle and pod-garbage-collector controllers (no scheduler, no kubelet: Pods stay Pending unless the
  bed's node runs, :mod:`tests.testbed.node`: ``python -m tests.testbed node-up``)

Environment variables (constructor arguments win over them):

``DURABLETOPIC_CACHE``
    where ``tests/testbed/install.sh`` put the programs (default ``~/.cache/durabletopic``)
``DURABLETOPIC_TESTBED_DIR``
    state directory: data, logs, configs, kubeconfig, state.json (default ``$DURABLETOPIC_CACHE/testbed``)
``DURABLETOPIC_TESTBED_PORT_BASE``
    first port (default 29400); the services take base+0 (kafka controller), base+1..3 (brokers,
    PLAINTEXT), base+10 (etcd clients), base+11 (etcd peers), base+21..23 (brokers, SASL_PLAINTEXT),
    base+25..27 (brokers, SSL), base+31..33 (brokers, SASL_SSL), base+35..37 (brokers, POD),
    base+43 (kube-apiserver); base+60..79
    belong to the second Kafka cluster (:mod:`tests.testbed.second`), started only by the tests that use it.
    Keep every port below the kernel's ephemeral range (``ip_local_port_range``, usually from 32768):
    a port inside it can be taken by a client's self-connection while its broker is down (TCP
    simultaneous open), and the restarted broker then fails with "Address already in use".
``DURABLETOPIC_TESTBED_PORT_KAFKA_CONTROLLER``, ``..._PORT_BROKER_1`` .. ``..._PORT_BROKER_3``,
``..._PORT_BROKER_1_SASL`` .., ``..._PORT_BROKER_1_SSL`` .., ``..._PORT_BROKER_1_SASL_SSL`` ..,
``..._PORT_BROKER_1_POD`` ..,
``..._PORT_ETCD``, ``..._PORT_ETCD_PEER``, ``..._PORT_APISERVER``
    one port each, overriding the base
``DURABLETOPIC_KAFKA_VERSION``, ``DURABLETOPIC_K8S_VERSION``, ``DURABLETOPIC_ETCD_VERSION``,
``DURABLETOPIC_HELM_VERSION``, ``DURABLETOPIC_PROMETHEUS_OPERATOR_VERSION``
    the versions to take from the cache (defaults as in install.sh)
``DURABLETOPIC_TESTBED_JAVA``
    the java binary (default ``$JAVA_HOME/bin/java``, else ``java`` on PATH)
``DURABLETOPIC_TESTBED_JAVA_OPTS``
    JVM options of every Kafka process, replacing the defaults (serial GC, C1 only)
``DURABLETOPIC_TESTBED_KAFKA_HEAP``
    maximum heap of each Kafka node (default 384m)
``DURABLETOPIC_TESTBED_KAFKA_THREADS``
    ``small`` (default): brokers with ``num.network.threads=2`` and ``num.io.threads=4``, for a
    2-core machine; ``default``: Kafka's own defaults (3 and 8), as most users' brokers run

A test bed already running in the same state directory (live recorded pids, healthy endpoints) is
reused, never started twice. Runtime data is wiped at ``down()`` and at every fresh ``up()``; the logs
stay in ``STATE_DIR/logs`` until the next fresh ``up()``. The Kafka TLS material and the SASL password
are made once per state directory (``STATE_DIR/kafka-security``) and kept.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from .security import KafkaSecurity

BROKER_IDS: Final = (1, 2, 3)
DEFAULT_PORT_BASE: Final = 29400
KAFKA_VERSION: Final = "4.3.1"
K8S_VERSION: Final = "v1.37.2"
ETCD_VERSION: Final = "v3.6.16"
HELM_VERSION: Final = "v3.22.0"
# The Prometheus Operator whose CRDs (ServiceMonitor, PrometheusRule) the chart's monitoring objects
# are checked against; install.sh generates them from its API module.
PROMETHEUS_OPERATOR_VERSION: Final = "v0.95.2"
DEFAULT_JAVA_OPTS: Final = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
STATE_FORMAT: Final = 1
KUBE_CONTROLLERS: Final = (
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "deployment-controller",
    "replicaset-controller",
    "root-ca-certificate-publisher-controller",
    # For the bed's node (tests/testbed/node.py): lifts the not-ready taint the kubelet registers
    # with once the Node is Ready, and deletes the Pods of a Node that is gone.
    "node-lifecycle-controller",
    "pod-garbage-collector-controller",
)
# down() kills in this order: brokers first (a broker told to stop waits for the controller forever).
STOP_ORDER: Final = (
    "broker-1",
    "broker-2",
    "broker-3",
    "kafka-controller",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
)

ENV_PREFIX: Final = "DURABLETOPIC_TESTBED_"
# Listener (security protocol) -> suffix of its port fields in Ports.
_LISTENER_PORT_SUFFIX: Final = {
    "PLAINTEXT": "",
    "SASL_PLAINTEXT": "_sasl",
    "SSL": "_ssl",
    "SASL_SSL": "_sasl_ssl",
    "POD": "_pod",
}


class TestbedError(RuntimeError):
    """The test bed cannot be started, reused or stopped; the message says why and what to do."""

    __test__ = False  # not a test class, whatever pytest thinks of the name


class PortBusyError(TestbedError):
    """A port the test bed needs is taken by something that is not a healthy test bed of ours."""

    def __init__(self, port: int, service: str, owner: str, state_dir: Path, ports_hint: str = "") -> None:
        self.port = port
        self.service = service
        by = f" by {owner}" if owner else ""
        hint = ports_hint or f"{ENV_PREFIX}PORT_BASE (or {ENV_PREFIX}PORT_<SERVICE>)"
        super().__init__(
            f"port {port} (for {service}) is already in use{by}, and it is not a healthy test bed "
            f"recorded in {state_dir}. Stop whatever holds it, or choose other ports with {hint}."
        )


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike CalledProcessError, the message includes what kubectl said."""

    def __str__(self) -> str:
        said = (self.stderr or self.stdout or "").strip()
        return f"{super().__str__()}\n{said}"


@dataclass(frozen=True)
class Ports:
    """The TCP ports of one test bed, all on 127.0.0.1."""

    kafka_controller: int
    broker_1: int
    broker_2: int
    broker_3: int
    etcd: int
    etcd_peer: int
    apiserver: int
    # The authenticated listeners of the brokers; 0 in the record of a bed started without them.
    broker_1_sasl: int = 0
    broker_2_sasl: int = 0
    broker_3_sasl: int = 0
    broker_1_ssl: int = 0
    broker_2_ssl: int = 0
    broker_3_ssl: int = 0
    broker_1_sasl_ssl: int = 0
    broker_2_sasl_ssl: int = 0
    broker_3_sasl_ssl: int = 0
    # The brokers' POD listeners (PLAINTEXT) for clients in Pods; see PodNetwork.
    broker_1_pod: int = 0
    broker_2_pod: int = 0
    broker_3_pod: int = 0

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(
            base,
            base + 1,
            base + 2,
            base + 3,
            base + 10,
            base + 11,
            base + 43,
            *(base + 21, base + 22, base + 23),
            *(base + 25, base + 26, base + 27),
            *(base + 31, base + 32, base + 33),
            *(base + 35, base + 36, base + 37),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        base = int(env.get(f"{ENV_PREFIX}PORT_BASE") or DEFAULT_PORT_BASE)
        ports = asdict(cls.from_base(base))
        for field in ports:
            value = env.get(f"{ENV_PREFIX}PORT_{field.upper()}")
            if value:
                ports[field] = int(value)
        return cls(**ports)

    def broker(self, node_id: int, protocol: str = "PLAINTEXT") -> int:
        """Port of a broker's listener: PLAINTEXT, SASL_PLAINTEXT, SASL_SSL, SSL or POD (0: not there)."""
        suffix = _LISTENER_PORT_SUFFIX[protocol]
        port: int = getattr(self, f"broker_{node_id}{suffix}")
        return port

    def by_service(self) -> dict[str, int]:
        """Port per service name (the names of STOP_ORDER, plus ``etcd-peer`` and ``broker-N-<listener>``)."""
        extra = {
            f"broker-{i}-{protocol.lower().replace('_', '-')}": self.broker(i, protocol)
            for protocol in ("SASL_PLAINTEXT", "SSL", "SASL_SSL", "POD")
            for i in BROKER_IDS
        }
        return {
            "kafka-controller": self.kafka_controller,
            **{f"broker-{i}": self.broker(i) for i in BROKER_IDS},
            "etcd": self.etcd,
            "etcd-peer": self.etcd_peer,
            "kube-apiserver": self.apiserver,
            **{name: port for name, port in extra.items() if port},
        }


@dataclass(frozen=True)
class PodNetwork:
    """The addresses through which Pods on the test bed's node reach the bed, derived from its ports.

    Pods live on ``subnet`` behind the Linux bridge ``bridge`` (made by :mod:`tests.testbed.node`),
    whose address ``gateway`` is also the node's IP. Nothing of the bed listens there but the node's
    forwarder, which passes ``gateway:<POD listener port>`` to each broker's POD listener (bound to
    127.0.0.1, advertised at the gateway) and ``service_ip:443`` (the ``kubernetes`` Service's
    ClusterIP, in the API server's self-signed certificate) to the API server. Beds with different
    ports get different subnets, so their nodes' bridges never collide.
    """

    index: int

    @classmethod
    def for_ports(cls, ports: Ports) -> PodNetwork:
        return cls(ports.apiserver // 100 % 250 + 1)

    @property
    def bridge(self) -> str:
        return f"dtcni{self.index}"

    @property
    def subnet(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def service_cidr(self) -> str:
        return f"10.96.{self.index}.0/24"

    @property
    def service_ip(self) -> str:
        """The ClusterIP of the ``kubernetes`` Service (the first address of ``service_cidr``)."""
        return f"10.96.{self.index}.1"


def ephemeral_port_range() -> tuple[int, int]:
    """The local ports the kernel hands out to outgoing connections (ip_local_port_range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def new_kafka_uuid() -> str:
    """What ``kafka-storage.sh random-uuid`` prints: 16 random bytes, URL-safe base64, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class Layout:
    """Where the programs (from the cache) and the state (data, logs, configs) of one test bed live."""

    cache_dir: Path
    state_dir: Path
    kafka_home: Path
    kubernetes_home: Path
    etcd_home: Path
    helm_home: Path
    prometheus_operator_crds: Path
    java: Path
    java_opts: tuple[str, ...]
    kafka_heap: str
    kafka_default_threads: bool = False

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], state_dir: Path | str | None = None, cache_dir: Path | str | None = None
    ) -> Layout:
        cache = Path(cache_dir or env.get("DURABLETOPIC_CACHE") or Path.home() / ".cache" / "durabletopic")
        cache = cache.expanduser()
        state = Path(state_dir or env.get(f"{ENV_PREFIX}DIR") or cache / "testbed").expanduser().absolute()
        java_home = env.get("JAVA_HOME")
        opts = env.get(f"{ENV_PREFIX}JAVA_OPTS")
        return cls(
            cache_dir=cache,
            state_dir=state,
            kafka_home=cache / f"kafka-{env.get('DURABLETOPIC_KAFKA_VERSION') or KAFKA_VERSION}",
            kubernetes_home=cache / f"kubernetes-{env.get('DURABLETOPIC_K8S_VERSION') or K8S_VERSION}",
            etcd_home=cache / f"etcd-{env.get('DURABLETOPIC_ETCD_VERSION') or ETCD_VERSION}",
            helm_home=cache / f"helm-{env.get('DURABLETOPIC_HELM_VERSION') or HELM_VERSION}",
            prometheus_operator_crds=cache
            / f"prometheus-operator-crds-{env.get('DURABLETOPIC_PROMETHEUS_OPERATOR_VERSION') or PROMETHEUS_OPERATOR_VERSION}",
            java=Path(
                env.get(f"{ENV_PREFIX}JAVA")
                or (Path(java_home) / "bin" / "java" if java_home else None)
                or shutil.which("java")
                or "java"
            ),
            java_opts=tuple(opts.split()) if opts is not None else DEFAULT_JAVA_OPTS,
            kafka_heap=env.get(f"{ENV_PREFIX}KAFKA_HEAP") or "384m",
            kafka_default_threads=kafka_threads(env) == "default",
        )

    @property
    def kafka_libs(self) -> Path:
        return self.kafka_home / "libs"

    @property
    def kubectl(self) -> Path:
        return self.kubernetes_home / "bin" / "kubectl"

    @property
    def kube_apiserver(self) -> Path:
        return self.kubernetes_home / "bin" / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self.kubernetes_home / "bin" / "kube-controller-manager"

    @property
    def etcd(self) -> Path:
        return self.etcd_home / "bin" / "etcd"

    @property
    def helm(self) -> Path:
        return self.helm_home / "bin" / "helm"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def config_dir(self) -> Path:
        return self.state_dir / "config"

    @property
    def certs_dir(self) -> Path:
        return self.state_dir / "certs"

    def programs_missing(self) -> list[str]:
        """The programs `make testbed-install` has not put in the cache, and java or openssl if absent."""
        missing = [
            str(p)
            for p in (
                self.kafka_home / ".complete",
                self.etcd_home / ".complete",
                self.kubernetes_home / ".complete",
                self.etcd,
                self.kube_apiserver,
                self.kube_controller_manager,
                self.kubectl,
            )
            if not p.exists()
        ]
        if shutil.which(str(self.java)) is None:
            missing.append(f"java ({self.java})")
        if shutil.which("openssl") is None:
            missing.append("openssl")
        return missing

    def log4j_config(self) -> Path:
        path = self.config_dir / "log4j2.xml"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(LOG4J2_XML)
        return path

    def java_command(
        self, main_class: str, *args: str, heap: str = "256m", log_file: Path | None = None
    ) -> list[str]:
        """A command line running ``main_class`` from the Kafka jars with the test bed's log4j2 config."""
        log_file = log_file or self.logs_dir / "kafka-tools.log"
        return [
            str(self.java),
            "-Xms64m",
            f"-Xmx{heap}",
            *self.java_opts,
            "-cp",
            f"{self.kafka_libs}/*",
            f"-Dlog4j2.configurationFile={self.log4j_config()}",
            f"-Dtestbed.log.file={log_file}",
            main_class,
            *args,
        ]

    def etcd_argv(self, ports: Ports) -> list[str]:
        client_url = f"http://127.0.0.1:{ports.etcd}"
        peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
        return [
            str(self.etcd),
            "--name=testbed",
            f"--data-dir={self.data_dir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=testbed={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: every request of a ServiceAccount (the operator under test)."""
        return self.logs_dir / "audit.log"

    def audit_policy(self) -> Path:
        path = self.config_dir / "audit-policy.yaml"
        path.write_text(AUDIT_POLICY)
        return path

    def apiserver_argv(self, ports: Ports, token_file: Path, service_account_key: Path) -> list[str]:
        return [
            str(self.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            # The node (tests/testbed/node.py) is reached at its IP, its name resolving nowhere.
            "--kubelet-preferred-address-types=InternalIP",
            f"--cert-dir={self.certs_dir}",
            f"--service-cluster-ip-range={PodNetwork.for_ports(ports).service_cidr}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={token_file}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={service_account_key}",
            f"--service-account-signing-key-file={service_account_key}",
            "--profiling=false",
            f"--audit-policy-file={self.audit_policy()}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=100",
            "--audit-log-maxbackup=1",
        ]

    def controller_manager_argv(self, kubeconfig: Path, service_account_key: Path) -> list[str]:
        return [
            str(self.kube_controller_manager),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            f"--controllers={','.join(KUBE_CONTROLLERS)}",
            f"--service-account-private-key-file={service_account_key}",
            f"--root-ca-file={self.certs_dir / 'apiserver.crt'}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
        ]

    def kafka_argv(self, node_id: int) -> list[str]:
        name = kafka_name(node_id)
        return self.java_command(
            "kafka.Kafka",
            str(self.config_dir / f"{name}.properties"),
            heap=self.kafka_heap,
            log_file=self.logs_dir / f"{name}.log",
        )


def kafka_name(node_id: int) -> str:
    return "kafka-controller" if node_id == 0 else f"broker-{node_id}"


def kafka_threads(env: Mapping[str, str]) -> str:
    value = env.get(f"{ENV_PREFIX}KAFKA_THREADS") or "small"
    if value not in ("small", "default"):
        raise ValueError(f"{ENV_PREFIX}KAFKA_THREADS must be small or default, not {value!r}")
    return value


def kafka_properties(
    node_id: int, ports: Ports, data_dir: Path, security: KafkaSecurity, *, default_threads: bool = False
) -> str:
    """The properties file of Kafka node `node_id` (0: the KRaft controller, 1..3: the brokers); with
    `default_threads`, the brokers keep Kafka's default network and I/O thread counts."""
    voters = f"0@127.0.0.1:{ports.kafka_controller}"
    protocols = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
    pod_host = PodNetwork.for_ports(ports).gateway
    common = {
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": ",".join(
            ["CONTROLLER:PLAINTEXT", *(f"{p}:{p}" for p in protocols), "POD:PLAINTEXT"]
        ),
        "log.dirs": str(data_dir / kafka_name(node_id)),
    }
    if node_id == 0:
        props = {
            "process.roles": "controller",
            "listeners": f"CONTROLLER://127.0.0.1:{ports.kafka_controller}",
        }
    else:
        listener = ",".join(f"{p}://127.0.0.1:{ports.broker(node_id, p)}" for p in protocols)
        pod_port = ports.broker(node_id, "POD")
        advertised = listener
        if pod_port:
            listener += f",POD://127.0.0.1:{pod_port}"
            advertised += f",POD://{pod_host}:{pod_port}"
        props = {
            "process.roles": "broker",
            "broker.rack": f"r{node_id}",
            "listeners": listener,
            "advertised.listeners": advertised,
            "inter.broker.listener.name": "PLAINTEXT",
            "offsets.topic.replication.factor": "3",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "group.initial.rebalance.delay.ms": "0",
            **({} if default_threads else {"num.network.threads": "2", "num.io.threads": "4"}),
            # Memory, not durability: the log cleaner allocates its 128 MB dedupe buffer on the heap,
            # and every dynamic log.cleaner.* change starts a new cleaner before the old buffer is
            # collected; with the default, the second such change kills a 384 MB broker (OOM).
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            # SASL_PLAINTEXT, SASL_SSL and SSL listeners: mechanisms, JAAS configs, PEM key store.
            **security.broker_properties(),
        }
    lines = [f"{k}={v}" for k, v in {**common, **props}.items()]
    return "# written by tests/testbed/config.py\n" + "\n".join(lines) + "\n"


def token_file_text(tokens: Mapping[str, str]) -> str:
    """The API server's static tokens: an admin in system:masters and a user with no bindings."""
    return f'{tokens["admin"]},admin,admin,"system:masters"\n{tokens["nobody"]},nobody,nobody\n'


def write_kubeconfig(path: Path | str, api_url: str, ca_file: Path, token: str, user: str) -> Path:
    """Write a kubeconfig that talks to the API server at `api_url` as the holder of ``token``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cluster: dict[str, Any] = {"server": api_url}
    if ca_file.exists():
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    else:
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "durabletopic-testbed", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": "durabletopic-testbed",
                "context": {"cluster": "durabletopic-testbed", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "durabletopic-testbed",
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


AUDIT_POLICY: Final = """\
# written by tests/testbed/config.py: the requests of ServiceAccounts, without bodies
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""

LOG4J2_XML: Final = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- written by tests/testbed/config.py: one log file per Kafka process, named by -Dtestbed.log.file -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <File name="file" fileName="${sys:testbed.log.file}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="WARN"/>
  </Loggers>
</Configuration>
"""
