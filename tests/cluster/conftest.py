"""Fixtures of the in-cluster tests: the operator's image built from the Dockerfile and imported into the
test bed's node, which runs it in Pods.

These tests come before tests/e2e/ in a run: the operator process of that session, and the
ServiceAccount and RBAC from deploy/ it runs under, do not exist yet, so the chart is installed
exactly as the README says, into the namespace deploy/ uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import crd_installed, kube, namespace  # noqa: F401  (fixtures)
from tests.testbed.image import BuiltImage, build_image

NEXT_SUFFIX = "-next"


@dataclass(frozen=True)
class Images:
    built: BuiltImage

    @property
    def repository(self) -> str:
        return self.built.name.rpartition(":")[0]

    @property
    def first(self) -> str:
        """The tag of an install."""
        return self.built.name.rpartition(":")[2]

    @property
    def next(self) -> str:
        """The tag an upgrade moves to: the same image under a new name."""
        return self.first + NEXT_SUFFIX


@pytest.fixture(scope="session")
def images(node: Any) -> Images:
    built = build_image()
    node.import_image(built.archive, built.name)
    node.import_image(built.archive, built.name + NEXT_SUFFIX)
    return Images(built)
