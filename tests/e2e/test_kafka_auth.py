"""Kafka authentication against real brokers: SASL_PLAINTEXT, SASL_SSL and SSL listeners of the test bed.

The operator gets its client properties exactly as the Helm chart gives them: the chart is rendered
with `helm template`, its `client.properties` is taken from the ConfigMap and the files of the projected
volume (the SASL password, the CA, the client certificate) are laid out the way the kubelet would, under a
temporary directory instead of /etc/durabletopic/kafka. A separate operator process then talks to the
authenticated listener only; both Kafka clients of the operator must authenticate (confluent-kafka for
everything, kafka-python for the partition reassignment of a replication-factor change). Afterwards the
secret (the password, or the client key) must appear nowhere: not in the log, /metrics, the status, the
namespace's events or the process environment.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from durabletopic.adapters.kafka.admin import KafkaAdmin
from durabletopic.adapters.kafka.clientconfig import read_client_properties
from durabletopic.core import crd
from durabletopic.loop.ports import KafkaAdminError
from tests.e2e import helpers
from tests.e2e.conftest import Identity
from tests.e2e.helpers import Kube, condition, metric_value, ready, reason_of
from tests.testbed.operator_process import OperatorProcess

pytestmark = [pytest.mark.testbed]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "durable-topic-operator"
MOUNT = "/etc/durabletopic/kafka"  # where the chart mounts the client files (dto.kafkaDir)
PASSWORD_SECRET = "kafka-operator-password"
CA_SECRET = "kafka-ca"
CLIENT_TLS_SECRET = "kafka-client-tls"

CASES = [
    pytest.param("SASL_PLAINTEXT", "PLAIN", id="sasl_plaintext-plain"),
    pytest.param("SASL_PLAINTEXT", "SCRAM-SHA-256", id="sasl_plaintext-scram-sha-256"),
    pytest.param("SASL_SSL", "SCRAM-SHA-512", id="sasl_ssl-scram-sha-512"),
    pytest.param("SSL", None, id="ssl-mutual-tls"),
]


# ---------------------------------------------------------------------------------------- the chart


def render_chart(testbed: Any, *settings: str) -> list[dict[str, Any]]:  # the Testbed
    """`helm template` of the chart with `--set` settings: its objects."""
    result = subprocess.run(
        [str(testbed.helm_path), "template", "dto", str(CHART), "--namespace", "kafka-auth"]
        + [arg for setting in settings for arg in ("--set", setting)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def chart_settings(protocol: str, mechanism: str | None, bootstrap: str) -> list[str]:
    """Chart values for a client of the `protocol` listener, Secrets named as an installer would."""
    escaped = bootstrap.replace(",", "\\,")  # --set splits values at commas
    settings = [f"kafka.bootstrapServers={escaped}", f"kafka.securityProtocol={protocol}"]
    if protocol.startswith("SASL_"):
        settings += [
            f"kafka.sasl.mechanism={mechanism}",
            "kafka.sasl.username=operator",
            f"kafka.sasl.passwordSecret.name={PASSWORD_SECRET}",
        ]
    if protocol.endswith("SSL"):
        settings.append(f"kafka.tls.caSecret.name={CA_SECRET}")
    if protocol == "SSL":
        settings.append(f"kafka.tls.clientSecret.name={CLIENT_TLS_SECRET}")
    return settings


def find(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, (
        f"expected one {kind} named *{suffix}, got {[d['metadata']['name'] for d in found]}"
    )
    return found[0]


def lay_out_client_files(
    docs: list[dict[str, Any]], directory: Path, secret_data: Mapping[str, Mapping[str, str]]
) -> Path:
    """Do what the kubelet does with the chart's projected `kafka-client` volume, under `directory`.

    `secret_data` plays the Secrets (name -> key -> value). The properties file's paths, which name
    the mount point, are moved to `directory`. Returns the path of client.properties.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    deployment = find(docs, "Deployment")
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "kafka-client")
    configmap = find(docs, "ConfigMap", "-kafka-client")
    for source in volume["projected"]["sources"]:
        if "configMap" in source:
            assert source["configMap"]["name"] == configmap["metadata"]["name"]
            for item in source["configMap"]["items"]:
                text = configmap["data"][item["key"]].replace(MOUNT + "/", f"{directory}/")
                (directory / item["path"]).write_text(text)
        else:
            secret = source["secret"]
            for item in secret["items"]:
                path = directory / item["path"]
                path.write_text(secret_data[secret["name"]][item["key"]])
                path.chmod(0o600)
    return directory / "client.properties"


def secret_data(testbed: Any, password: str) -> dict[str, dict[str, str]]:
    security = testbed.kafka_security
    return {
        PASSWORD_SECRET: {"password": password},
        CA_SECRET: {"ca.crt": security.ca_file.read_text()},
        CLIENT_TLS_SECRET: {
            "tls.crt": security.client_cert_file.read_text(),
            "tls.key": security.client_key_file.read_text(),
        },
    }


def secret_strings(testbed: Any, protocol: str, password: str) -> list[str]:
    """What must never leak: the password, or (mutual TLS) every line of the client's private key."""
    if protocol.startswith("SASL_"):
        return [password]
    key = testbed.kafka_security.client_key_file.read_text()
    return [line for line in key.splitlines() if len(line) >= 16 and not line.startswith("-----")]


def test_chart_keeps_secrets_in_files_and_its_properties_connect(testbed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = render_chart(
        testbed,
        *chart_settings("SASL_SSL", "SCRAM-SHA-512", testbed.bootstrap_servers_sasl_ssl),
        # A Secret key other than the default, to see that the chart follows it.
        "kafka.sasl.passwordSecret.key=scram-password",
    )
    deployment = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for env in container["env"]:
        assert "PASSWORD" not in env["name"].upper() and "SECRET" not in env["name"].upper(), env
        assert "secretKeyRef" not in env.get("valueFrom", {}), env
    assert "envFrom" not in container
    mount = next(m for m in container["volumeMounts"] if m["name"] == "kafka-client")
    assert (mount["mountPath"], mount["readOnly"]) == (MOUNT, True)
    sources = next(v for v in pod["volumes"] if v["name"] == "kafka-client")["projected"]["sources"]
    secrets_mounted = {s["secret"]["name"]: s["secret"]["items"] for s in sources if "secret" in s}
    assert secrets_mounted == {
        PASSWORD_SECRET: [{"key": "scram-password", "path": "sasl-password"}],
        CA_SECRET: [{"key": "ca.crt", "path": "ca.crt"}],
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DURABLETOPIC_KAFKA_CONFIG_FILE"] == f"{MOUNT}/client.properties"

    properties = find(docs, "ConfigMap", "-kafka-client")["data"]["client.properties"]
    lines = {
        line.partition("=")[0]: line.partition("=")[2]
        for line in properties.splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert lines == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "operator",
        "sasl.password.file": f"{MOUNT}/sasl-password",
        "ssl.ca.location": f"{MOUNT}/ca.crt",
    }

    # The rendered properties, read by the operator's own reader, connect to the real SASL_SSL listener.
    data = secret_data(testbed, testbed.kafka_security.password)
    data[PASSWORD_SECRET] = {"scram-password": testbed.kafka_security.password}
    path = lay_out_client_files(docs, tmp_path / "kafka", data)
    config = read_client_properties(path)
    assert config["sasl.password"] == testbed.kafka_security.password
    assert config["ssl.ca.location"] == str(tmp_path / "kafka" / "ca.crt")

    async def brokers(password: str) -> list[int]:
        admin = KafkaAdmin(
            env["DURABLETOPIC_BOOTSTRAP_SERVERS"], {**config, "sasl.password": password}, request_timeout_s=5
        )
        try:
            return sorted(broker.node_id for broker in (await admin.describe_cluster()).brokers)
        finally:
            admin.close()

    assert asyncio.run(brokers(config["sasl.password"])) == [1, 2, 3]
    with pytest.raises(KafkaAdminError) as refused:
        asyncio.run(brokers("not-" + config["sasl.password"]))
    assert config["sasl.password"] not in str(refused.value)


def test_tls_listeners_verify_and_are_verified(testbed) -> None:  # type: ignore[no-untyped-def]
    """The TLS listeners present the bed's server certificate for 127.0.0.1; SSL wants a client one."""
    security = testbed.kafka_security
    sasl_ssl = testbed.ports.broker(1, "SASL_SSL")
    mutual = testbed.ports.broker(1, "SSL")

    def tls_alert(port: int, context: ssl.SSLContext) -> str:
        """The TLS alert the broker answers with ('' for none); raises when the client refuses the server."""
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"\0\0\0\0")  # an empty Kafka frame: whatever comes back, or the alert
            try:
                tls.recv(1)
            except ssl.SSLError as error:
                return str(error)
            except (ConnectionResetError, TimeoutError):
                pass
            return ""

    trusting = ssl.create_default_context(cafile=str(security.ca_file))
    assert tls_alert(sasl_ssl, trusting) == ""  # verified: the chain, and the IP address in the SAN
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_alert(sasl_ssl, ssl.create_default_context())  # the system's CAs do not know the bed's
    assert "ALERT_BAD_CERTIFICATE" in tls_alert(mutual, trusting)  # no client certificate
    with_cert = ssl.create_default_context(cafile=str(security.ca_file))
    with_cert.load_cert_chain(str(security.client_cert_file), str(security.client_key_file))
    assert tls_alert(mutual, with_cert) == ""


# ---------------------------------------------------------------------------------------- the operator


@pytest.fixture(scope="module")
def session_operator_paused(operator: OperatorProcess) -> Iterator[None]:
    """The session's operator stopped, so that only the operator under test reconciles; restarted after."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()


def start_operator(
    testbed: Any, kubeconfig: Path, namespace: str, bootstrap: str, properties: Path, log: Path
) -> OperatorProcess:
    proc = OperatorProcess(
        bootstrap_servers=bootstrap,
        kubeconfig=kubeconfig,
        log_path=log,
        env={
            "DURABLETOPIC_KAFKA_CONFIG_FILE": str(properties),
            "DURABLETOPIC_LEADER_ELECTION": "false",
            # Only this test's namespace: objects that other tests left behind stay untouched.
            "DURABLETOPIC_NAMESPACES": namespace,
        },
    )
    proc.start()
    return proc


def where_secrets_could_leak(
    testbed: Any, kube: Kube, namespace: str, proc: OperatorProcess
) -> dict[str, str]:
    """Everything the operator said or exposed: log, /metrics, the objects (status), events, environment."""
    assert proc.process is not None and proc.alive
    pid = proc.process.pid
    objects = kube.custom.list_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL)
    return {
        "log": proc.log_text(),
        "metrics": proc.metrics(),
        "status": json.dumps(objects, default=str),
        "events": testbed.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout,
        "environ": Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace"),
        "cmdline": Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"),
    }


def assert_nowhere(places: Mapping[str, str], needles: list[str]) -> None:
    assert needles and all(len(n) >= 16 for n in needles), "a secret too short to search for"
    leaks = [
        f"{needle[:4]}... in {place}"
        for place, text in places.items()
        for needle in needles
        if needle in text
    ]
    assert not leaks, f"secret material leaked: {leaks}"


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_operator_authenticates_and_keeps_the_secret(  # type: ignore[no-untyped-def]
    protocol: str,
    mechanism: str | None,
    testbed,
    kube: Kube,
    namespace: str,
    kafka_admin,
    namespaced_identity: Identity,
    session_operator_paused: None,
    tmp_path: Path,
) -> None:
    bootstrap = testbed.bootstrap_servers_for(protocol)
    password = testbed.kafka_security.password
    docs = render_chart(testbed, *chart_settings(protocol, mechanism, bootstrap))
    properties = lay_out_client_files(docs, tmp_path / "kafka", secret_data(testbed, password))
    text = properties.read_text()
    assert f"security.protocol={protocol}\n" in text and password not in text
    if mechanism:
        assert f"sasl.mechanism={mechanism}\n" in text and "sasl.password.file=" in text

    began = time.monotonic()
    proc = start_operator(
        testbed, namespaced_identity.kubeconfig, namespace, bootstrap, properties, tmp_path / "operator.log"
    )
    try:
        # A new topic: created with the durability floors and the asked-for config.
        topic = f"{namespace}.authed"
        kube.create(
            namespace, "authed", {"topicName": topic, "partitions": 2, "config": {"retention.ms": "7200000"}}
        )
        obj = ready(kube, namespace, "authed", timeout=60)
        facts = helpers.describe(kafka_admin, topic)
        assert facts is not None
        assert (facts.partitions, facts.replication_factor) == (2, 3)
        assert facts.overrides["min.insync.replicas"] == "2"
        assert facts.overrides["retention.ms"] == "7200000"
        assert obj["status"]["topicId"] == facts.topic_id

        # An RF 1 topic adopted with RF 3: the partition reassignment goes through kafka-python.
        grown = f"{namespace}.grown"
        helpers.create(kafka_admin, grown, 2, 1, {})
        kube.create(namespace, "grown", {"topicName": grown, "partitions": 2})
        obj = ready(kube, namespace, "grown", timeout=120)
        assert obj["status"]["replicasChange"]["state"] == "Done"
        facts = helpers.describe(kafka_admin, grown)
        assert facts is not None and facts.replication_factor == 3
        metrics = proc.metrics()
        assert (
            metric_value(metrics, "durabletopic_admin_requests_total", op="alter_reassignments", result="ok")
            or 0
        ) >= 1
        assert (
            metric_value(metrics, "durabletopic_admin_requests_total", op="list_reassignments", result="ok")
            or 0
        ) >= 1
        took = time.monotonic() - began

        places = where_secrets_could_leak(testbed, kube, namespace, proc)
        assert "durabletopic operator starting" in places["log"]
        assert f"DURABLETOPIC_KAFKA_CONFIG_FILE={properties}" in places["environ"]
        assert_nowhere(places, secret_strings(testbed, protocol, password))
        print(
            f"{protocol} {mechanism or ''}: create + RF 1->3 with an authenticated operator in {took:.1f} s"
        )
    finally:
        proc.stop()


@pytest.mark.parametrize(("protocol", "mechanism"), [CASES[1], CASES[2]])
def test_wrong_password_is_kafka_unavailable_and_never_logged(  # type: ignore[no-untyped-def]
    protocol: str,
    mechanism: str,
    testbed,
    kube: Kube,
    namespace: str,
    namespaced_identity: Identity,
    session_operator_paused: None,
    tmp_path: Path,
) -> None:
    wrong = "wrong-" + secrets.token_hex(12)
    bootstrap = testbed.bootstrap_servers_for(protocol)
    docs = render_chart(testbed, *chart_settings(protocol, mechanism, bootstrap))
    properties = lay_out_client_files(docs, tmp_path / "kafka", secret_data(testbed, wrong))
    proc = start_operator(
        testbed, namespaced_identity.kubeconfig, namespace, bootstrap, properties, tmp_path / "operator.log"
    )
    try:
        topic = f"{namespace}.refused"
        kube.create(namespace, "refused", {"topicName": topic, "partitions": 1})
        obj = reason_of(kube, namespace, "refused", "Reconciling", "KafkaUnavailable", timeout=90)
        assert condition(obj, "Ready")["status"] != "True"  # type: ignore[index]
        assert proc.alive, "a refused login must not stop the operator"
        assert metric_value(proc.metrics(), "durabletopic_kafka_up") == 0
        places = where_secrets_could_leak(testbed, kube, namespace, proc)
        assert_nowhere(places, [wrong, testbed.kafka_security.password])
        assert "authentication" in places["log"].lower(), "the log must say why Kafka is unavailable"
        print(f"{protocol} {mechanism}: refused login: {condition(obj, 'Reconciling')['message']!r}")  # type: ignore[index]
    finally:
        proc.stop()
