"""The test bed's brokers: the small thread counts for a 2-core machine, or Kafka's defaults on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testbed.config import Layout, Ports, kafka_properties
from tests.testbed.security import KafkaSecurity


def broker_lines(tmp_path: Path, env: dict[str, str]) -> set[str]:
    layout = Layout.from_env(env, state_dir=tmp_path)
    security = KafkaSecurity(tmp_path / "kafka-security")
    security.directory.mkdir(exist_ok=True)
    security.password_file.write_text("secret\n")
    text = kafka_properties(
        1, Ports.from_env({}), layout.data_dir, security, default_threads=layout.kafka_default_threads
    )
    return set(text.splitlines())


def test_the_brokers_run_few_threads_unless_kafkas_defaults_are_asked_for(tmp_path: Path) -> None:
    small = broker_lines(tmp_path, {})
    assert {"num.network.threads=2", "num.io.threads=4"} <= small
    default = broker_lines(tmp_path, {"DURABLETOPIC_TESTBED_KAFKA_THREADS": "default"})
    assert not any(line.startswith(("num.network.threads", "num.io.threads")) for line in default)


def test_an_unknown_thread_setting_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DURABLETOPIC_TESTBED_KAFKA_THREADS must be small or default"):
        Layout.from_env({"DURABLETOPIC_TESTBED_KAFKA_THREADS": "many"}, state_dir=tmp_path)
