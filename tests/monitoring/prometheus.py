"""A real Prometheus for the tests: Debian's ``prometheus`` and ``promtool`` (unpacked into the cache by
``tests/packaging/tools.sh prometheus``), the chart's alert rules as a Prometheus rule file, and a
server on loopback read through its HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.packaging.conftest import CHART, run, tool
from tests.testbed.operator_process import wait_until_answers

# The release the rules are rendered for: the chart's name, in a namespace of the same name, so the
# operator's job is `durable-topic-operator-metrics` (the Service's name).
RELEASE = "durable-topic-operator"
RELEASE_NAMESPACE = "durable-topic-operator"
JOB = f"{RELEASE}-metrics"
# Loopback ports a test's Prometheus may take (the first free one).
PORTS = range(30490, 30500)


def promtool() -> Path:
    return tool("promtool")


def prometheus_binary() -> Path:
    return tool("prometheus")


def render_one(helm: Path, template: str, *values: str) -> dict[str, Any]:
    """The one object `templates/<template>` of the chart renders for the release, with `values`."""
    only = ("--show-only", f"templates/{template}")
    rendered = run(
        [helm, "template", RELEASE, CHART, "--namespace", RELEASE_NAMESPACE, *values, *only]
    ).stdout
    (obj,) = [d for d in yaml.safe_load_all(rendered) if d]
    return dict(obj)


def chart_rules(helm: Path, *values: str) -> dict[str, Any]:
    """The `spec` of the chart's PrometheusRule (its `groups`): a Prometheus rule file's content."""
    rule = render_one(helm, "prometheusrule.yaml", "--set", "prometheusRule.enabled=true", *values)
    assert rule["kind"] == "PrometheusRule"
    return {"groups": rule["spec"]["groups"]}


def alerts_of(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rules["groups"] for r in group["rules"] if "alert" in r}


def write_yaml(path: Path, content: Any) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port for Prometheus in {PORTS.start}-{PORTS.stop - 1}")


class PrometheusError(RuntimeError):
    """The Prometheus HTTP API answered with an error."""


class PrometheusServer:
    """One Prometheus process: scrapes `targets` (host:port) as job `job` with extra target `labels`
    (`honor_labels`: the scraped series' own labels win over them), evaluates `rule_files`, keeps its
    data in `workdir`."""

    def __init__(
        self,
        *,
        workdir: Path,
        targets: list[str],
        job: str,
        labels: dict[str, str],
        rule_files: list[Path],
        honor_labels: bool,
        interval: str = "1s",
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.config = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "honor_labels": honor_labels,
                    "static_configs": [{"targets": targets, "labels": labels}],
                },
            ],
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        config = write_yaml(self.workdir / "prometheus.yml", self.config)
        run([promtool(), "check", "config", config])
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(prometheus_binary()),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until_answers(self.process, f"{self.url}/-/ready", "prometheus", self.log_path, timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def api(self, path: str, **params: str) -> Any:
        """`data` of a GET of /api/v1/`path`; an answer of status error raises PrometheusError."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read())
        if answer.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of `expr` now: [{"metric": {...}, "value": [time, "text"]}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The active (pending or firing) alerts named `name`, from /api/v1/alerts."""
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)
