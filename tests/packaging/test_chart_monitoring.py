"""The chart's ServiceMonitor and PrometheusRule against the Prometheus Operator's own CRDs
(``monitoring_crds_installed``) on the test bed's API server: admitted by their schemas, stored with no
field pruned, refused when a field is wrong, and installed and removed with a Helm release."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.packaging.conftest import HelmRelease, Render, docs, one, only_here, run

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("crd_installed", "monitoring_crds_installed")]

RELEASE_LABEL = "kube-prometheus-stack"
MONITORING_VALUES = [
    "--set",
    "serviceMonitor.enabled=true,prometheusRule.enabled=true",
    "--set",
    f"serviceMonitor.labels.release={RELEASE_LABEL},prometheusRule.labels.release={RELEASE_LABEL}",
    "--set",
    "prometheusRule.alertLabels.team=platform",
]
ONLY_MONITORING = [
    "--show-only",
    "templates/servicemonitor.yaml",
    "--show-only",
    "templates/prometheusrule.yaml",
]
ALERTS = 8
MONITORING_KINDS = "servicemonitors.monitoring.coreos.com,prometheusrules.monitoring.coreos.com"


def server_side_apply(
    testbed: Any, objects: list[dict[str, Any]], *, dry_run: bool
) -> subprocess.CompletedProcess[str]:
    """``kubectl apply --server-side``: the API server checks every field against the CRD's schema and,
    with kubectl's default strict field validation, refuses a field the schema does not know."""
    args = ["apply", "--server-side", "--field-manager=packaging-test", "--filename=-"]
    return testbed.kubectl(
        *args, *(["--dry-run=server"] if dry_run else []), input=yaml.safe_dump_all(objects), check=False
    )


def fields_not_kept(stored: Any, rendered: Any, path: str = "") -> list[str]:
    """The fields of ``rendered`` that ``stored`` lacks or holds with another value. The API server may
    add the schema's defaults; a field it pruned or changed is listed."""
    if isinstance(rendered, dict):
        if not isinstance(stored, dict):
            return [path]
        return [
            lost
            for key, value in rendered.items()
            for lost in (
                [f"{path}.{key}"]
                if key not in stored
                else fields_not_kept(stored[key], value, f"{path}.{key}")
            )
        ]
    if isinstance(rendered, list):
        if not isinstance(stored, list) or len(stored) != len(rendered):
            return [path]
        return [
            lost
            for i, pair in enumerate(zip(stored, rendered, strict=True))
            for lost in fields_not_kept(*pair, f"{path}[{i}]")
        ]
    return [] if stored == rendered else [path]


def read_back(testbed: Any, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    out = testbed.kubectl(
        "get",
        f"{obj['kind'].lower()}.monitoring.coreos.com",
        meta["name"],
        "-n",
        meta["namespace"],
        "-o",
        "json",
    )
    stored: dict[str, Any] = json.loads(out.stdout)
    return stored


def alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_api_server_admits_and_stores_the_monitoring_objects(
    testbed: Any, helm_template: Render, scratch: tuple[str, str]
) -> None:
    namespace, token = scratch
    objects = helm_template(*MONITORING_VALUES, *ONLY_MONITORING, release=f"mon-{token}", namespace=namespace)
    assert [o["kind"] for o in objects] == ["ServiceMonitor", "PrometheusRule"]
    expected = [
        f"{o['kind'].lower()}.monitoring.coreos.com/{o['metadata']['name']} serverside-applied"
        for o in objects
    ]

    result = server_side_apply(testbed, objects, dry_run=True)
    assert result.returncode == 0, result.stderr
    for line in expected:
        assert f"{line} (server dry run)" in result.stdout, result.stdout
    stored = testbed.kubectl("get", MONITORING_KINDS, "-n", namespace, "-o", "name")
    assert stored.stdout.strip() == "", f"a dry run stored objects: {stored.stdout}"

    result = server_side_apply(testbed, objects, dry_run=False)
    assert result.returncode == 0, result.stderr
    for line in expected:
        assert line in result.stdout, result.stdout
    for obj in objects:
        back = read_back(testbed, obj)
        # Nothing of the chart's spec was pruned as unknown to the schema, nor changed.
        assert fields_not_kept(back["spec"], obj["spec"]) == [], obj["kind"]
        assert back["metadata"]["labels"]["release"] == RELEASE_LABEL
        assert back["metadata"]["labels"]["app.kubernetes.io/instance"] == f"mon-{token}"

    monitor = read_back(testbed, one(objects, "ServiceMonitor"))
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == (
        "metrics",
        "/metrics",
        "30s",
        "10s",
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [namespace]}
    stored_alerts = alerts(read_back(testbed, one(objects, "PrometheusRule")))
    assert len(stored_alerts) == ALERTS
    assert {a["labels"]["team"] for a in stored_alerts.values()} == {"platform"}
    assert stored_alerts["DurableTopicKafkaUnreachable"]["for"] == "2m"


def endpoint(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj["spec"]["endpoints"][0]
    return found


def first_rule(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj["spec"]["groups"][0]["rules"][0]
    return found


def duplicate_group(obj: dict[str, Any]) -> None:
    obj["spec"]["groups"].append(copy.deepcopy(obj["spec"]["groups"][0]))


WRONG: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "interval-not-a-duration": (
        "ServiceMonitor",
        lambda o: endpoint(o).update(interval="30 seconds"),
        'spec.endpoints[0].interval: Invalid value: "30 seconds"',
    ),
    "unknown-endpoint-field": (
        "ServiceMonitor",
        lambda o: endpoint(o).update(scrapeIntervall="30s"),
        ".spec.endpoints[0].scrapeIntervall: field not declared in schema",
    ),
    "scheme-not-in-enum": (
        "ServiceMonitor",
        lambda o: endpoint(o).update(scheme="ftp"),
        'spec.endpoints[0].scheme: Unsupported value: "ftp"',
    ),
    "for-not-a-duration": (
        "PrometheusRule",
        lambda o: first_rule(o).update({"for": "one minute"}),
        'spec.groups[0].rules[0].for: Invalid value: "one minute"',
    ),
    "rule-without-expr": (
        "PrometheusRule",
        lambda o: first_rule(o).pop("expr"),
        "spec.groups[0].rules[0].expr: Required value",
    ),
    "alert-label-not-a-string": (
        "PrometheusRule",
        lambda o: first_rule(o)["labels"].update(severity=3),
        ".rules[0].labels.severity: expected string, got",
    ),
    "group-name-twice": (
        "PrometheusRule",
        duplicate_group,
        '.spec.groups: duplicate entries for key [name="durable-topic-operator.topics"]',
    ),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_crd_schemas_refuse_a_wrong_field(
    testbed: Any, helm_template: Render, scratch: tuple[str, str], case: str
) -> None:
    """The schemas are live: the chart's object is admitted, the same object with one wrong field is
    refused with the schema's message."""
    kind, spoil, message = WRONG[case]
    namespace, token = scratch
    obj = one(
        helm_template(*MONITORING_VALUES, *ONLY_MONITORING, release=f"bad-{token}", namespace=namespace), kind
    )
    admitted = server_side_apply(testbed, [obj], dry_run=True)
    assert admitted.returncode == 0, admitted.stderr
    spoil(obj)
    refused = server_side_apply(testbed, [obj], dry_run=True)
    assert refused.returncode != 0, f"{case} was admitted: {refused.stdout}"
    assert message in refused.stderr, refused.stderr


def test_helm_install_with_monitoring_and_uninstall(
    testbed: Any, helm_release: HelmRelease, scratch: tuple[str, str]
) -> None:
    """Helm does not ask for strict field validation: a field the schema does not know would be pruned
    with a mere warning. So what was stored is compared with the release's manifest."""
    namespace, token = scratch
    fullname = helm_release.fullname
    helm_release.install(*only_here(token), *MONITORING_VALUES)
    names = testbed.kubectl("get", MONITORING_KINDS, "-n", namespace, "-o", "name").stdout.split()
    assert sorted(names) == [
        f"prometheusrule.monitoring.coreos.com/{fullname}",
        f"servicemonitor.monitoring.coreos.com/{fullname}",
    ]
    manifest = docs(run([*helm_release.helm, "get", "manifest", helm_release.name]).stdout)
    stored = {kind: read_back(testbed, one(manifest, kind)) for kind in ("ServiceMonitor", "PrometheusRule")}
    for kind, obj in stored.items():
        assert fields_not_kept(obj["spec"], one(manifest, kind)["spec"]) == [], kind
        assert obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == helm_release.name
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    # The monitor selects the release's metrics Service and scrapes a port it names.
    service = json.loads(
        testbed.kubectl(
            "get", "service", "-n", namespace, "-l", "app.kubernetes.io/component=metrics", "-o", "json"
        ).stdout
    )
    (svc,) = service["items"]
    monitor = stored["ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert endpoint(monitor)["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert len(alerts(stored["PrometheusRule"])) == ALERTS

    helm_release.uninstall()
    left = testbed.kubectl("get", MONITORING_KINDS, "-n", namespace, "-o", "name")
    assert left.stdout.strip() == "", left.stdout
