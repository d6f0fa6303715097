"""The JVM side of the client-profile tests: the Java programs under tests/java/<project>/ (a pom.xml whose
dependencies Maven fetches from Maven Central, and sources under src/), built once into the cache
(``$DURABLETOPIC_CACHE/java-<project>/<hash>``, keyed by the pom, the sources and the compiler flags) with the Maven repository in
``$DURABLETOPIC_CACHE/m2``, and the runs of them.

* ``clientprofile``: ``dev.durabletopic.clientcheck.ProfileCheck``, the Apache Kafka Java client (the test bed's
  version) run with a profile, and Spring Boot's jars for its metadata and its property binding.
* ``springapp``: ``dev.durabletopic.springcheck.SpringCheckApp``, a Spring Boot application with spring-kafka."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PROJECTS = Path(__file__).resolve().parents[1] / "java"
PROFILE_CHECK = "dev.durabletopic.clientcheck.ProfileCheck"
SPRING_APP = "dev.durabletopic.springcheck.SpringCheckApp"
# -parameters: Spring reads parameter names from the class files.
JAVAC_FLAGS = ("-Xlint:all", "-Werror", "-parameters")
SPRING_JAR_PREFIX = "spring-boot-autoconfigure-"
SPRING_KAFKA_JAR_PREFIX = "spring-kafka-"


def cache_root() -> Path:
    return Path(os.environ.get("DURABLETOPIC_CACHE", Path.home() / ".cache" / "durabletopic"))


def _sources(project: Path) -> list[Path]:
    return sorted([project / "pom.xml", *project.joinpath("src").rglob("*.java")])


def _key(project: Path) -> str:
    digest = hashlib.sha256(" ".join(JAVAC_FLAGS).encode() + b"\0")
    for path in _sources(project):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Build:
    """The built check program: its directory, and how long getting it took (seconds) and whether it was cached."""

    home: Path
    seconds: float
    cached: bool

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    def jar(self, prefix: str) -> Path:
        found = [
            p for p in self.libs.glob(f"{prefix}*.jar") if p.name[len(prefix) : len(prefix) + 1].isdigit()
        ]
        assert len(found) == 1, f"expected one {prefix}*.jar in {self.libs}, found {found}"
        return found[0]

    def java(self, main_class: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Runs a program of the build; with slf4j-simple, the Kafka client logs at INFO to stderr."""
        classpath = f"{self.home / 'classes'}{os.pathsep}{self.libs}/*"
        command = [
            "java",
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.logFile=System.err",
            "-cp",
            classpath,
            main_class,
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _maven(home: Path, offline: bool) -> subprocess.CompletedProcess[str]:
    command = [
        "mvn",
        "-q",
        "-B",
        *(["-o"] if offline else []),
        f"-Dmaven.repo.local={cache_root() / 'm2'}",
        "dependency:copy-dependencies",
        "-DoutputDirectory=libs",
        "-DincludeScope=runtime",
    ]
    return subprocess.run(command, cwd=home, capture_output=True, text=True, timeout=600, check=False)


def build(name: str) -> Build:
    """The project tests/java/<name>, from the cache when this pom and these sources were built before."""
    start = time.monotonic()
    project = PROJECTS / name
    home = cache_root() / f"java-{name}" / _key(project)
    if (home / ".complete").exists():
        return Build(home, time.monotonic() - start, cached=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(project / "pom.xml", home / "pom.xml")
    # Offline first: the Maven repository usually holds every jar already; Maven Central only when not.
    resolved = _maven(home, offline=True)
    if resolved.returncode != 0:
        resolved = _maven(home, offline=False)
    assert resolved.returncode == 0, f"mvn failed:\n{resolved.stdout}\n{resolved.stderr}"
    sources = [str(p) for p in _sources(project) if p.suffix == ".java"]
    compiled = subprocess.run(
        [
            "javac",
            *JAVAC_FLAGS,
            "-d",
            str(home / "classes"),
            "-cp",
            f"{home / 'libs'}/*",
            *sources,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert compiled.returncode == 0, f"javac failed:\n{compiled.stderr}"
    (home / ".complete").touch()
    return Build(home, time.monotonic() - start, cached=False)
