"""`--cluster NAME` of audit, plan and probe: the flags, and the way from a KafkaCluster and the Secrets and
ConfigMaps it names to the Kafka a command reaches (with a fake reader), checked to be the right cluster."""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiException

from durabletopic.adapters.kubernetes import clusterread
from durabletopic.adapters.kubernetes.clusterread import ClusterReader, KubeReadError
from durabletopic.cli import build_parser, main
from durabletopic.commands.common import kafka_target_from
from durabletopic.tools import clusterref
from durabletopic.tools.clusterref import KafkaTarget, TargetError, from_kafka_cluster, id_mismatch

COMMANDS = {
    "audit": [],
    "import": [],
    "plan": ["manifest.yaml"],
    "probe": ["--topic", "orders"],
}
BOOTSTRAP = "kafka-0.kafka:9092,kafka-1.kafka:9092"
KAFKA_ID = "oYRwszsXQ4iONsfXlF5fsA"
OTHER_ID = "Zx8v2mQkRk2b9Jm0cH3y4w"
SCRAM = {"username": "dto", "password": "s3cret"}
CA_PEM = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
CERT_PEM = "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"


def kafka_cluster(name: str = "east", status: Mapping[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": name, "generation": 1},
        "spec": {"bootstrapServers": BOOTSTRAP, **spec},
    }
    if status is not None:
        body["status"] = dict(status)
    return body


def sasl(name: str = "dto-user", **keys: str) -> dict[str, Any]:
    return {"sasl": {"mechanism": "SCRAM-SHA-512", "secretRef": {"namespace": "kafka", "name": name, **keys}}}


class FakeReader:
    """KafkaClusters by name and Secrets/ConfigMaps by (kind, namespace, name); `refuse` makes a read of
    the object of that key raise the error."""

    def __init__(
        self,
        clusters: list[dict[str, Any]] | None = None,
        objects: Mapping[tuple[str, str, str], Mapping[str, str]] | None = None,
        refuse: Mapping[tuple[str, str, str] | str, KubeReadError] | None = None,
    ) -> None:
        self.clusters = {c["metadata"]["name"]: c for c in clusters or []}
        self.objects = dict(objects or {})
        self.refuse = dict(refuse or {})
        self.reads: list[tuple[str, ...]] = []

    def kafka_cluster(self, name: str) -> Mapping[str, Any] | None:
        self.reads.append(("KafkaCluster", name))
        if name in self.refuse:
            raise self.refuse[name]
        return self.clusters.get(name)

    def source(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        self.reads.append((kind, namespace, name))
        if (kind, namespace, name) in self.refuse:
            raise self.refuse[(kind, namespace, name)]
        return self.objects.get((kind, namespace, name))


# ------------------------------------------------------------------------------------------ the flags


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cluster_is_an_alternative_to_bootstrap_servers(command: str) -> None:
    parser = build_parser()
    by_cluster = parser.parse_args([command, *COMMANDS[command], "--cluster", "east", "--kubeconfig", "kc"])
    assert (by_cluster.cluster, by_cluster.bootstrap_servers, by_cluster.kubeconfig) == ("east", None, "kc")
    by_servers = parser.parse_args([command, *COMMANDS[command], "--bootstrap-servers", BOOTSTRAP])
    assert (by_servers.cluster, by_servers.bootstrap_servers, by_servers.kubeconfig) == (
        None,
        BOOTSTRAP,
        None,
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        ([], "one of the arguments --bootstrap-servers --cluster is required"),
        (["--cluster", "east", "--bootstrap-servers", BOOTSTRAP], "not allowed with argument --cluster"),
    ],
    ids=["neither", "both"],
)
def test_exactly_one_of_cluster_and_bootstrap_servers(
    command: str, flags: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, *COMMANDS[command], *flags])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_bootstrap_servers_keep_the_properties_file(tmp_path: Path) -> None:
    properties = tmp_path / "client.properties"
    properties.write_text("security.protocol=SASL_PLAINTEXT\nclient.id=ops\n")
    args = build_parser().parse_args(
        ["audit", "--bootstrap-servers", BOOTSTRAP, "--kafka-config-file", str(properties)]
    )
    target = kafka_target_from(args)
    assert target == KafkaTarget(BOOTSTRAP, {"security.protocol": "SASL_PLAINTEXT", "client.id": "ops"})
    assert str(target) == BOOTSTRAP


# ------------------------------------------------------------------ from a KafkaCluster to properties


def test_sasl_credentials_from_a_secret_merged_over_the_base_config() -> None:
    reader = FakeReader([kafka_cluster(authentication=sasl())], {("Secret", "kafka", "dto-user"): SCRAM})
    base = {"client.id": "ops", "sasl.username": "someone-else"}
    target = from_kafka_cluster("east", reader, base)
    assert target.bootstrap_servers == BOOTSTRAP
    assert target.client_config == {
        "client.id": "ops",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "dto",
        "sasl.password": "s3cret",
    }
    assert (target.cluster, target.expected_id) == ("east", None)
    assert str(target) == f"{BOOTSTRAP} (KafkaCluster east)"


def test_mutual_tls_and_a_ca_bundle_from_a_config_map_become_pem_properties() -> None:
    spec = {
        "authentication": {"mutualTls": {"secretRef": {"namespace": "kafka", "name": "dto-cert"}}},
        "tls": {"enabled": True, "caRef": {"kind": "ConfigMap", "namespace": "kafka", "name": "kafka-ca"}},
    }
    objects = {
        ("Secret", "kafka", "dto-cert"): {"tls.crt": CERT_PEM, "tls.key": KEY_PEM},
        ("ConfigMap", "kafka", "kafka-ca"): {"ca.crt": CA_PEM},
    }
    target = from_kafka_cluster("east", FakeReader([kafka_cluster(**spec)], objects), {})
    assert target.client_config == {
        "security.protocol": "SSL",
        "ssl.certificate.pem": CERT_PEM,
        "ssl.key.pem": KEY_PEM,
        "ssl.ca.pem": CA_PEM,
    }


def test_no_authentication_needs_no_secret() -> None:
    reader = FakeReader([kafka_cluster()])
    assert from_kafka_cluster("east", reader, {}).client_config == {}
    assert reader.reads == [("KafkaCluster", "east")]


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        (FakeReader(), "KafkaCluster east not found"),
        (
            FakeReader([kafka_cluster(authentication=sasl())]),
            "KafkaCluster east: Secret kafka/dto-user not found",
        ),
        (
            FakeReader(
                [kafka_cluster(authentication=sasl(passwordKey="scram-password"))],
                {("Secret", "kafka", "dto-user"): SCRAM},
            ),
            "KafkaCluster east: Secret kafka/dto-user has no key scram-password",
        ),
        (
            FakeReader(
                [kafka_cluster(authentication=sasl())],
                refuse={
                    ("Secret", "kafka", "dto-user"): KubeReadError(
                        "not allowed to read Secret kafka/dto-user"
                    )
                },
            ),
            "KafkaCluster east: not allowed to read Secret kafka/dto-user",
        ),
        (
            FakeReader(
                refuse={"east": KubeReadError("not allowed to read KafkaCluster east (403 Forbidden)")}
            ),
            "not allowed to read KafkaCluster east (403 Forbidden)",
        ),
        (
            FakeReader([kafka_cluster(authentication={"sasl": sasl()["sasl"], "mutualTls": {}})]),
            "KafkaCluster east cannot be used: spec.authentication",
        ),
    ],
    ids=["no-kafkacluster", "no-secret", "no-key", "secret-forbidden", "kafkacluster-forbidden", "bad-spec"],
)
def test_what_is_missing_is_named(reader: FakeReader, message: str) -> None:
    with pytest.raises(TargetError) as refused:
        from_kafka_cluster("east", reader, {})
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("spec_id", "status", "expected"),
    [
        (KAFKA_ID, None, (KAFKA_ID, "spec.clusterId")),
        (None, {"clusterId": KAFKA_ID}, (KAFKA_ID, "status.clusterId")),
        (KAFKA_ID, {"clusterId": OTHER_ID}, (KAFKA_ID, "spec.clusterId")),
        (None, {"clusterId": ""}, (None, "spec.clusterId")),
        (None, None, (None, "spec.clusterId")),
    ],
)
def test_the_expected_cluster_id_comes_from_the_spec_else_the_status(
    spec_id: str | None, status: dict[str, str] | None, expected: tuple[str | None, str]
) -> None:
    spec = {"clusterId": spec_id} if spec_id else {}
    target = from_kafka_cluster("east", FakeReader([kafka_cluster(status=status, **spec)]), {})
    assert (target.expected_id, target.expected_id_field) == expected


def test_a_cluster_id_mismatch_names_both_ids() -> None:
    target = KafkaTarget(BOOTSTRAP, cluster="east", expected_id=KAFKA_ID, expected_id_field="spec.clusterId")
    assert id_mismatch(target, KAFKA_ID) is None
    message = id_mismatch(target, OTHER_ID)
    assert message is not None
    assert f"reports cluster id {OTHER_ID}" in message
    assert f"KafkaCluster east must be cluster {KAFKA_ID} (spec.clusterId)" in message
    assert "reports no cluster id" in (id_mismatch(target, None) or "")
    assert id_mismatch(KafkaTarget(BOOTSTRAP), OTHER_ID) is None


# ------------------------------------------------------------------------------- the commands' path


@pytest.fixture
def kafka_reports(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The cluster id Kafka reports: the only item, which a test may replace."""
    reported: list[str | None] = [KAFKA_ID]

    async def reported_cluster_id(target: KafkaTarget, timeout_s: float) -> str | None:
        return reported[0]

    monkeypatch.setattr(clusterref, "reported_cluster_id", reported_cluster_id)
    return reported


def use_reader(monkeypatch: pytest.MonkeyPatch, reader: FakeReader) -> list[tuple[str | None, float]]:
    """The commands read through `reader`; returns the (kubeconfig, timeout) each reader was made with."""
    made: list[tuple[str | None, float]] = []

    def make(kubeconfig: str | None = None, *, timeout_s: float = 10.0) -> FakeReader:
        made.append((kubeconfig, timeout_s))
        return reader

    monkeypatch.setattr(clusterread, "ClusterReader", make)
    return made


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_cluster_flag_reads_through_the_kubeconfig_and_checks_the_id(
    monkeypatch: pytest.MonkeyPatch, kafka_reports: list[str | None], tmp_path: Path
) -> None:
    properties = tmp_path / "client.properties"
    properties.write_text("client.id=ops\n")
    cluster = kafka_cluster(authentication=sasl(), clusterId=KAFKA_ID)
    made = use_reader(monkeypatch, FakeReader([cluster], {("Secret", "kafka", "dto-user"): SCRAM}))
    args = parse(
        "audit", "--cluster", "east", "--kubeconfig", "/k/config", "--kafka-config-file", str(properties)
    )
    target = kafka_target_from(args)
    assert made == [("/k/config", 10.0)]
    assert target.bootstrap_servers == BOOTSTRAP
    assert target.client_config["client.id"] == "ops"
    assert target.client_config["sasl.password"] == "s3cret"
    assert target.expected_id == KAFKA_ID


def test_the_wrong_cluster_is_refused(
    monkeypatch: pytest.MonkeyPatch, kafka_reports: list[str | None]
) -> None:
    kafka_reports[0] = OTHER_ID
    use_reader(monkeypatch, FakeReader([kafka_cluster(clusterId=KAFKA_ID)]))
    with pytest.raises(TargetError) as refused:
        kafka_target_from(parse("audit", "--cluster", "east"))
    assert KAFKA_ID in str(refused.value) and OTHER_ID in str(refused.value)


def test_without_an_expected_id_kafka_is_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(target: KafkaTarget, timeout_s: float) -> str | None:
        raise AssertionError("no cluster id to check")

    monkeypatch.setattr(clusterref, "reported_cluster_id", never)
    use_reader(monkeypatch, FakeReader([kafka_cluster()]))
    assert kafka_target_from(parse("audit", "--cluster", "east")).expected_id is None


def test_bootstrap_servers_make_no_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    made = use_reader(monkeypatch, FakeReader())
    kafka_target_from(parse("audit", "--bootstrap-servers", BOOTSTRAP))
    assert made == []


def manifest(tmp_path: Path) -> str:
    path = tmp_path / "orders.yaml"
    path.write_text(
        "apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata:\n  name: orders\n"
        "  namespace: shop\nspec:\n  partitions: 3\n"
    )
    return str(path)


@pytest.mark.parametrize("command", ["audit", "plan", "probe"])
def test_each_command_exits_2_naming_the_missing_secret(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_reader(monkeypatch, FakeReader([kafka_cluster(authentication=sasl(name="gone"))]))
    extra = {"audit": [], "plan": [manifest(tmp_path)], "probe": ["--topic", "orders"]}[command]
    assert main([command, *extra, "--cluster", "east"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"durabletopic {command}: KafkaCluster east: Secret kafka/gone not found"
    )


@pytest.mark.parametrize("command", ["audit", "plan", "probe"])
def test_each_command_exits_2_on_the_wrong_cluster(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    kafka_reports: list[str | None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kafka_reports[0] = OTHER_ID
    use_reader(monkeypatch, FakeReader([kafka_cluster(status={"clusterId": KAFKA_ID})]))
    extra = {"audit": [], "plan": [manifest(tmp_path)], "probe": ["--topic", "orders"]}[command]
    assert main([command, *extra, "--cluster", "east"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"durabletopic {command}: Kafka at {BOOTSTRAP} reports cluster id {OTHER_ID}")
    assert f"must be cluster {KAFKA_ID} (status.clusterId)" in err


# ------------------------------------------------------------------------------ the Kubernetes reader


def write_kubeconfig(path: Path, server: str = "https://127.0.0.1:1") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(json.dumps(config))
    return path


def api_exception(status: int, reason: str, body: Mapping[str, Any] | str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = body if isinstance(body, str) else json.dumps(body)
    return error


class Raising:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return call


def test_the_kubeconfig_default_is_kubeconfig_then_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/etc/kube/config")
    assert clusterread.kubeconfig_in_use(None) == "/etc/kube/config"
    assert clusterread.kubeconfig_in_use("/mine") == "/mine"
    monkeypatch.delenv("KUBECONFIG")
    assert clusterread.kubeconfig_in_use(None) == "~/.kube/config"


def test_a_kubeconfig_that_does_not_load_is_named(tmp_path: Path) -> None:
    with pytest.raises(KubeReadError, match=f"cannot load the kubeconfig {tmp_path}/missing"):
        ClusterReader(str(tmp_path / "missing"))


def test_no_kubeconfig_and_no_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeReadError, match="nor is this a pod with a ServiceAccount token"):
        ClusterReader()


def test_the_kubeconfig_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", "https://10.0.0.9:6443")))
    reader = ClusterReader()
    reader._custom = Raising(api_exception(401, "Unauthorized", {"message": "Unauthorized"}))
    with pytest.raises(KubeReadError, match=r"the API server at https://10\.0\.0\.9:6443 refused"):
        reader.kafka_cluster("east")


@pytest.mark.parametrize(
    ("error", "found"),
    [
        (api_exception(404, "Not Found", {"message": "not found", "details": {"name": "east"}}), None),
        (
            api_exception(404, "Not Found", "404 page not found"),
            "is the CRD kafkaclusters.durabletopic.dev installed?",
        ),
        (
            api_exception(403, "Forbidden", {"message": 'User "nobody" cannot get resource "kafkaclusters"'}),
            'not allowed to read KafkaCluster east (403 Forbidden, RBAC): User "nobody" cannot get',
        ),
        (api_exception(500, "Internal Server Error", "etcd is down"), "cannot read KafkaCluster east: 500"),
    ],
    ids=["no-object", "no-crd", "forbidden", "server-error"],
)
def test_kafka_cluster_read_errors(tmp_path: Path, error: ApiException, found: str | None) -> None:
    reader = ClusterReader(str(write_kubeconfig(tmp_path / "config")))
    reader._custom = Raising(error)
    if found is None:
        assert reader.kafka_cluster("east") is None
        return
    with pytest.raises(KubeReadError) as refused:
        reader.kafka_cluster("east")
    assert found in str(refused.value)


class Found:
    def __init__(self, data: dict[str, str]) -> None:
        self.data = data


class FakeCore:
    def __init__(self, secret: dict[str, str], config_map: dict[str, str]) -> None:
        self.secret, self.config_map = secret, config_map

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> Found:
        return Found(self.secret)

    def read_namespaced_config_map(self, name: str, namespace: str, **_: Any) -> Found:
        return Found(self.config_map)


def test_secrets_are_decoded_and_config_maps_read_as_they_are(tmp_path: Path) -> None:
    reader = ClusterReader(str(write_kubeconfig(tmp_path / "config")))
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in SCRAM.items()}
    binary = base64.b64encode(b"\xff\xfe keystore").decode()
    reader._core = FakeCore({**encoded, "keystore.p12": binary}, {"ca.crt": CA_PEM})
    assert reader.source("Secret", "kafka", "dto-user") == SCRAM
    assert reader.source("ConfigMap", "kafka", "kafka-ca") == {"ca.crt": CA_PEM}


def test_a_missing_or_forbidden_secret(tmp_path: Path) -> None:
    reader = ClusterReader(str(write_kubeconfig(tmp_path / "config")))
    reader._core = Raising(api_exception(404, "Not Found", {"message": "not found"}))
    assert reader.source("Secret", "kafka", "dto-user") is None
    reader._core = Raising(api_exception(403, "Forbidden", {"message": 'secrets "dto-user" is forbidden'}))
    with pytest.raises(KubeReadError, match=r"not allowed to read Secret kafka/dto-user \(403 Forbidden"):
        reader.source("Secret", "kafka", "dto-user")
