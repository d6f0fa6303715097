"""Authenticated Kafka listeners of the test bed: TLS material, SASL credentials, listener properties.

Every broker has, besides its PLAINTEXT listener (the default bootstrap, and inter-broker traffic):

* ``SASL_PLAINTEXT`` - SASL over plain TCP, mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
* ``SASL_SSL`` - the same mechanisms over TLS
* ``SSL`` - TLS with a client certificate required (mutual TLS), no SASL

One user, ``operator``, with one password for every mechanism: PLAIN users are listed in each SASL
listener's JAAS config (server properties), SCRAM credentials are written into the metadata log when
the storage is formatted (``StorageTool format --add-scram``). The TLS material is PEM made with
openssl: a CA, a server certificate for ``IP:127.0.0.1`` and ``DNS:localhost`` (an unencrypted PKCS#8
key) and a client certificate signed by the same CA. All of it, and the password, is generated once per
state directory (in ``STATE_DIR/kafka-security``) and reused by every later ``up()``.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "LISTENERS",
    "SASL_MECHANISMS",
    "SCRAM_JAAS",
    "SCRAM_MECHANISMS",
    "USERNAME",
    "KafkaSecurity",
    "SecurityError",
    "scram_format_args",
    "write_properties",
]

USERNAME: Final = "operator"
SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# Listener name -> security protocol, besides PLAINTEXT (and the controller's CONTROLLER).
LISTENERS: Final = {"SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL", "SSL": "SSL"}
# A listener's JAAS config for SCRAM: the credentials themselves are in the metadata log.
SCRAM_JAAS: Final = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
_DAYS: Final = "3650"
_CURVE: Final = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


class SecurityError(RuntimeError):
    """The TLS material or the credentials could not be made."""


@dataclass(frozen=True)
class KafkaSecurity:
    """The files and credentials of the authenticated listeners, under ``directory``."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_keystore(self) -> Path:
        """The broker's PEM key store: its unencrypted PKCS#8 key, then its certificate and the CA's."""
        return self.directory / "server.pem"

    @property
    def client_cert_file(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key_file(self) -> Path:
        return self.directory / "client.key"

    @property
    def password_file(self) -> Path:
        return self.directory / "operator.password"

    @property
    def username(self) -> str:
        return USERNAME

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def ready(self) -> bool:
        return (self.directory / ".complete").exists()

    def ensure(self) -> None:
        """Make the CA, the certificates and the password, unless an earlier call made them."""
        if self.ready():
            return
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        password = d / "operator.password"
        password.write_text(secrets.token_hex(16) + "\n")
        password.chmod(0o600)
        _openssl(
            "req", "-x509", *_CURVE, "-nodes", "-days", _DAYS,
            "-keyout", str(d / "ca.key"), "-out", str(self.ca_file),
            "-subj", "/CN=durabletopic test bed CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self._issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth\n")  # fmt: skip
        self._issue("client", f"/CN={USERNAME}", "extendedKeyUsage=clientAuth\n")
        (d / "server.pem").write_text(
            (d / "server.key").read_text() + (d / "server.crt").read_text() + self.ca_file.read_text()
        )
        for path in d.iterdir():
            path.chmod(0o600)
        (d / ".complete").write_text("")

    def _issue(self, name: str, subject: str, extensions: str) -> None:
        d = self.directory
        ext = d / f"{name}.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n" + extensions
        )
        _openssl(
            "req", "-new", *_CURVE, "-nodes", "-keyout", str(d / f"{name}.key"),
            "-out", str(d / f"{name}.csr"), "-subj", subject,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(self.ca_file),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", _DAYS, "-sha256",
            "-extfile", str(ext), "-out", str(d / f"{name}.crt"),
        )  # fmt: skip

    # ------------------------------------------------------------------ broker side

    def format_args(self) -> list[str]:
        """StorageTool ``format`` arguments that store the SCRAM credentials in the metadata log."""
        return scram_format_args(USERNAME, self.password)

    def broker_properties(self) -> dict[str, str]:
        """Server properties of the SASL_PLAINTEXT, SASL_SSL and SSL listeners (not their addresses)."""
        plain_jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{USERNAME}="{self.password}";'
        )
        props = {
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.server_keystore),
        }
        for listener in ("sasl_plaintext", "sasl_ssl"):
            props[f"listener.name.{listener}.plain.sasl.jaas.config"] = plain_jaas
            for mechanism in SCRAM_MECHANISMS:
                props[f"listener.name.{listener}.{mechanism.lower()}.sasl.jaas.config"] = SCRAM_JAAS
        props |= {
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.ssl.ssl.truststore.type": "PEM",
            "listener.name.ssl.ssl.truststore.location": str(self.ca_file),
        }
        return props

    # ------------------------------------------------------------------ client side

    def client_properties(
        self, protocol: str, mechanism: str | None = None, *, password: str | None = None
    ) -> dict[str, str]:
        """librdkafka properties of a client of the ``protocol`` listener, authenticated as ``operator``.

        ``password`` replaces the right one (to be refused); TLS clients trust the bed's CA, and an
        ``SSL`` client presents the client certificate.
        """
        if protocol not in LISTENERS:
            raise ValueError(f"no {protocol} listener in the test bed (one of {sorted(LISTENERS)})")
        props = {"security.protocol": protocol}
        if protocol.startswith("SASL_"):
            if mechanism not in SASL_MECHANISMS:
                raise ValueError(f"sasl mechanism {mechanism!r} is not one of {SASL_MECHANISMS}")
            props |= {
                "sasl.mechanism": mechanism,
                "sasl.username": USERNAME,
                "sasl.password": self.password if password is None else password,
            }
        if protocol.endswith("SSL"):
            props["ssl.ca.location"] = str(self.ca_file)
        if protocol == "SSL":
            props |= {
                "ssl.certificate.location": str(self.client_cert_file),
                "ssl.key.location": str(self.client_key_file),
            }
        return props


def scram_format_args(
    username: str, password: str, mechanisms: Sequence[str] = SCRAM_MECHANISMS
) -> list[str]:
    """StorageTool ``format`` arguments that store ``username``'s SCRAM credentials in the metadata log."""
    args: list[str] = []
    for mechanism in mechanisms:
        args += ["--add-scram", f"{mechanism}=[name={username},password={password}]"]
    return args


def write_properties(path: Path, properties: Mapping[str, str]) -> Path:
    """Write ``key=value`` lines (0600), as a client properties file."""
    path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    path.chmod(0o600)
    return path


def _openssl(*args: str) -> None:
    result = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise SecurityError(f"openssl {args[0]} failed: {result.stderr.strip()}")
