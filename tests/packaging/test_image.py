"""The container image, without a Docker engine: the Dockerfile linted (hadolint) and checked for its
shape, its build steps replayed (wheel, binary-only install into a clean virtualenv, the command
runs), and checkov over the Dockerfile, the rendered chart and deploy/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from durabletopic import __version__
from tests.packaging.conftest import CHART, DEPLOY, ROOT, run

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_passes(hadolint: Path) -> None:
    result = run([hadolint, "--format", "json", "--failure-threshold", "style", DOCKERFILE], check=False)
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and findings == [], json.dumps(findings, indent=2)


def test_dockerfile_shape() -> None:
    steps = instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 2, "multi-stage: a build stage and a runtime stage"
    for image in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm( AS \w+)?", image), image
    # The final stage: no compiler installed, a numeric non-root user, the operator as entry point.
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    assert not any(word == "RUN" and re.search(r"apt-get|gcc|build-essential", args) for word, args in final)
    (user,) = [args for word, args in final if word == "USER"]
    assert re.fullmatch(r"\d+(:\d+)?", user) and int(user.split(":")[0]) >= 10000
    assert [args for word, args in final if word == "ENTRYPOINT"] == ['["durabletopic"]']
    assert [args for word, args in final if word == "CMD"] == ['["run"]']
    assert [args for word, args in final if word == "HEALTHCHECK"] == ["NONE"]
    labels = " ".join(args for word, args in final if word == "LABEL")
    for key in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def build_context(dest: Path) -> Path:
    """The Docker build context as the Dockerfile's COPY steps see it: only what .dockerignore lets
    through (pyproject.toml, README.md, operator/) and nothing else of the work tree."""
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    assert "*" in ignore, ".dockerignore must exclude everything by default"
    dest.mkdir(parents=True)
    copied = [args.split()[:-1] for word, args in instructions() if word == "COPY" and "--from" not in args]
    for sources in copied:
        for source in sources:
            name = source.rstrip("/")
            assert name in allowed, f"COPY {source}: excluded by .dockerignore"
            path = ROOT / name
            assert path.exists(), f"COPY {source}: {path} does not exist, the image build would fail"
            if path.is_dir():
                shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy2(path, dest / name)
    return dest


def test_wheel_installs_into_a_clean_virtualenv(tmp_path: Path) -> None:
    """What the image build does: the wheel from the build context, then a binary-only install (no
    compiler in the runtime image) into a fresh environment, where `durabletopic` runs."""
    context = build_context(tmp_path / "context")
    wheels = tmp_path / "wheels"
    started = time.monotonic()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--wheel-dir", wheels, context])
    (wheel,) = wheels.glob("durable_topic_operator-*.whl")
    assert wheel.name.startswith(f"durable_topic_operator-{__version__}-py3-none-any")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--only-binary=:all:", wheel], timeout=900)
    print(f"wheel built and installed in {time.monotonic() - started:.1f} s")
    command = venv / "bin" / "durabletopic"
    assert run([command, "--version"]).stdout.strip() == f"durabletopic {__version__}"
    # Every DURABLETOPIC_* variable the chart sets is one `durabletopic run` reads.
    help_text = run([command, "run", "--help"]).stdout
    chart_env = set(
        re.findall(r"name: (DURABLETOPIC_[A-Z_]+)", (CHART / "templates" / "deployment.yaml").read_text())
    )
    assert chart_env
    missing = {name for name in chart_env if name not in help_text}
    assert not missing, f"the chart sets variables the operator does not read: {missing}"


# --------------------------------------------------------------------------------------- checkov


def checkov_reports(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    parsed = json.loads(result.stdout)
    return parsed if isinstance(parsed, list) else [parsed]


def test_checkov_passes(checkov: Path, helm: Path, kubectl: Path, tmp_path: Path) -> None:
    """No failed check over the Dockerfile, the chart (defaults, every option on, namespaced mode) and
    deploy/ (its files and what kustomize makes of them). Every skip carries its reason."""
    scan = tmp_path / "scan"
    (scan / "chart").mkdir(parents=True)
    (scan / "deploy" / "kustomized").mkdir(parents=True)
    shutil.copy2(DOCKERFILE, scan / "Dockerfile")
    renders = {
        "defaults": [],
        "everything": [
            "--set",
            "serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true",
            "--set",
            "kafka.securityProtocol=SASL_SSL,kafka.sasl.username=u,kafka.sasl.passwordSecret.name=pw",
            "--set",
            "kafka.tls.caSecret.name=ca,kafka.tls.clientSecret.name=client",
            "--set",
            "defaultPolicy.enabled=true,internalTopicExceptions={connect-offsets}",
            "--set-json",
            'defaultPolicy.spec={"namespaceSelector":{"matchLabels":{"tier":"tenant"}}}',
        ],
        "namespaced": ["--set", "watchNamespaces={team-a,team-b}"],
    }
    for name, values in renders.items():
        rendered = run([helm, "template", "dto", CHART, "--namespace", "ops", *values]).stdout
        (scan / "chart" / f"{name}.yaml").write_text(rendered)
    for path in DEPLOY.glob("*.yaml"):
        if path.name != "kustomization.yaml":
            shutil.copy2(path, scan / "deploy" / path.name)
    (scan / "deploy" / "kustomized" / "all.yaml").write_text(run([kubectl, "kustomize", DEPLOY]).stdout)

    started = time.monotonic()
    result = run(
        [
            checkov,
            "--directory",
            scan,
            "--framework",
            "kubernetes",
            "dockerfile",
            "--output",
            "json",
            "--skip-download",
        ],
        check=False,
        timeout=600,
    )
    print(f"checkov: {time.monotonic() - started:.1f} s")
    assert result.returncode in (0, 1), result.stderr
    reports = {r["check_type"]: r for r in checkov_reports(result)}
    assert set(reports) == {"kubernetes", "dockerfile"}, result.stdout[:2000]
    failed = [
        f"{r['check_type']}: {c['check_id']} {c['check_name']} ({c['resource']} in {c['file_path']})"
        for r in reports.values()
        for c in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert result.returncode == 0
    for report in reports.values():
        assert report["summary"]["passed"] > 20, report["summary"]
        for skipped in report["results"]["skipped_checks"]:
            reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
            assert len(reason.strip()) > 10, f"{skipped['check_id']} skipped without a reason"
    skipped_ids = {c["check_id"] for r in reports.values() for c in r["results"]["skipped_checks"]}
    assert skipped_ids <= {"CKV_K8S_38", "CKV_K8S_43"}, f"new skips need a reason next to them: {skipped_ids}"
