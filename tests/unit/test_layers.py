"""The layer contract of `make lint` fails on an import that runs against the layers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(package_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=package_root,
        check=False,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "operator" / "durabletopic", tmp_path / "durabletopic")
    return tmp_path


def test_the_tree_keeps_the_contract(package_copy: Path) -> None:
    result = lint_imports(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/plan.py", "import durabletopic.loop.controller", "Layers"),
        ("loop/controller.py", "import durabletopic.adapters.prometheus", "Layers"),
        ("adapters/prometheus.py", "import durabletopic.app.main", "Layers"),
        ("tools/validate.py", "import durabletopic.app.settings", "Layers"),
        ("core/health.py", "import prometheus_client", "The core imports no I/O library"),
        ("loop/store.py", "import confluent_kafka", "The loop imports no client library"),
    ],
)
def test_an_import_against_the_layers_breaks_lint(
    package_copy: Path, module: str, line: str, contract: str
) -> None:
    path = package_copy / "durabletopic" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(package_copy)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(contract) for row in broken), result.stdout
