"""What a failed test against the test bed leaves to read: the operator's log while the test ran, and the
logs of the operator's Pods. Without them a failure that only shows under the whole suite's load cannot
be told apart from a slow bed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.testbed.operator_process import OperatorProcess

TAIL_LINES = 300
POD_TAIL_LINES = 150
POD_SELECTOR = "app.kubernetes.io/name=durable-topic-operator"
OFFSETS = pytest.StashKey[dict[str, int]]()


def operator_logs(item: pytest.Item) -> dict[str, Path]:
    """The log of each operator process the test was given, by fixture name."""
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    return {name: value.log_path for name, value in funcargs.items() if isinstance(value, OperatorProcess)}


def remember_offsets(item: pytest.Item) -> None:
    item.stash[OFFSETS] = {
        name: path.stat().st_size if path.exists() else 0 for name, path in operator_logs(item).items()
    }


def tail_since(path: Path, offset: int, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines written to `path` after byte `offset`."""
    if not path.exists():
        return f"({path} does not exist)"
    with path.open("rb") as log:
        log.seek(offset)
        written = log.read().decode(errors="replace").splitlines()
    skipped = len(written) - lines
    head = [f"... {skipped} earlier lines in {path}"] if skipped > 0 else []
    return "\n".join([*head, *written[-lines:]])


def operator_sections(item: pytest.Item) -> list[tuple[str, str]]:
    offsets = item.stash.get(OFFSETS, {})
    return [
        (f"operator log while the test ran ({name}, {path})", tail_since(path, offsets.get(name, 0)))
        for name, path in operator_logs(item).items()
    ]


def pod_sections(testbed: Any) -> list[tuple[str, str]]:
    """The last lines of every operator Pod's log, in every namespace."""
    found = testbed.kubectl("get", "pods", "-A", "-l", POD_SELECTOR, "-o", "json", check=False)
    if found.returncode != 0:
        return [("operator Pods", found.stderr)]
    sections = []
    for pod in json.loads(found.stdout)["items"]:
        meta = pod["metadata"]
        logs = testbed.kubectl(
            "logs", meta["name"], "-n", meta["namespace"], f"--tail={POD_TAIL_LINES}", check=False
        )
        where = f"Pod {meta['namespace']}/{meta['name']}"
        sections.append((f"log of {where}", logs.stdout if logs.returncode == 0 else logs.stderr))
    return sections
