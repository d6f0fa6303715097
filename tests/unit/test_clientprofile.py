"""The client durability profile: its settings, its formats, librdkafka's acceptance of every key, and the
`client-config` and `probe` commands' arguments (no servers)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from durabletopic.cli import main
from durabletopic.core import clientprofile
from durabletopic.tools.probe import ProbeConfig, producer_config

NOWHERE = "127.0.0.1:1"  # nothing listens there: the clients are built, never connected


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


# ---------------------------------------------------------------------- the settings


def test_producer_settings_keep_every_acknowledged_message() -> None:
    producer = clientprofile.settings("producer")
    assert producer["acks"] == "all"
    assert producer["enable.idempotence"] == "true"
    assert producer["retries"] == "2147483647"
    assert int(producer["max.in.flight.requests.per.connection"]) <= 5  # the most idempotence keeps in order
    backoff, backoff_max = int(producer["retry.backoff.ms"]), int(producer["retry.backoff.max.ms"])
    assert 0 < backoff < backoff_max
    # Java refuses delivery.timeout.ms < linger.ms + request.timeout.ms (30 s by default).
    assert int(producer["delivery.timeout.ms"]) >= 120_000


def test_consumer_settings_commit_after_processing() -> None:
    assert clientprofile.settings("consumer") == {
        "enable.auto.commit": "false",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    }


def test_settings_are_copies_and_roles_are_checked() -> None:
    clientprofile.settings("producer")["acks"] = "0"
    assert clientprofile.settings("producer")["acks"] == "all"
    with pytest.raises(ValueError, match="unknown role"):
        clientprofile.settings("admin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown format"):
        clientprofile.render("t", "producer", "yaml")  # type: ignore[arg-type]


@pytest.mark.parametrize("role", clientprofile.ROLES)
def test_every_format_says_the_same(role: clientprofile.Role) -> None:
    expected = clientprofile.settings(role)
    assert parse_properties(clientprofile.render("orders", role, "properties")) == expected
    assert json.loads(clientprofile.render("orders", role, "json")) == expected
    env = parse_env(clientprofile.render("orders", role, "env"))
    assert env.pop("KAFKA_TOPIC") == "orders"
    assert clientprofile.settings_from_env(env, role) == expected
    other = "consumer" if role == "producer" else "producer"
    assert clientprofile.settings_from_env(env, other) == {}


def test_java_is_the_properties_format() -> None:
    for role in clientprofile.ROLES:
        assert clientprofile.render("orders", role, "java") == clientprofile.render(
            "orders", role, "properties"
        )


def test_spring_properties_use_spring_boots_keys_where_it_has_them() -> None:
    producer = parse_properties(clientprofile.render("orders", "producer", "spring"))
    assert producer == {
        "spring.kafka.producer.acks": "all",
        "spring.kafka.producer.properties[enable.idempotence]": "true",
        "spring.kafka.producer.retries": "2147483647",
        "spring.kafka.producer.properties[retry.backoff.ms]": "500",
        "spring.kafka.producer.properties[retry.backoff.max.ms]": "10000",
        "spring.kafka.producer.properties[delivery.timeout.ms]": "300000",
        "spring.kafka.producer.properties[max.in.flight.requests.per.connection]": "5",
    }
    consumer = parse_properties(clientprofile.render("orders", "consumer", "spring"))
    assert consumer == {
        "spring.kafka.consumer.enable-auto-commit": "false",
        "spring.kafka.consumer.auto-offset-reset": "earliest",
        "spring.kafka.consumer.isolation-level": "read_committed",
        "spring.kafka.listener.ack-mode": "manual_immediate",
    }
    assert clientprofile.render("orders", "consumer", "spring").startswith(
        "# durabletopic client profile: consumer settings for topic orders, Spring Boot application.properties\n"
    )


def test_env_names() -> None:
    assert clientprofile.env_name("producer", "acks") == "KAFKA_PRODUCER_ACKS"
    assert clientprofile.env_name("producer", "enable.idempotence") == "KAFKA_PRODUCER_ENABLE_IDEMPOTENCE"
    assert clientprofile.env_name("consumer", "enable.auto.commit") == "KAFKA_CONSUMER_ENABLE_AUTO_COMMIT"
    for role in clientprofile.ROLES:  # the mapping back to keys only works without '_' in a key
        assert not any("_" in key for key in clientprofile.settings(role))


def test_configmap_data() -> None:
    data = clientprofile.configmap_data("orders.v1")
    assert data["topic"] == "orders.v1"
    assert data["KAFKA_TOPIC"] == "orders.v1"
    for role in clientprofile.ROLES:
        expected = clientprofile.settings(role)
        assert parse_properties(data[f"{role}.properties"]) == expected
        assert "topic orders.v1" in data[f"{role}.properties"]
        assert json.loads(data[f"{role}.json"]) == expected
        assert clientprofile.settings_from_env(data, role) == expected
    assert data["KAFKA_PRODUCER_ACKS"] == "all"
    assert data["KAFKA_CONSUMER_ENABLE_AUTO_COMMIT"] == "false"
    for key, value in data.items():  # a ConfigMap's keys and values
        assert key.replace("-", "").replace(".", "").replace("_", "").isalnum(), key
        assert isinstance(value, str)


# ---------------------------------------------------------------------- librdkafka takes every key


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _librdkafka_logger() -> tuple[logging.Logger, _Collect]:
    logger = logging.getLogger(f"test.clientprofile.librdkafka.{id(object())}")
    handler = _Collect()
    logger.addHandler(handler)
    logger.propagate = False
    return logger, handler


def _config_warnings(handler: _Collect) -> list[str]:
    return [line for line in handler.lines if "CONFWARN" in line or "ignored" in line]


def test_librdkafka_producer_accepts_every_producer_key() -> None:
    logger, handler = _librdkafka_logger()
    conf: dict[str, Any] = {
        "bootstrap.servers": NOWHERE,
        "logger": logger,
        **clientprofile.settings("producer"),
    }
    producer = Producer(conf)  # an unknown key or a bad value raises KafkaException here
    producer.poll(0.1)  # librdkafka hands its log lines over in poll()
    producer.flush(0)
    assert _config_warnings(handler) == []
    # JSON as the ConfigMap carries it, loaded as it is.
    Producer({"bootstrap.servers": NOWHERE, **json.loads(clientprofile.render_json("producer"))}).flush(0)


def test_librdkafka_consumer_accepts_every_consumer_key() -> None:
    logger, handler = _librdkafka_logger()
    conf: dict[str, Any] = {
        "bootstrap.servers": NOWHERE,
        "group.id": "profile-test",
        "logger": logger,
        **clientprofile.settings("consumer"),
    }
    consumer = Consumer(conf)
    consumer.poll(0.1)
    consumer.close()
    assert _config_warnings(handler) == []


def test_the_check_of_warnings_can_fail() -> None:
    logger, handler = _librdkafka_logger()
    producer = Producer(
        {"bootstrap.servers": NOWHERE, "logger": logger, **clientprofile.settings("consumer")}
    )
    producer.poll(0.1)
    producer.flush(0)
    assert any("enable.auto.commit" in line for line in _config_warnings(handler))


@pytest.mark.parametrize("acks", ["all", "1", "0"])
def test_probe_producer_config_is_accepted(acks: str) -> None:
    conf = producer_config(ProbeConfig(bootstrap_servers=NOWHERE, topic="t", messages=1, acks=acks))
    assert conf["acks"] == acks
    assert conf["enable.idempotence"] == ("true" if acks == "all" else "false")
    Producer(conf).flush(0)


# ---------------------------------------------------------------------- the commands


@pytest.mark.parametrize("role", clientprofile.ROLES)
@pytest.mark.parametrize("fmt", clientprofile.FORMATS)
def test_client_config_command_prints_the_profile(
    role: clientprofile.Role, fmt: clientprofile.Format, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["client-config", "orders", "--role", role, "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out == clientprofile.render("orders", role, fmt)


def test_client_config_defaults_to_properties(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client-config", "orders", "--role", "producer"]) == 0
    assert parse_properties(capsys.readouterr().out)["acks"] == "all"


def test_client_config_refuses_a_bad_topic_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client-config", "no/such topic", "--role", "consumer"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert "may contain only" in captured.err


def test_client_config_needs_a_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["client-config", "orders"])
    assert exit_info.value.code == 2
    assert "--role" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--messages", "0"], "--messages must be at least 1"),
        (["--timeout", "0"], "must be positive"),
        (["--max-retries", "1000"], "--max-retries"),
    ],
)
def test_probe_refuses_bad_arguments(extra: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["probe", "--bootstrap-servers", NOWHERE, "--topic", "t", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert says in err


def test_probe_without_a_cluster_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["probe", "--bootstrap-servers", NOWHERE, "--topic", "t", "--messages", "10", "--timeout", "1"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"durabletopic probe: cannot reach Kafka at {NOWHERE}")
    assert len(captured.err.strip().splitlines()) == 1
