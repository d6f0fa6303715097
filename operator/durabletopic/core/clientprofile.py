"""The client durability profile of a topic: the producer and consumer settings that keep a message.

Brokers cannot see client settings, so the operator cannot enforce places 1 and 2 of the three places a
message gets lost (see DESIGN.md): it publishes these settings per topic instead, in a ConfigMap
``<name>-client-profile`` (see :func:`configmap_data`), and ``durabletopic client-config`` prints them.

Producer: ``acks=all`` (the leader answers only once every in-sync replica has the message),
idempotence (a retried send is written once and in order), retries without end but with an
exponential backoff from ``retry.backoff.ms`` to ``retry.backoff.max.ms`` (a broker blip does not
burn them all in a second), bounded in time by ``delivery.timeout.ms``, and at most 5 requests in
flight per connection (the most idempotence keeps in order). The application must still check every
send in a delivery callback and re-send what failed.

Consumer: no auto commit (the application commits after processing), start from the earliest offset
when the group has none, and read only committed transactional messages.

Every key has the same name in the Java client (kafka-clients >= 3.7 for ``retry.backoff.max.ms``)
and in librdkafka (confluent-kafka for Python, Go, .NET; there ``delivery.timeout.ms`` is an alias
of ``message.timeout.ms`` and ``retries`` of ``message.send.max.retries``). Values are strings
everywhere, JSON included: every librdkafka binding accepts strings, not every one accepts JSON
numbers and booleans (Go's ConfigMap refuses float64).

Formats:

* ``java`` (or ``properties``, its first name): Java client ``producer.properties`` /
  ``consumer.properties``, the keys of ``org.apache.kafka:kafka-clients``.
* ``spring``: Spring Boot ``application.properties`` lines. A setting Spring Boot has a key of its own for
  (``spring.kafka.producer.acks``, ``.retries``; ``spring.kafka.consumer.enable-auto-commit``,
  ``.auto-offset-reset``, ``.isolation-level``) takes it; the others go through the client's own key,
  ``spring.kafka.producer.properties[enable.idempotence]`` and the like. The consumer's adds
  ``spring.kafka.listener.ack-mode=manual_immediate``: with auto commit off, the listener container
  commits a record's offset when the listener calls ``Acknowledgment.acknowledge()`` after processing it,
  at once (``manual`` would wait for the end of the poll's batch). Properties, not YAML, so that a key
  with dots inside ``[...]`` needs no quoting.
* ``json``: an object of librdkafka keys, to merge into a client's configuration as it is.
* ``env``: ``KEY=value`` lines: ``KAFKA_TOPIC`` and one variable per setting, named
  ``KAFKA_<ROLE>_`` + the key in upper case with ``.`` as ``_`` (``acks`` ->
  ``KAFKA_PRODUCER_ACKS``, ``enable.auto.commit`` -> ``KAFKA_CONSUMER_ENABLE_AUTO_COMMIT``). No key
  of the profile holds ``_``, so the name maps back: lower case, ``_`` as ``.``
  (:func:`settings_from_env`).

This module is pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, Literal

Role = Literal["producer", "consumer"]
Format = Literal["properties", "java", "spring", "json", "env"]

ROLES: Final[tuple[Role, ...]] = ("producer", "consumer")
FORMATS: Final[tuple[Format, ...]] = ("properties", "java", "spring", "json", "env")

MAX_RETRIES: Final = 2147483647  # Java's Integer.MAX_VALUE, librdkafka's maximum

PRODUCER: Final[Mapping[str, str]] = {
    "acks": "all",
    "enable.idempotence": "true",
    "retries": str(MAX_RETRIES),
    "retry.backoff.ms": "500",
    "retry.backoff.max.ms": "10000",
    "delivery.timeout.ms": "300000",
    "max.in.flight.requests.per.connection": "5",
}

CONSUMER: Final[Mapping[str, str]] = {
    "enable.auto.commit": "false",
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
}

# Spring Boot's own keys for settings of the profile (spring-boot-autoconfigure's KafkaProperties); every other
# setting is passed to the client as it is, under spring.kafka.<role>.properties[...].
SPRING_KEYS: Final[Mapping[Role, Mapping[str, str]]] = {
    "producer": {"acks": "spring.kafka.producer.acks", "retries": "spring.kafka.producer.retries"},
    "consumer": {
        "enable.auto.commit": "spring.kafka.consumer.enable-auto-commit",
        "auto.offset.reset": "spring.kafka.consumer.auto-offset-reset",
        "isolation.level": "spring.kafka.consumer.isolation-level",
    },
}
# What a Spring listener needs besides the client's settings: commit each record's offset once processed.
SPRING_LISTENER: Final[Mapping[str, str]] = {"spring.kafka.listener.ack-mode": "manual_immediate"}

TOPIC_ENV: Final = "KAFKA_TOPIC"
ENV_PREFIX: Final[Mapping[Role, str]] = {"producer": "KAFKA_PRODUCER_", "consumer": "KAFKA_CONSUMER_"}

# The ConfigMap's keys besides the env-friendly ones.
TOPIC_KEY: Final = "topic"
PROPERTIES_KEY: Final[Mapping[Role, str]] = {
    "producer": "producer.properties",
    "consumer": "consumer.properties",
}
JSON_KEY: Final[Mapping[Role, str]] = {"producer": "producer.json", "consumer": "consumer.json"}


def settings(role: Role) -> dict[str, str]:
    """The role's settings, librdkafka and Java keys alike."""
    if role == "producer":
        return dict(PRODUCER)
    if role == "consumer":
        return dict(CONSUMER)
    raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")


def env_name(role: Role, key: str) -> str:
    """The environment variable of one setting: ``KAFKA_PRODUCER_ACKS`` for the producer's ``acks``."""
    return ENV_PREFIX[role] + key.upper().replace(".", "_")


def env_vars(topic: str, role: Role) -> dict[str, str]:
    """``KAFKA_TOPIC`` and one variable per setting of the role."""
    return {TOPIC_ENV: topic, **{env_name(role, k): v for k, v in settings(role).items()}}


def settings_from_env(environ: Mapping[str, str], role: Role) -> dict[str, str]:
    """The role's settings read back from variables named as :func:`env_name` names them."""
    prefix = ENV_PREFIX[role]
    return {
        name.removeprefix(prefix).lower().replace("_", "."): value
        for name, value in environ.items()
        if name.startswith(prefix)
    }


def render_properties(topic: str, role: Role) -> str:
    """A Java ``producer.properties`` / ``consumer.properties`` file."""
    lines = [
        f"# durabletopic client profile: {role} settings for topic {topic}",
        "# Merge into the client's own properties (bootstrap.servers, security, serializers).",
        *(f"{key}={value}" for key, value in settings(role).items()),
    ]
    return "\n".join(lines) + "\n"


def spring_key(role: Role, key: str) -> str:
    """The Spring Boot property of one client setting."""
    return SPRING_KEYS[role].get(key) or f"spring.kafka.{role}.properties[{key}]"


def spring_settings(role: Role) -> dict[str, str]:
    """The role's settings as Spring Boot properties; the consumer's with the listener's ack mode."""
    found = {spring_key(role, key): value for key, value in settings(role).items()}
    return found | dict(SPRING_LISTENER) if role == "consumer" else found


def render_spring(topic: str, role: Role) -> str:
    """Spring Boot ``application.properties`` lines."""
    lines = [
        f"# durabletopic client profile: {role} settings for topic {topic}, Spring Boot application.properties",
        "# Merge into the application's own (spring.kafka.bootstrap-servers, security, serializers).",
        *(f"{key}={value}" for key, value in spring_settings(role).items()),
    ]
    return "\n".join(lines) + "\n"


def render_json(role: Role) -> str:
    """The role's librdkafka settings as a JSON object of strings, to merge into a client's config."""
    return json.dumps(settings(role), indent=2) + "\n"


def render_env(topic: str, role: Role) -> str:
    """``KEY=value`` lines (a dotenv file; in a shell: ``set -a; . ./file; set +a``)."""
    return "".join(f"{name}={value}\n" for name, value in env_vars(topic, role).items())


def render(topic: str, role: Role, fmt: Format) -> str:
    if fmt in ("properties", "java"):
        return render_properties(topic, role)
    if fmt == "spring":
        return render_spring(topic, role)
    if fmt == "json":
        return render_json(role)
    if fmt == "env":
        return render_env(topic, role)
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")


def configmap_data(topic: str) -> dict[str, str]:
    """The data of the topic's ``<name>-client-profile`` ConfigMap.

    ``topic``, ``producer.properties``, ``consumer.properties``, ``producer.json``,
    ``consumer.json`` (mount the ConfigMap as a volume: one file each), and the env-friendly keys
    ``KAFKA_TOPIC``, ``KAFKA_PRODUCER_*``, ``KAFKA_CONSUMER_*`` (``env[].valueFrom.configMapKeyRef``,
    or ``envFrom``, which also turns the file keys into variables where Kubernetes allows such names).
    """
    data: dict[str, str] = {TOPIC_KEY: topic}
    for role in ROLES:
        data[PROPERTIES_KEY[role]] = render_properties(topic, role)
        data[JSON_KEY[role]] = render_json(role)
    for role in ROLES:
        data.update(env_vars(topic, role))
    return data
