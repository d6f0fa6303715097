"""deploy/argocd/health.lua run by a real Lua (5.4) against DurableTopics as the operator writes them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from durabletopic.core.conditions import conditions_for_error, merge_conditions, summary_conditions
from tests.packaging.conftest import DEPLOY, run

HEALTH_LUA = DEPLOY / "argocd" / "health.lua"
NOW = "2026-11-24T12:00:00Z"


def lua_literal(value: Any) -> str:
    """A Python value (as JSON would give it) as a Lua expression, the way Argo CD hands `obj` over."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def conditions(written: list[Any], generation: int = 1) -> list[dict[str, Any]]:
    return merge_conditions(written, [], generation, NOW)


def durable_topic(status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "DurableTopic",
        "metadata": {"name": "orders", "namespace": "shop", "generation": generation},
        "spec": {"partitions": 3, "replicationFactor": 3, "minInSyncReplicas": 2},
    }
    if status is not None:
        obj["status"] = status
    return obj


def ready_conditions() -> list[dict[str, Any]]:
    return conditions(
        summary_conditions(
            ready=(True, "Reconciled", "Kafka topic orders matches the spec."), reconciling=None, stalled=None
        )
    )


PAUSED = {
    "type": "Paused",
    "status": "True",
    "reason": "Paused",
    "message": "Reconciliation is paused by annotation.",
    "lastTransitionTime": NOW,
    "observedGeneration": 1,
}

# (case id, object, expected health, text the message contains)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no-status", durable_topic(None), "Progressing", "Waiting for the durable-topic-operator"),
    ("empty-status", durable_topic({}), "Progressing", "observe generation 1"),
    (
        "ready",
        durable_topic({"observedGeneration": 1, "conditions": ready_conditions()}),
        "Healthy",
        "matches the spec",
    ),
    (
        "ready-but-stale",
        durable_topic({"observedGeneration": 1, "conditions": ready_conditions()}, generation=2),
        "Progressing",
        "observe generation 2",
    ),
    (
        "kafka-unavailable-retrying",
        durable_topic(
            {
                "observedGeneration": 1,
                "conditions": conditions(
                    conditions_for_error(
                        "KafkaUnavailable", "Kafka is not reachable: retrying.", retrying=True
                    )
                ),
            }
        ),
        "Progressing",
        "Kafka is not reachable",
    ),
    (
        "stalled",
        durable_topic(
            {
                "observedGeneration": 1,
                "conditions": conditions(
                    conditions_for_error(
                        "BelowPolicy",
                        "spec.replicationFactor (2) is below the floor of 3 set by the platform policy.",
                        retrying=False,
                    )
                ),
            }
        ),
        "Degraded",
        "below the floor of 3",
    ),
    (
        "reconciling",
        durable_topic(
            {
                "observedGeneration": 1,
                "conditions": conditions(
                    summary_conditions(
                        ready=(False, "Creating", "Kafka topic orders: creating with 3 partitions."),
                        reconciling=("Creating", "Kafka topic orders: creating with 3 partitions."),
                        stalled=None,
                    )
                ),
            }
        ),
        "Progressing",
        "creating with 3 partitions",
    ),
    (
        "drift-reported",
        durable_topic(
            {
                "observedGeneration": 1,
                "conditions": conditions(
                    summary_conditions(
                        ready=(
                            False,
                            "Drifted",
                            "Kafka topic orders differs from the spec (retention.ms) and driftPolicy is Report.",
                        ),
                        reconciling=None,
                        stalled=None,
                    )
                ),
            }
        ),
        "Degraded",
        "driftPolicy is Report",
    ),
    (
        "paused",
        durable_topic({"observedGeneration": 1, "conditions": [*ready_conditions(), PAUSED]}, generation=3),
        "Suspended",
        "paused by annotation",
    ),
    (
        "stalled-beats-reconciling",
        durable_topic(
            {
                "observedGeneration": 1,
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "X", "message": "not ready"},
                    {"type": "Reconciling", "status": "True", "reason": "X", "message": "working"},
                    {"type": "Stalled", "status": "True", "reason": "X", "message": "stuck for good"},
                ],
            }
        ),
        "Degraded",
        "stuck for good",
    ),
    (
        "no-ready-condition-yet",
        durable_topic({"observedGeneration": 1, "conditions": []}),
        "Progressing",
        "Waiting for the Ready condition",
    ),
]


def test_the_operator_writes_what_the_cases_assume() -> None:
    """The cases are built from the operator's own status functions (kstatus conditions)."""
    written = conditions(conditions_for_error("E", "m", retrying=False))
    assert {c["type"]: c["status"] for c in written} == {
        "Ready": "False",
        "Reconciling": "False",
        "Stalled": "True",
    }
    assert all(c["observedGeneration"] == 1 and c["message"] for c in written)


@pytest.fixture(scope="module")
def verdicts(lua: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Runs health.lua once per case, as Argo CD does: `obj` is a global, the script returns hs."""
    lines = [f"local check = assert(loadfile({lua_literal(str(HEALTH_LUA))}))"]
    for case, obj, _, _ in CASES:
        lines += [
            f"obj = {lua_literal(obj)}",
            "local hs = check()",
            f'print({lua_literal(case)} .. "\\t" .. tostring(hs.status) .. "\\t" .. tostring(hs.message))',
        ]
    program = tmp_path_factory.mktemp("lua") / "cases.lua"
    program.write_text("\n".join(lines) + "\n")
    out = run([lua, program]).stdout
    result = {}
    for line in out.splitlines():
        case, status, message = line.split("\t", 2)
        result[case] = (status, message)
    return result


@pytest.mark.parametrize(("case", "obj", "health", "message"), CASES, ids=[c[0] for c in CASES])
def test_health(
    verdicts: dict[str, tuple[str, str]], case: str, obj: dict[str, Any], health: str, message: str
) -> None:
    status, said = verdicts[case]
    assert status == health, f"{case}: {status} ({said}); object: {json.dumps(obj)}"
    assert message in said


def test_script_is_lua_5_1_compatible() -> None:
    """Argo CD runs gopher-lua (Lua 5.1): no 5.2+ syntax or library calls."""
    text = HEALTH_LUA.read_text()
    for construct in ("goto ", "//", "&", "utf8.", "table.unpack", "<const>", "<close>"):
        assert construct not in text, construct


def test_readme_snippet_is_the_script() -> None:
    readme = (DEPLOY / "argocd" / "README.md").read_text()
    assert "resource.customizations.health.durabletopic.dev_DurableTopic: |" in readme
    block = re.search(
        r"resource\.customizations\.health\.durabletopic\.dev_DurableTopic: \|\n(.*?)```", readme, re.S
    )
    assert block
    snippet = "\n".join(line[4:] for line in block.group(1).splitlines())
    assert snippet.strip() == HEALTH_LUA.read_text().strip(), (
        "deploy/argocd/README.md is out of date with health.lua"
    )
