"""The JVM client profiles run by the Apache Kafka Java client against the test bed's brokers: the Java one as it
is, the Spring Boot one as Spring Boot binds it; and every Spring key checked against Spring Boot's configuration
metadata."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from durabletopic.core import clientprofile
from tests.e2e import helpers, jvm

DURABLE = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
# What the Java client logs for a key it does not know ("... were supplied but are not used yet." in 4.x,
# "... was supplied but isn't a known config." in older clients).
UNKNOWN_CONFIG = re.compile(r"supplied but (are not used yet|isn't a known config)")
MESSAGES = 500


@pytest.fixture(scope="module")
def build() -> jvm.Build:
    return jvm.build("clientprofile")


@pytest.fixture(scope="module")
def spring_app() -> jvm.Build:
    return jvm.build("springapp")


def client_config(topic: str, role: str, fmt: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "durabletopic", "client-config", topic, "--role", role, "--format", fmt],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def outputs(stdout: str) -> dict[str, str]:
    """The program's `key=value` findings (not the log lines around them)."""
    return dict(line.split("=", 1) for line in stdout.splitlines() if re.fullmatch(r"[a-z_]+=\S*", line))


def logged_config(stderr: str, kind: str) -> dict[str, str]:
    """The first `<kind> values:` block the client logged: the configuration it runs with."""
    lines: Iterator[str] = iter(stderr.splitlines())
    for line in lines:
        if line.endswith(f"{kind} values: "):
            break
    else:
        raise AssertionError(f"no '{kind} values' in the client's log:\n{stderr[:2000]}")
    found: dict[str, str] = {}
    for line in lines:
        if not line.startswith("\t"):
            break
        key, _, value = line.strip().partition(" = ")
        found[key] = value
    return found


def write_profiles(tmp_path: Path, topic: str, fmt: str) -> tuple[Path, Path]:
    producer_file, consumer_file = (
        tmp_path / f"producer-{fmt}.properties",
        tmp_path / f"consumer-{fmt}.properties",
    )
    producer_file.write_text(client_config(topic, "producer", fmt))
    consumer_file.write_text(client_config(topic, "consumer", fmt))
    return producer_file, consumer_file


def test_the_client_log_capture_sees_an_unknown_key(build: jvm.Build, tmp_path: Path) -> None:
    """The control of the tests below: the absence of the warning there means something."""
    producer_file, consumer_file = write_profiles(tmp_path, "orders", "java")
    control = build.java(
        jvm.PROFILE_CHECK, "construct", str(producer_file), str(consumer_file), "durabletopic.no.such.key=1"
    )
    assert control.returncode == 0, control.stderr
    assert (
        len(
            re.findall(
                r"'\[durabletopic\.no\.such\.key\]' were supplied but are not used yet", control.stderr
            )
        )
        == 2
    )
    assert len(UNKNOWN_CONFIG.findall(control.stderr)) == 2


@pytest.mark.parametrize("fmt", ["java", "spring"])
def test_the_profile_runs_idempotent_and_commits_after_processing(
    fmt: str, build: jvm.Build, tmp_path: Path, bootstrap_servers: str, kafka_admin: AdminClient, unique: str
) -> None:
    """java: the profile as the client's properties. spring: the client configuration Spring Boot builds from the
    profile's spring.kafka.* lines (its KafkaProperties, as its producer and consumer factories get it)."""
    topic, group = f"{unique}.jvm", f"{unique}-group"
    helpers.create(kafka_admin, topic, 3, 3, DURABLE)
    producer_file, consumer_file = write_profiles(tmp_path, topic, fmt)

    produced = build.java(
        jvm.PROFILE_CHECK, "produce", fmt, bootstrap_servers, topic, str(producer_file), str(MESSAGES)
    )
    assert produced.returncode == 0, produced.stderr
    assert outputs(produced.stdout) == {"acknowledged": str(MESSAGES), "failed": "0"}
    assert not UNKNOWN_CONFIG.search(produced.stderr), produced.stderr
    running = logged_config(produced.stderr, "ProducerConfig")
    expected = {**clientprofile.settings("producer"), "acks": "-1"}  # the client logs acks=all as -1
    assert {key: running[key] for key in expected} == expected
    assert "Instantiated an idempotent producer." in produced.stderr
    assert re.search(r"ProducerId set to \d+ with epoch \d+", produced.stderr), (
        "no producer id from the brokers"
    )

    consumed = build.java(
        jvm.PROFILE_CHECK, "consume", fmt, bootstrap_servers, topic, str(consumer_file), group, str(MESSAGES)
    )
    assert consumed.returncode == 0, consumed.stderr
    assert not UNKNOWN_CONFIG.search(consumed.stderr), consumed.stderr
    running = logged_config(consumed.stderr, "ConsumerConfig")
    assert {key: running[key] for key in clientprofile.CONSUMER} == dict(clientprofile.CONSUMER)
    assert outputs(consumed.stdout) == {
        **({"ack_mode": "MANUAL_IMMEDIATE"} if fmt == "spring" else {}),
        "consumed": str(MESSAGES),
        "distinct": str(MESSAGES),
        "committed": str(MESSAGES),
        "end": str(MESSAGES),
        "read_again": "0",
    }
    # The brokers hold the group's offsets: every record, committed by the consumer, none by a timer.
    request = [ConsumerGroupTopicPartitions(group)]
    offsets = kafka_admin.list_consumer_group_offsets(request, request_timeout=15)[group].result()
    assert sum(p.offset for p in offsets.topic_partitions if p.topic == topic) == MESSAGES


def test_a_spring_boot_application_with_the_profile_keeps_every_record(
    spring_app: jvm.Build, tmp_path: Path, bootstrap_servers: str, kafka_admin: AdminClient, unique: str
) -> None:
    """The docs' pattern in a running Spring Boot application: KafkaTemplate sends completed by whenComplete, a
    listener acknowledging each record after its work, configured by the profile and nothing else of durability."""
    topic, group = f"{unique}.spring", f"{unique}-spring"
    helpers.create(kafka_admin, topic, 3, 3, DURABLE)
    producer_file, consumer_file = write_profiles(tmp_path, topic, "spring")
    ran = spring_app.java(
        jvm.SPRING_APP,
        f"--spring.config.import=file:{producer_file},file:{consumer_file}",
        f"--spring.kafka.bootstrap-servers={bootstrap_servers}",
        f"--check.topic={topic}",
        f"--check.group={group}",
        f"--check.count={MESSAGES}",
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert outputs(ran.stdout) == {
        "acknowledged": str(MESSAGES),
        "failed": "0",
        "all_read": "true",
        "consumed": str(MESSAGES),
        "distinct": str(MESSAGES),
    }
    log = ran.stdout + ran.stderr  # Spring Boot logs to the console (Logback)
    assert not UNKNOWN_CONFIG.search(log), log
    producer = logged_config(log, "ProducerConfig")
    expected = {**clientprofile.settings("producer"), "acks": "-1"}
    assert {key: producer[key] for key in expected} == expected
    assert re.search(r"ProducerId set to \d+ with epoch \d+", log), "no producer id from the brokers"
    consumer = logged_config(log, "ConsumerConfig")
    assert {key: consumer[key] for key in clientprofile.CONSUMER} == dict(clientprofile.CONSUMER)
    # Spring Boot's kafka-clients (3.9), not the test bed's: the profile's keys are known there too.
    assert re.search(r"Kafka version: 3\.9\.", log), "not the kafka-clients Spring Boot 3.5 manages"
    # The listener's acknowledgements are the group's offsets on the brokers.
    request = [ConsumerGroupTopicPartitions(group)]
    offsets = kafka_admin.list_consumer_group_offsets(request, request_timeout=15)[group].result()
    assert sum(p.offset for p in offsets.topic_partitions if p.topic == topic) == MESSAGES


# ------------------------------------------------------------------------------------------------ Spring Boot


class SpringMetadata:
    """Spring Boot's configuration metadata (spring-boot-autoconfigure's META-INF/spring-configuration-metadata.json)
    and the enum constants of the types it names, read with javap from the jars."""

    def __init__(self, build: jvm.Build) -> None:
        with zipfile.ZipFile(build.jar(jvm.SPRING_JAR_PREFIX)) as jar:
            data = json.loads(jar.read("META-INF/spring-configuration-metadata.json"))
        self.properties: dict[str, dict[str, Any]] = {p["name"]: p for p in data["properties"]}
        self.hints = {h["name"]: [v["value"] for v in h.get("values", ())] for h in data.get("hints", ())}
        self.classpath = os.pathsep.join(
            str(build.jar(p)) for p in (jvm.SPRING_JAR_PREFIX, jvm.SPRING_KAFKA_JAR_PREFIX)
        )
        self._constants: dict[str, list[str]] = {}

    def enum_constants(self, type_name: str) -> list[str]:
        if type_name in self._constants:
            return self._constants[type_name]
        shown = subprocess.run(
            ["javap", "-cp", self.classpath, type_name],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        found = re.findall(rf"public static final {re.escape(type_name)} (\w+);", shown)
        self._constants[type_name] = found
        return found

    def problems(self, key: str, value: str) -> list[str]:
        """Why Spring Boot would not bind `key=value` as meant; [] when it would."""
        if "[" in key:
            owner = key[: key.index("[")]
            kind = self.properties.get(owner, {}).get("type", "")
            return [] if kind.startswith("java.util.Map<java.lang.String,") else [f"{key}: {owner} is no map"]
        found = self.properties.get(key)
        if found is None:
            return [f"{key}: not a Spring Boot property"]
        if "deprecation" in found or found.get("deprecated"):
            return [f"{key}: deprecated ({found.get('deprecation')})"]
        kind = found.get("type", "")
        if kind == "java.lang.Boolean":
            return [] if value in ("true", "false") else [f"{key}: {value!r} is not a boolean"]
        if kind == "java.lang.Integer":
            return [] if value.isdigit() and int(value) <= 2**31 - 1 else [f"{key}: {value!r} is not an int"]
        if self.hints.get(key):
            return [] if value in self.hints[key] else [f"{key}: {value!r} not one of {self.hints[key]}"]
        if kind.startswith("java."):
            return []
        # An enum: Spring binds it ignoring case, '-' and '_'.
        canonical = re.sub(r"[^a-z0-9]", "", value.lower())
        constants = self.enum_constants(kind)
        if canonical in {re.sub(r"[^a-z0-9]", "", c.lower()) for c in constants}:
            return []
        return [f"{key}: {value!r} not one of {constants} ({kind})"]


def client_key(role: str, spring_key: str) -> str | None:
    """The client setting a Spring property carries, or None for a Spring-only one (the listener's ack mode)."""
    inside = re.fullmatch(rf"spring\.kafka\.{role}\.properties\[(.+)\]", spring_key)
    if inside:
        return inside.group(1)
    own: Mapping[str, str] = {v: k for k, v in clientprofile.SPRING_KEYS[role].items()}  # type: ignore[index]
    return own.get(spring_key)


@pytest.mark.parametrize("role", clientprofile.ROLES)
def test_every_spring_key_is_one_spring_boot_binds(build: jvm.Build, role: str) -> None:
    metadata = SpringMetadata(build)
    spring = parse_properties(client_config("orders", role, "spring"))
    assert all(key.startswith("spring.kafka.") for key in spring)
    problems = [p for key, value in spring.items() for p in metadata.problems(key, value)]
    assert problems == []
    # Spring's own keys where it has one: properties[...] only for what it has none for.
    for key in spring:
        if "[" in key:
            inner = key[key.index("[") + 1 : -1]
            assert f"spring.kafka.{role}.{inner.replace('.', '-')}" not in metadata.properties, key
    # The same settings as the Java profile, and for the consumer the listener's manual acknowledgement.
    carried = {client_key(role, k): v for k, v in spring.items() if client_key(role, k) is not None}
    assert carried == clientprofile.settings(role)  # type: ignore[arg-type]
    if role == "consumer":
        assert spring["spring.kafka.consumer.enable-auto-commit"] == "false"
        assert spring["spring.kafka.listener.ack-mode"] in ("manual", "manual_immediate")


def test_the_spring_check_finds_what_spring_would_not_bind(build: jvm.Build) -> None:
    metadata = SpringMetadata(build)
    assert metadata.problems("spring.kafka.producer.idempotence", "true") == [
        "spring.kafka.producer.idempotence: not a Spring Boot property"
    ]
    assert metadata.problems("spring.kafka.listener.ack-mode", "manually") != []
    assert metadata.problems("spring.kafka.consumer.isolation-level", "read_committed") == []
    assert metadata.problems("spring.kafka.consumer.isolation-level", "committed_only") != []
    assert metadata.problems("spring.kafka.consumer.auto-offset-reset", "first") != []
    assert metadata.problems("spring.kafka.consumer.enable-auto-commit", "no") != []
    assert metadata.problems("spring.kafka.producer.acks[all]", "x") != []
