"""The Helm chart and deploy/: lint, schema, rendering, least-privilege RBAC, chart == deploy/, and a
real install, upgrade and uninstall on the test bed's API server."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from durabletopic.adapters.kafka.clientconfig import read_client_properties
from durabletopic.app.settings import ENV_PREFIX, OperatorSettings
from tests.monitoring.dashboard import exported_series
from tests.packaging.conftest import (
    CHART,
    CRD_FILES,
    DEPLOY,
    LABEL,
    ROOT,
    HelmRelease,
    Render,
    by_kind,
    can_i,
    docs,
    dry_run_apply,
    one,
    only_here,
    rule_set,
    run,
)

KAFKA_DIR = "/etc/durabletopic/kafka"
SASL_VALUES = [
    "--set",
    "kafka.securityProtocol=SASL_SSL,kafka.sasl.mechanism=SCRAM-SHA-256,kafka.sasl.username=dto",
    "--set",
    "kafka.sasl.passwordSecret.name=kafka-password,kafka.sasl.passwordSecret.key=pw",
    "--set",
    "kafka.tls.caSecret.name=kafka-ca,kafka.tls.clientSecret.name=kafka-client-tls",
]
# A DurabilityPolicy spec for the renders; it selects a label no namespace of the test bed carries.
SOME_POLICY = {
    "namespaceSelector": {"matchLabels": {"durabletopic.dev/packaging-test": "no-such-namespace"}},
    "minReplicationFactor": 3,
}
POLICY_VALUES = [
    "--set",
    "defaultPolicy.enabled=true,internalTopicExceptions={connect-offsets}",
    "--set-json",
    f"defaultPolicy.spec={json.dumps(SOME_POLICY)}",
]

# What the operator does against the API server, and nothing more.
NAMESPACED_RULES = frozenset(
    {
        *(("durabletopic.dev", "durabletopics", v, "*") for v in ("list", "watch", "patch")),
        ("durabletopic.dev", "durabletopics/status", "patch", "*"),
        ("", "events", "create", "*"),
        *(("", "configmaps", v, "*") for v in ("create", "patch")),
    }
)
# Cluster-scoped, so granted cluster-wide in both modes: DurabilityPolicies and the namespaces whose
# labels their selectors match.
POLICY_RULES = frozenset(
    {
        *(("durabletopic.dev", "durabilitypolicies", v, "*") for v in ("list", "watch")),
        ("durabletopic.dev", "durabilitypolicies/status", "patch", "*"),
        *(("", "namespaces", v, "*") for v in ("list", "watch")),
    }
)
# KafkaClusters are cluster-scoped too: granted cluster-wide in both modes.
CLUSTER_RULES = frozenset(
    {
        *(("durabletopic.dev", "kafkaclusters", v, "*") for v in ("list", "watch")),
        ("durabletopic.dev", "kafkaclusters/status", "patch", "*"),
    }
)
CRD_RULES = frozenset(
    ("apiextensions.k8s.io", "customresourcedefinitions", v, "*") for v in ("list", "watch")
)
LEASE_RULES = frozenset(
    {
        ("coordination.k8s.io", "leases", "create", "*"),
        ("coordination.k8s.io", "leases", "get", "durable-topic-operator"),
        ("coordination.k8s.io", "leases", "update", "durable-topic-operator"),
    }
)


CREDENTIALS_IN_OWN_NAMESPACE = frozenset(("", r, "get", "*") for r in ("secrets", "configmaps"))


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def env_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objects)["env"]}


def client_properties(objects: list[dict[str, Any]]) -> str:
    (cm,) = [c for c in by_kind(objects, "ConfigMap") if "client.properties" in c.get("data", {})]
    text: str = cm["data"]["client.properties"]
    return text


# ---------------------------------------------------------------------------------- lint and schema


@pytest.mark.parametrize(
    "values",
    [[], SASL_VALUES, ["--set", "watchNamespaces={team-a,team-b}"], POLICY_VALUES],
    ids=["defaults", "sasl-tls", "namespaced", "default-policy"],
)
def test_helm_lint_is_clean(helm: Path, values: list[str]) -> None:
    result = run([helm, "lint", "--strict", CHART, *values])
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("replicaCount=two", "/replicaCount"),
        ("replicaCount=0", "/replicaCount"),
        ("minReplicationFactor=0", "/minReplicationFactor"),
        ("minInSyncReplicas=0", "/minInSyncReplicas"),
        ("kafka.securityProtocol=FOO", "/kafka/securityProtocol"),
        ("kafka.sasl.mechanism=GSSAPI", "/kafka/sasl/mechanism"),
        ("kafka.bootstrapServers=no-port", "/kafka/bootstrapServers"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("logLevel=TRACE", "/logLevel"),
        ("admissionPolicy.validationActions={Block}", "/admissionPolicy/validationActions"),
        ("kafka.extraProperties.sasl\\.password=hunter2", "sasl.password"),
        ("replicas=3", "replicas"),
        # Two replicas without leader election would both reconcile.
        ("leaderElection=false", "/replicaCount"),
        # SASL without a username and a password Secret.
        ("kafka.securityProtocol=SASL_SSL", "/kafka/sasl"),
        # Topic names only: they are written into the admission policy's CEL as string literals.
        ("internalTopicExceptions={it's}", "/internalTopicExceptions/0"),
        ("internalTopicExceptions={..}", "/internalTopicExceptions/0"),
        ("defaultPolicy.enable=true", "enable"),
        # A default policy without a namespaceSelector would select no namespace.
        ("defaultPolicy.enabled=true", "/defaultPolicy/spec"),
        ("defaultPolicy.name=Not_A_Name", "/defaultPolicy/name"),
    ],
)
def test_schema_rejects_wrong_values(helm: Path, setting: str, complaint: str) -> None:
    result = run([helm, "template", "x", CHART, "--set", setting], check=False)
    assert result.returncode != 0, f"{setting} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert complaint in result.stderr, result.stderr


def test_schema_rejects_an_empty_default_policy_selector(helm: Path) -> None:
    # `namespaceSelector: {}` selects no namespace: an enabled default policy that would do nothing.
    empty = [
        "--set",
        "defaultPolicy.enabled=true",
        "--set-json",
        'defaultPolicy.spec={"namespaceSelector":{}}',
    ]
    result = run([helm, "template", "x", CHART, *empty], check=False)
    assert result.returncode != 0, "an empty namespaceSelector was accepted"
    assert "/defaultPolicy/spec/namespaceSelector" in result.stderr, result.stderr
    # Disabled, the spec is not checked: the values can be prepared before they are turned on.
    run([helm, "template", "x", CHART, "--set-json", 'defaultPolicy.spec={"namespaceSelector":{}}'])


def test_chart_crds_are_the_generated_ones() -> None:
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(CRD_FILES)
    assert sorted(p.name for p in (ROOT / "crds").iterdir()) == sorted(CRD_FILES)
    for name in CRD_FILES:
        assert (CHART / "crds" / name).read_text() == (ROOT / "crds" / name).read_text(), (
            f"the chart's {name} differs from crds/: run `make crds`"
        )


# -------------------------------------------------------------------------------------- rendering


def test_deployment_defaults(helm_template: Render) -> None:
    objects = helm_template()
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    c = container(objects)
    assert c["command"] == ["durabletopic", "run"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(c["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(
        c["resources"]["limits"]
    )
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 9102, "health": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = env_of(objects)
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["DURABLETOPIC_LEADER_ELECTION"] == "true"
    assert env["DURABLETOPIC_LEADER_ELECTION_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # Every operator setting comes from the values, under the name the operator reads.
    assert {ENV_PREFIX + name.upper() for name in OperatorSettings.model_fields} <= set(env)
    assert env["DURABLETOPIC_MIN_REPLICATION_FACTOR"] == "3"
    assert env["DURABLETOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert env["DURABLETOPIC_NAMESPACES"] == ""
    assert env["DURABLETOPIC_KAFKA_CONFIG_FILE"] == f"{KAFKA_DIR}/client.properties"
    # What the operator makes of that environment is what the values say.
    settings = OperatorSettings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert settings.min_replication_factor == 3 and settings.metrics_port == 9102
    assert settings.namespaces == ()
    service = one(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_values_reach_the_operator_settings(helm_template: Render) -> None:
    objects = helm_template(
        "--set",
        "watchNamespaces={team-a,team-b},minReplicationFactor=4,minInSyncReplicas=3",
        "--set-json",
        "sweepIntervalSeconds=2.5",
        "--set",
        "kafka.bootstrapServers=b1:9093\\,b2:9093,batchSize=50,statusWriters=3,replicaCount=3",
    )
    env = env_of(objects)
    settings = OperatorSettings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert settings.namespaces == ("team-a", "team-b")
    assert (settings.min_replication_factor, settings.min_insync_replicas) == (4, 3)
    assert settings.sweep_interval_seconds == 2.5
    assert settings.bootstrap_servers == "b1:9093,b2:9093"
    assert (settings.batch_size, settings.status_writers) == (50, 3)
    assert one(objects, "Deployment")["spec"]["replicas"] == 3


def test_sasl_password_is_a_file_never_env(helm_template: Render, tmp_path: Path) -> None:
    text = helm_template(*SASL_VALUES, text=True)
    objects = docs(text)
    c = container(objects)
    # No environment variable is taken from a Secret, and the password is nowhere in the manifests.
    assert all("secretKeyRef" not in json.dumps(e) for e in c["env"])
    assert "sasl.password=" not in text
    assert not by_kind(objects, "Secret")
    props = client_properties(objects)
    assert "security.protocol=SASL_SSL" in props.splitlines()
    assert "sasl.mechanism=SCRAM-SHA-256" in props.splitlines()
    assert "sasl.username=dto" in props.splitlines()
    assert f"sasl.password.file={KAFKA_DIR}/sasl-password" in props.splitlines()
    assert f"ssl.ca.location={KAFKA_DIR}/ca.crt" in props.splitlines()
    assert f"ssl.certificate.location={KAFKA_DIR}/tls.crt" in props.splitlines()
    assert f"ssl.key.location={KAFKA_DIR}/tls.key" in props.splitlines()
    # The files those properties name are the projected Secret keys, mounted where they point.
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == KAFKA_DIR]
    assert mount["readOnly"] is True
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    files = {
        item["path"]: (source[kind]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for kind in source
        for item in source[kind]["items"]
    }
    assert files == {
        "client.properties": ("durable-topic-operator-kafka-client", "client.properties"),
        "sasl-password": ("kafka-password", "pw"),
        "ca.crt": ("kafka-ca", "ca.crt"),
        "tls.crt": ("kafka-client-tls", "tls.crt"),
        "tls.key": ("kafka-client-tls", "tls.key"),
    }
    # The operator reads the password from the file into sasl.password.
    (tmp_path / "sasl-password").write_text("s3cret\n")
    properties_file = tmp_path / "client.properties"
    properties_file.write_text(props.replace(KAFKA_DIR, str(tmp_path)))
    properties = read_client_properties(properties_file)
    assert properties["sasl.password"] == "s3cret"
    assert "sasl.password.file" not in properties
    assert properties["security.protocol"] == "SASL_SSL"


def test_kafka_client_change_rolls_the_pods(helm_template: Render) -> None:
    def checksum(*args: str) -> str:
        pod = one(helm_template(*args), "Deployment")["spec"]["template"]
        value: str = pod["metadata"]["annotations"]["checksum/kafka-client"]
        return value

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "kafka.extraProperties.client\\.id=other")


def test_rbac_cluster_wide_is_least_privilege(helm_template: Render) -> None:
    objects = helm_template()
    roles = {
        (r["kind"], r["metadata"]["name"]): rule_set(r)
        for r in by_kind(objects, "ClusterRole") + by_kind(objects, "Role")
    }
    assert roles == {
        ("ClusterRole", "durable-topic-operator"): NAMESPACED_RULES,
        ("ClusterRole", "durable-topic-operator-discovery"): CRD_RULES,
        ("ClusterRole", "durable-topic-operator-policies"): POLICY_RULES,
        ("ClusterRole", "durable-topic-operator-clusters"): CLUSTER_RULES,
        ("Role", "durable-topic-operator-leader-election"): LEASE_RULES,
    }
    (lease_role,) = by_kind(objects, "Role")
    assert lease_role["metadata"]["namespace"] == "durable-topic-operator"
    sa = one(objects, "ServiceAccount")["metadata"]
    for binding in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}
        ]
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in roles
    granted = {(g, r) for rules in roles.values() for g, r, _, _ in rules}
    assert not any(r in ("secrets", "*") or g == "*" for g, r in granted)


def test_rbac_namespaced_mode(helm_template: Render) -> None:
    objects = helm_template("--set", "watchNamespaces={team-a,team-b}", release="r1", namespace="ops")
    roles = {
        (r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]): rule_set(r)
        for r in by_kind(objects, "ClusterRole") + by_kind(objects, "Role")
    }
    assert roles == {
        ("ClusterRole", None, "r1-durable-topic-operator-discovery"): CRD_RULES,
        ("ClusterRole", None, "r1-durable-topic-operator-policies"): POLICY_RULES,
        ("ClusterRole", None, "r1-durable-topic-operator-clusters"): CLUSTER_RULES,
        ("Role", "team-a", "r1-durable-topic-operator"): NAMESPACED_RULES,
        ("Role", "team-b", "r1-durable-topic-operator"): NAMESPACED_RULES,
        ("Role", "ops", "r1-durable-topic-operator-leader-election"): LEASE_RULES,
    }
    bindings = {
        (b["metadata"].get("namespace"), b["roleRef"]["name"]) for b in by_kind(objects, "RoleBinding")
    }
    assert bindings == {
        ("team-a", "r1-durable-topic-operator"),
        ("team-b", "r1-durable-topic-operator"),
        ("ops", "r1-durable-topic-operator-leader-election"),
    }
    # The cluster-scoped rules are bound cluster-wide, to the release's ServiceAccount.
    cluster_bindings = {b["roleRef"]["name"]: b["subjects"] for b in by_kind(objects, "ClusterRoleBinding")}
    subjects = [{"kind": "ServiceAccount", "name": "r1-durable-topic-operator", "namespace": "ops"}]
    assert cluster_bindings == {
        "r1-durable-topic-operator-discovery": subjects,
        "r1-durable-topic-operator-policies": subjects,
        "r1-durable-topic-operator-clusters": subjects,
    }
    assert env_of(objects)["DURABLETOPIC_NAMESPACES"] == "team-a,team-b"
    admission_bindings = by_kind(objects, "ValidatingAdmissionPolicyBinding")
    assert len(admission_bindings) == 2
    for binding in admission_bindings:
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}
            ]
        }


def test_cluster_scoped_names_carry_the_release(helm_template: Render) -> None:
    a = helm_template(*POLICY_VALUES, release="one")
    b = helm_template(*POLICY_VALUES, release="two")
    cluster_scoped = (
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "DurabilityPolicy",
    )
    names_a = {(o["kind"], o["metadata"]["name"]) for o in a if o["kind"] in cluster_scoped}
    names_b = {(o["kind"], o["metadata"]["name"]) for o in b if o["kind"] in cluster_scoped}
    assert len(names_a) == 13 and not names_a & names_b
    assert ("DurabilityPolicy", "one-durable-topic-operator-default") in names_a


def admission_policy(objects: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    (policy,) = [
        p
        for p in by_kind(objects, "ValidatingAdmissionPolicy")
        if p["metadata"]["name"].endswith(f"-{suffix}")
    ]
    return policy


def test_admission_policy_floors_from_values(helm_template: Render) -> None:
    policy = admission_policy(helm_template("--set", "minReplicationFactor=5,minInSyncReplicas=3"), "floors")
    validations = policy["spec"]["validations"]
    floors = [v for v in validations if "variables.topicName" not in v["expression"]]
    assert [v["expression"] for v in floors] == [
        "variables.replicationFactor >= 5",
        "variables.minInSyncReplicas >= 3",
    ]
    assert "floor of 5" in floors[0]["messageExpression"]
    assert "floor of 3" in floors[1]["messageExpression"]
    assert not by_kind(helm_template("--set", "admissionPolicy.enabled=false"), "ValidatingAdmissionPolicy")


def test_internal_topic_exceptions_reach_the_operator_and_the_admission_policy(helm_template: Render) -> None:
    def exceptions(objects: list[dict[str, Any]]) -> tuple[str, tuple[str, ...], str]:
        """What the Deployment sets, what the operator reads from it, and the admission policy's rule."""
        env = env_of(objects)
        settings = OperatorSettings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
        (rule,) = [
            v["expression"]
            for v in admission_policy(objects, "floors")["spec"]["validations"]
            if "variables.topicName" in v["expression"]
        ]
        return env["DURABLETOPIC_INTERNAL_TOPIC_EXCEPTIONS"], settings.internal_topic_exceptions, rule

    value, setting, rule = exceptions(helm_template())
    assert (value, setting) == ("", ())
    assert rule.endswith("variables.topicName in []"), rule

    value, setting, rule = exceptions(
        helm_template("--set", "internalTopicExceptions={connect-offsets,__consumer_offsets}")
    )
    assert value == "connect-offsets,__consumer_offsets"
    assert setting == ("connect-offsets", "__consumer_offsets")
    assert rule.endswith('variables.topicName in ["connect-offsets","__consumer_offsets"]'), rule


def values_example_policy() -> dict[str, Any]:
    """The example spec of a default DurabilityPolicy that values.yaml documents in its comments."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    block = []
    for line in lines[lines.index("  #   spec:") + 1 :]:
        if not line.startswith("  #     "):
            break
        block.append(line.removeprefix("  #     "))
    spec: dict[str, Any] = yaml.safe_load("\n".join(block))
    assert spec["namespaceSelector"] and len(spec) > 5, spec
    return spec


def test_default_policy_is_off_by_default(helm_template: Render) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["defaultPolicy"] == {"enabled": False, "name": "", "spec": {}}
    assert not by_kind(helm_template(), "DurabilityPolicy")
    # A spec alone does not create it.
    assert not by_kind(
        helm_template("--set-json", f"defaultPolicy.spec={json.dumps(SOME_POLICY)}"), "DurabilityPolicy"
    )


def test_default_policy_from_values(helm_template: Render, tmp_path: Path) -> None:
    example = values_example_policy()
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"defaultPolicy": {"enabled": True, "spec": example}}))
    policy = one(helm_template("-f", str(values), release="r1", namespace="ops"), "DurabilityPolicy")
    assert policy["apiVersion"] == "durabletopic.dev/v1alpha1"
    assert policy["metadata"]["name"] == "r1-durable-topic-operator-default"
    assert "namespace" not in policy["metadata"], "a DurabilityPolicy is cluster-scoped"
    assert policy["metadata"]["labels"]["app.kubernetes.io/instance"] == "r1"
    assert policy["spec"] == example

    # `matchLabels: {}` selects every namespace, where no selector selects none: the empty map must
    # reach the object as it is, through Helm's merge of the values.
    everything = {"namespaceSelector": {"matchLabels": {}}, "maxPartitionsPerTopic": 12}
    values.write_text(
        yaml.safe_dump({"defaultPolicy": {"enabled": True, "name": "baseline", "spec": everything}})
    )
    policy = one(helm_template("-f", str(values)), "DurabilityPolicy")
    assert policy["metadata"]["name"] == "baseline"
    assert policy["spec"] == everything


def test_monitoring_objects(helm_template: Render) -> None:
    objects = helm_template(
        "--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true"
    )
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()

    rules = {r["alert"]: r for g in one(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    expected = {
        "DurableTopicUnderMinIsr": "durabletopic_partitions_under_min_isr",
        "DurableTopicOffline": "durabletopic_partitions_offline",
        "DurableTopicWeakeningDrift": 'durabletopic_drift{severity="weakening"}',
        "DurableTopicStalled": 'durabletopic_resources{condition="Stalled"}',
        "DurableTopicAuditFindings": "durabletopic_audit_findings",
        "DurableTopicAuditCritical": 'durabletopic_audit_findings{severity="critical"}',
        "DurableTopicOperatorDown": "absent(up{",
        "DurableTopicKafkaUnreachable": "durabletopic_kafka_up",
    }
    assert set(rules) == set(expected)
    for alert, fragment in expected.items():
        assert fragment in rules[alert]["expr"], (alert, rules[alert]["expr"])
        assert rules[alert]["labels"]["severity"] in ("critical", "warning")
        assert rules[alert]["annotations"]["summary"]
    assert rules["DurableTopicKafkaUnreachable"]["for"] == "2m"
    assert f'job="{service["metadata"]["name"]}"' in rules["DurableTopicOperatorDown"]["expr"]

    (dashboard_cm,) = [
        c for c in by_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert dashboard_cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboard_cm["data"]["durable-topic-operator.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert {"job", "cluster"} <= {v["name"] for v in dashboard["templating"]["list"]}
    titles = {p["title"] for p in dashboard["panels"]}
    assert {
        "DurableTopics by condition",
        "Weakening drift",
        "Reconcile rate",
        "Admin request errors",
    } <= titles
    joined = "\n".join(exprs)
    for fragment in (
        "durabletopic_resources",
        "durabletopic_drift",
        "durabletopic_partitions_under_min_isr",
        "durabletopic_partitions_offline",
        "rate(durabletopic_reconcile_total",
        "durabletopic_reconcile_duration_seconds_bucket",
        'durabletopic_admin_requests_total{job=~"$job",cluster=~"$cluster",result="error"}',
    ):
        assert fragment in joined, fragment
    # Every metric the alerts and the dashboard query is one the operator exports.
    used = set(re.findall(r"\bdurabletopic_[a-z_]+", joined + "\n".join(r["expr"] for r in rules.values())))
    unknown = used - exported_series()
    assert not unknown, f"alerts or dashboard use metrics the operator does not export: {unknown}"


# ------------------------------------------------------------------------------ chart == deploy/


def strip_hash(name: str) -> str:
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def normalized_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = copy.deepcopy(one(objects, "Deployment")["spec"]["template"]["spec"])
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                source["configMap"]["name"] = strip_hash(source["configMap"]["name"])
    return pod


def meaningful_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_deploy_is_the_chart_defaults(helm_template: Render, kustomized: list[dict[str, Any]]) -> None:
    chart = helm_template()
    kinds_chart = {o["kind"] for o in chart}
    kinds_deploy = {o["kind"] for o in kustomized}
    assert kinds_deploy == kinds_chart | {"Namespace"}
    assert one(kustomized, "Namespace")["metadata"]["name"] == "durable-topic-operator"
    assert all(
        o["metadata"].get("namespace") == "durable-topic-operator"
        for o in kustomized
        if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")
        and not o["kind"].startswith("ValidatingAdmission")
    )

    def roles(objects: list[dict[str, Any]]) -> dict[tuple[str, str], frozenset[tuple[str, str, str, str]]]:
        return {
            (r["kind"], r["metadata"]["name"]): rule_set(r)
            for r in by_kind(objects, "ClusterRole") + by_kind(objects, "Role")
        }

    # One difference: plain manifests cannot know the names of KafkaClusters' Secrets and ConfigMaps,
    # so deploy/ grants `get` on those of the operator's own namespace (the chart: the names of its values).
    credentials = ("Role", "durable-topic-operator-cluster-credentials")
    deploy_roles = roles(kustomized)
    assert deploy_roles.pop(credentials) == CREDENTIALS_IN_OWN_NAMESPACE
    assert deploy_roles == roles(chart)
    (credentials_role,) = [r for r in by_kind(kustomized, "Role") if r["metadata"]["name"] == credentials[1]]
    assert credentials_role["metadata"]["namespace"] == "durable-topic-operator"

    def bindings(objects: list[dict[str, Any]]) -> set[str]:
        return {
            json.dumps([b["kind"], b["metadata"]["name"], b["roleRef"], b["subjects"]], sort_keys=True)
            for b in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding")
            if b["metadata"]["name"] != credentials[1]
        }

    assert bindings(kustomized) == bindings(chart)
    assert (
        one(kustomized, "Deployment")["spec"]["replicas"] == one(chart, "Deployment")["spec"]["replicas"] == 2
    )
    assert normalized_pod(kustomized) == normalized_pod(chart)
    assert meaningful_lines(client_properties(kustomized)) == meaningful_lines(client_properties(chart))
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        assert one(kustomized, kind)["spec"] == one(chart, kind)["spec"], kind

    def specs(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
        return {o["metadata"]["name"]: o["spec"] for o in by_kind(objects, kind)}

    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        assert specs(kustomized, kind) == specs(chart, kind), kind
        assert set(specs(chart, kind)) == {"durable-topic-operator-floors", "durable-topic-operator-tenancy"}
    for binding in by_kind(kustomized, "ValidatingAdmissionPolicyBinding"):
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {}, (
            "deploy/ applies the floors and the DurabilityPolicies everywhere"
        )


def test_deploy_kustomization_leaves_examples_out() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert not any("examples" in r for r in kustomization["resources"])
    for resource in kustomization["resources"]:
        assert (DEPLOY / resource).is_file(), resource


# ------------------------------------------------------------------------- the real API server


def durable_topic(namespace: str, name: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "durabletopic.dev/v1alpha1",
            "kind": "DurableTopic",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"partitions": 1, **spec},
        }
    )


@pytest.mark.testbed
@pytest.mark.usefixtures("crd_installed")
def test_api_server_accepts_the_rendered_chart(
    testbed: Any, helm_template: Render, scratch: tuple[str, str]
) -> None:
    namespace, token = scratch
    for values in ([], ["--set", f"watchNamespaces={{{namespace}}}"], SASL_VALUES):
        manifest = helm_template(
            *values, *only_here(token), release=f"dry-{token}", namespace=namespace, text=True
        )
        result = dry_run_apply(testbed, manifest)
        assert result.returncode == 0, f"{values}: {result.stderr}"
        assert "(server dry run)" in result.stdout


@pytest.mark.testbed
@pytest.mark.usefixtures("crd_installed")
def test_api_server_accepts_the_default_policy(
    testbed: Any, helm_template: Render, scratch: tuple[str, str], tmp_path: Path
) -> None:
    """The chart with the example default policy of values.yaml, dry-run: the API server checks the
    DurabilityPolicy against its CRD (schema and CEL rules). Nothing is stored, so no operator or
    admission policy of other tests ever sees it."""
    namespace, token = scratch
    release = f"dry-{token}"
    values = tmp_path / "values.yaml"

    def dry_run(spec: dict[str, Any], *only: str) -> Any:
        values.write_text(yaml.safe_dump({"defaultPolicy": {"enabled": True, "spec": spec}}))
        manifest = helm_template(
            "-f", str(values), *only_here(token), *only, release=release, namespace=namespace, text=True
        )
        return dry_run_apply(testbed, manifest)

    result = dry_run(values_example_policy())
    assert result.returncode == 0, result.stderr
    name = f"{release}-durable-topic-operator-default"
    assert f"durabilitypolicy.durabletopic.dev/{name} created (server dry run)" in result.stdout, (
        result.stdout
    )

    # The check is real: a spec the CRD refuses is refused here, with the CRD's message.
    impossible = {**SOME_POLICY, "minReplicationFactor": 2, "minInSyncReplicas": 2}
    result = dry_run(impossible, "--show-only", "templates/durabilitypolicy.yaml")
    assert result.returncode != 0, "minInSyncReplicas == minReplicationFactor was accepted"
    assert "spec.minInSyncReplicas must be less than spec.minReplicationFactor" in result.stderr, (
        result.stderr
    )
    result = dry_run(
        {**SOME_POLICY, "adoption": "Sometimes"}, "--show-only", "templates/durabilitypolicy.yaml"
    )
    assert result.returncode != 0 and "spec.adoption" in result.stderr, result.stderr


@pytest.mark.testbed
@pytest.mark.usefixtures("crd_installed")
def test_api_server_accepts_deploy(
    testbed: Any, kustomized: list[dict[str, Any]], scratch: tuple[str, str]
) -> None:
    namespace, _ = scratch
    objects = []
    for obj in copy.deepcopy(kustomized):
        if obj["kind"] == "Namespace":
            continue  # a dry run cannot create objects inside a namespace it did not create
        if "namespace" in obj["metadata"]:
            obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects", []):
            subject["namespace"] = namespace
        objects.append(obj)
    result = dry_run_apply(testbed, yaml.safe_dump_all(objects))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(objects)

    # The operator's Pods pass the Pod Security Standard that deploy/'s Namespace enforces: a Pod of
    # the Deployment's template, dry-run in a namespace with the same labels (PodSecurity admission).
    ns_labels = one(kustomized, "Namespace")["metadata"]["labels"]
    assert ns_labels["pod-security.kubernetes.io/enforce"] == "restricted"
    testbed.kubectl(
        "label",
        "namespace",
        namespace,
        *(f"{k}={v}" for k, v in ns_labels.items() if k.startswith("pod-security")),
    )
    template = one(kustomized, "Deployment")["spec"]["template"]
    testbed.kubectl("create", "serviceaccount", template["spec"]["serviceAccountName"], "-n", namespace)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator", "namespace": namespace}}
    pod["metadata"]["labels"] = template["metadata"]["labels"]
    pod["spec"] = template["spec"]
    result = dry_run_apply(testbed, yaml.safe_dump(pod))
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    insecure = copy.deepcopy(pod)
    insecure["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    result = dry_run_apply(testbed, yaml.safe_dump(insecure))
    assert result.returncode != 0 and "violates PodSecurity" in result.stderr, (
        "PodSecurity is not enforced here"
    )


def deployment_env(testbed: Any, namespace: str, name: str) -> dict[str, str]:
    deployment = json.loads(testbed.kubectl("get", "deployment", name, "-n", namespace, "-o", "json").stdout)
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in c["env"]}


@pytest.mark.testbed
@pytest.mark.usefixtures("crd_installed")
def test_helm_install_upgrade_uninstall(
    testbed: Any, helm_release: HelmRelease, scratch: tuple[str, str]
) -> None:
    namespace, token = scratch
    fullname = helm_release.fullname
    started = time.monotonic()
    result = helm_release.install(*only_here(token))
    assert "durable-topic-operator 0.1.0 is installed as release" in result.stdout  # NOTES.txt
    env = deployment_env(testbed, namespace, fullname)
    assert env["DURABLETOPIC_MIN_REPLICATION_FACTOR"] == "3"

    # The ServiceAccount may do what the operator does, and no more (the real authorizer says so).
    sa = f"system:serviceaccount:{namespace}:{fullname}"
    assert can_i(testbed, sa, "watch", "durabletopics.durabletopic.dev")
    assert can_i(testbed, sa, "patch", "durabletopics.durabletopic.dev", "default")
    assert can_i(testbed, sa, "patch", "durabletopics.durabletopic.dev", "default", subresource="status")
    assert can_i(testbed, sa, "create", "configmaps", "default")
    assert can_i(testbed, sa, "patch", "configmaps", "default")
    assert not can_i(testbed, sa, "get", "configmaps", "default")
    assert can_i(testbed, sa, "create", "events", "default")
    assert not can_i(testbed, sa, "create", "events.events.k8s.io", "default")
    assert can_i(testbed, sa, "list", "customresourcedefinitions.apiextensions.k8s.io")
    for verb in ("list", "watch"):
        assert can_i(testbed, sa, verb, "durabilitypolicies.durabletopic.dev")
        assert can_i(testbed, sa, verb, "namespaces")
    assert can_i(testbed, sa, "patch", "durabilitypolicies.durabletopic.dev", subresource="status")
    for verb in ("get", "create", "update", "patch", "delete"):
        assert not can_i(testbed, sa, verb, "durabilitypolicies.durabletopic.dev"), verb
        assert not can_i(testbed, sa, verb, "namespaces"), verb
    assert not can_i(testbed, sa, "update", "durabilitypolicies.durabletopic.dev", subresource="status")
    assert can_i(testbed, sa, "create", "leases.coordination.k8s.io", namespace)
    assert can_i(testbed, sa, "update", "leases.coordination.k8s.io/durable-topic-operator", namespace)
    assert not can_i(testbed, sa, "update", "leases.coordination.k8s.io/someone-else", namespace)
    assert not can_i(testbed, sa, "create", "leases.coordination.k8s.io", "default")
    assert not can_i(testbed, sa, "get", "secrets", namespace)
    assert not can_i(testbed, sa, "delete", "durabletopics.durabletopic.dev", "default")
    assert not can_i(testbed, sa, "create", "durabletopics.durabletopic.dev", "default")

    # The installed admission policy holds the floors of the values (bound to this namespace).
    manifest = durable_topic(namespace, "weak", replicationFactor=3, minInSyncReplicas=2)
    assert wait_for_rejection(testbed, manifest) is None, "RF 3 is accepted at the default floor"
    # Internal topics are refused, none excepted by default.
    internal = durable_topic(namespace, "offsets", topicName="connect-offsets", replicationFactor=4)
    rejected = wait_for_rejection(testbed, internal, expect=True)
    assert rejected is not None and "(connect-offsets) is an internal or system topic" in rejected

    run(
        [
            *helm_release.helm,
            "upgrade",
            helm_release.name,
            CHART,
            "--reuse-values",
            "--set",
            "minReplicationFactor=4,internalTopicExceptions={connect-offsets}",
        ]
    )
    env = deployment_env(testbed, namespace, fullname)
    assert env["DURABLETOPIC_MIN_REPLICATION_FACTOR"] == "4"
    assert env["DURABLETOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert env["DURABLETOPIC_INTERNAL_TOPIC_EXCEPTIONS"] == "connect-offsets"
    rejected = wait_for_rejection(testbed, manifest, expect=True)
    assert rejected is not None and "spec.replicationFactor (3) is below the floor of 4" in rejected
    # The exception reached the admission policy: that topic is admitted, the others still are not.
    assert wait_for_admission(testbed, internal), "connect-offsets is still refused"
    other = durable_topic(namespace, "status", topicName="connect-status", replicationFactor=4)
    rejected = wait_for_rejection(testbed, other)
    assert rejected is not None and "(connect-status) is an internal or system topic" in rejected

    helm_release.uninstall()
    gone = testbed.kubectl("get", "deployment", fullname, "-n", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    for kind in ("clusterrole", "clusterrolebinding", "validatingadmissionpolicy"):
        left = testbed.kubectl(
            "get", kind, "-l", f"app.kubernetes.io/instance={helm_release.name}", "-o", "name"
        )
        assert left.stdout.strip() == "", left.stdout
    print(f"install, upgrade, uninstall: {time.monotonic() - started:.1f} s")


def wait_for_rejection(testbed: Any, manifest: str, expect: bool = False, timeout: float = 30) -> str | None:
    """The admission error of a dry-run apply, or None when it is accepted. A new or changed policy
    takes a moment to reach the API server's admission plugin: with ``expect`` wait for the rejection."""
    deadline = time.monotonic() + timeout
    while True:
        result = dry_run_apply(testbed, manifest)
        if result.returncode != 0:
            stderr: str = result.stderr
            return stderr
        if not expect or time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def wait_for_admission(testbed: Any, manifest: str, timeout: float = 30) -> bool:
    """Whether a dry-run apply is admitted within `timeout` (a changed policy takes a moment)."""
    deadline = time.monotonic() + timeout
    while dry_run_apply(testbed, manifest).returncode != 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.mark.testbed
@pytest.mark.usefixtures("crd_installed")
def test_deploy_admission_policy_rejects_below_the_floors(testbed: Any, scratch: tuple[str, str]) -> None:
    namespace, token = scratch
    policy, binding = (
        d
        for d in docs((DEPLOY / "admissionpolicy.yaml").read_text())
        if d["metadata"]["name"].endswith("-floors")
    )
    name = f"pkg-{token}-floors"
    policy["metadata"]["name"] = binding["metadata"]["name"] = binding["spec"]["policyName"] = name
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {}
    # Bound to this test's namespace only: other tests on the test bed create weak topics on purpose.
    binding["spec"]["matchResources"]["namespaceSelector"] = {"matchLabels": {LABEL: token}}
    older = f"{namespace}-old"
    testbed.kubectl("create", "namespace", older)
    testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    try:
        rejected = wait_for_rejection(
            testbed, durable_topic(namespace, "rf2", replicationFactor=2, minInSyncReplicas=1), expect=True
        )
        assert rejected is not None, "the policy never rejected replicationFactor 2"
        assert "spec.replicationFactor (2) is below the floor of 3 set by the platform policy" in rejected
        assert name in rejected

        rejected = wait_for_rejection(
            testbed, durable_topic(namespace, "isr1", replicationFactor=3, minInSyncReplicas=1)
        )
        assert rejected is not None
        assert "spec.minInSyncReplicas (1) is below the floor of 2 set by the platform policy" in rejected
        assert "spec.replicationFactor" not in rejected

        # At the floors, and with the CRD's defaults (3 and 2), a DurableTopic is admitted.
        assert (
            wait_for_rejection(
                testbed, durable_topic(namespace, "ok", replicationFactor=3, minInSyncReplicas=2)
            )
            is None
        )
        assert wait_for_rejection(testbed, durable_topic(namespace, "defaults")) is None
        # Outside the bound namespaces nothing changes.
        assert (
            wait_for_rejection(
                testbed, durable_topic("default", f"pkg-{token}", replicationFactor=2, minInSyncReplicas=1)
            )
            is None
        )

        # An object admitted before the floors (here: created before the policy, in another of this
        # test's namespaces) keeps working: metadata-only updates such as the operator's finalizers,
        # and so its deletion, go through; a change of its spec has to meet the floors.
        testbed.kubectl(
            "apply", "-f", "-", input=durable_topic(older, "old", replicationFactor=2, minInSyncReplicas=1)
        )
        testbed.kubectl("label", "namespace", older, f"{LABEL}={token}")
        assert wait_for_rejection(testbed, durable_topic(older, "probe", replicationFactor=2), expect=True)
        patch = json.dumps({"metadata": {"finalizers": ["durabletopic.dev/packaging-test"]}})
        testbed.kubectl("patch", "durabletopic", "old", "-n", older, "--type=merge", "-p", patch)
        grow = testbed.kubectl(
            "patch",
            "durabletopic",
            "old",
            "-n",
            older,
            "--type=merge",
            "-p",
            '{"spec":{"partitions":2}}',
            check=False,
        )
        assert grow.returncode != 0 and "below the floor of 3" in grow.stderr, grow.stderr
        testbed.kubectl("delete", "durabletopic", "old", "-n", older, "--wait=false")
        unblock = json.dumps({"metadata": {"finalizers": None}})
        testbed.kubectl("patch", "durabletopic", "old", "-n", older, "--type=merge", "-p", unblock)
        testbed.kubectl("wait", "--for=delete", "durabletopic/old", "-n", older, "--timeout=30s")
    finally:
        testbed.kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found", check=False)
        testbed.kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found", check=False)
        testbed.kubectl("delete", "namespace", older, "--wait=false", "--ignore-not-found", check=False)
