"""Parts of the test bed's node that need no node: the OCI archive writer, the forwarder, the pod
network's addresses and the brokers' POD listener."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.testbed.config import PodNetwork, Ports, kafka_properties
from tests.testbed.forward import _serve_one, parse_route
from tests.testbed.node import _renamed_archive
from tests.testbed.oci import image_archive, layer_from_dir, write_image
from tests.testbed.security import KafkaSecurity


def _archive(tmp_path: Path, name: str) -> Path:
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "pause").write_bytes(b"\x7fELF pretend")
    return write_image(
        tmp_path / "image.tar", image_archive(name, [layer_from_dir(root)], entrypoint=["/pause"])
    )


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def test_an_oci_archive_names_its_image_and_holds_every_blob_under_its_digest(tmp_path: Path) -> None:
    files = _members(_archive(tmp_path, "localhost/x/pause:v1"))

    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    [entry] = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "localhost/x/pause:v1"
    blobs = {name.rsplit("/", 1)[1]: data for name, data in files.items() if name.startswith("blobs/sha256/")}
    assert all(hashlib.sha256(data).hexdigest() == digest for digest, data in blobs.items())
    manifest = json.loads(blobs[entry["digest"].split(":")[1]])
    config = json.loads(blobs[manifest["config"]["digest"].split(":")[1]])
    assert config["config"]["Entrypoint"] == ["/pause"]
    [layer] = manifest["layers"]
    with tarfile.open(fileobj=io.BytesIO(blobs[layer["digest"].split(":")[1]])) as tar:
        [member] = tar.getmembers()
    assert (member.name, member.uid, member.gid) == ("pause", 0, 0)


def test_an_archive_is_imported_under_the_name_asked_for_and_nothing_else(tmp_path: Path) -> None:
    archive = _archive(tmp_path, "localhost/x/pause:v1")
    out = io.BytesIO()

    _renamed_archive(archive, "localhost/other/name:dev", out)

    renamed = tmp_path / "renamed.tar"
    renamed.write_bytes(out.getvalue())
    files, original = _members(renamed), _members(archive)
    [entry] = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"] == {
        "io.containerd.image.name": "localhost/other/name:dev",
        "org.opencontainers.image.ref.name": "dev",
    }
    assert {k: v for k, v in files.items() if k != "index.json"} == {
        k: v for k, v in original.items() if k != "index.json"
    }


def test_routes_are_read_as_listen_and_target_addresses() -> None:
    assert parse_route("10.96.7.1:443=127.0.0.1:30443") == (("10.96.7.1", 443), ("127.0.0.1", 30443))


async def test_the_forwarder_passes_bytes_both_ways() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.readexactly(5))
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = upstream.sockets[0].getsockname()[:2]
    front = await asyncio.start_server(lambda r, w: _serve_one(target, r, w), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*front.sockets[0].getsockname()[:2])
    writer.write(b"hello")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b"echo:hello"
    writer.close()
    front.close()
    upstream.close()


def test_beds_on_different_ports_get_different_pod_networks() -> None:
    networks = [PodNetwork.for_ports(Ports.from_base(base)) for base in (27400, 29400, 30400)]
    assert len({n.subnet for n in networks}) == len({n.bridge for n in networks}) == 3
    assert len({n.service_cidr for n in networks}) == 3
    assert all(len(n.bridge) <= 15 for n in networks)  # a Linux interface name


def test_a_broker_listens_for_pods_on_loopback_and_is_advertised_at_the_gateway(tmp_path: Path) -> None:
    security = KafkaSecurity(tmp_path / "kafka-security")
    security.directory.mkdir()
    security.password_file.write_text("secret\n")
    ports = Ports.from_base(30400)
    lines = dict(
        line.split("=", 1)
        for line in kafka_properties(2, ports, tmp_path, security).splitlines()
        if "=" in line and not line.startswith("#")
    )
    gateway = PodNetwork.for_ports(ports).gateway
    assert f"POD://127.0.0.1:{ports.broker(2, 'POD')}" in lines["listeners"].split(",")
    assert f"POD://{gateway}:{ports.broker(2, 'POD')}" in lines["advertised.listeners"].split(",")
    assert "POD:PLAINTEXT" in lines["listener.security.protocol.map"].split(",")
    assert all("0.0.0.0" not in listener for listener in lines["listeners"].split(","))
