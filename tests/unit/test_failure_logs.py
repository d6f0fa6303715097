from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import failure_logs
from tests.testbed.operator_process import OperatorProcess


def test_the_tail_starts_where_the_test_started_and_says_what_it_left_out(tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    log.write_text("before the test\n")
    offset = log.stat().st_size
    with log.open("a") as out:
        out.writelines(f"line {i}\n" for i in range(10))

    assert failure_logs.tail_since(log, offset, lines=20).splitlines() == [f"line {i}" for i in range(10)]
    tail = failure_logs.tail_since(log, offset, lines=3).splitlines()
    assert tail[0] == f"... 7 earlier lines in {log}"
    assert tail[1:] == ["line 7", "line 8", "line 9"]


def test_only_operator_processes_count_and_each_is_read_from_its_offset(tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    log.write_text("old\n")
    operator = OperatorProcess(bootstrap_servers="localhost:1", kubeconfig=tmp_path / "k", log_path=log)
    item: Any = SimpleNamespace(funcargs={"operator": operator, "namespace": "e2e-x"}, stash=pytest.Stash())

    failure_logs.remember_offsets(item)
    log.write_text("old\nnew\n")

    [(title, text)] = failure_logs.operator_sections(item)
    assert "operator" in title and str(log) in title
    assert text == "new"
