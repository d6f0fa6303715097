"""Kafka client properties read from a file: the connection settings (security, SASL, TLS) the
operator and its commands use, with secrets read from mounted files."""

from __future__ import annotations

from pathlib import Path

# The logger librdkafka's own log lines go to (queued until the client is polled).
LIBRDKAFKA_LOGGER = "durabletopic.kafka.librdkafka"
FILE_SUFFIX = ".file"
SECRET_PROPERTIES = frozenset(
    {"sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret"}
)


def read_client_properties(path: Path) -> dict[str, str]:
    """Reads key=value lines (comments with #) of librdkafka client properties.

    `KEY.file=PATH` sets KEY to the contents of PATH, so that a secret such as `sasl.password`
    comes from a mounted Secret file and never from the environment or the properties file.
    """
    properties: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key.removesuffix(FILE_SUFFIX) in SECRET_PROPERTIES and key.endswith(FILE_SUFFIX):
            properties[key.removesuffix(FILE_SUFFIX)] = Path(value).read_text().strip()
        else:
            properties[key] = value
    return properties
