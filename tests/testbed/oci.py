"""A small writer of OCI image archives (the OCI image layout in one tar), standard library only.

``python3 oci.py OUT.tar NAME LAYER_DIR [LAYER_DIR...] --entrypoint /pause`` writes an image whose
layers are the given directories (owner root, in that order), for ``ctr images import``: ``oci-layout``,
``index.json`` (one manifest, annotated with ``io.containerd.image.name`` = NAME) and ``blobs/sha256/``
holding the config, the manifest and the gzip layers. install.sh runs it with the system's python3, so it
imports nothing of the project.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Blob", "image_archive", "layer_from_dir", "write_image"]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


def _json_blob(media_type: str, value: Any) -> Blob:
    return Blob(media_type, json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def layer_from_dir(root: Path) -> tuple[Blob, str]:
    """A gzip layer of everything under ``root`` (owned by root, mtime 0) and its diff id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isreg():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    plain = raw.getvalue()
    packed = gzip.compress(plain, mtime=0)
    return Blob(LAYER_TYPE, packed), "sha256:" + hashlib.sha256(plain).hexdigest()


def image_archive(
    name: str, layers: Sequence[tuple[Blob, str]], *, entrypoint: Sequence[str] = (), cmd: Sequence[str] = ()
) -> dict[str, bytes]:
    """The files of the OCI layout (path -> content) of a linux/amd64 image called ``name``."""
    config = _json_blob(
        CONFIG_TYPE,
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": list(entrypoint) or None, "Cmd": list(cmd) or None},
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        },
    )
    manifest = _json_blob(
        MANIFEST_TYPE,
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": config.descriptor(),
            "layers": [blob.descriptor() for blob, _ in layers],
        },
    )
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest.descriptor(annotations={NAME_ANNOTATION: name, REF_ANNOTATION: tag})],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index).encode(),
    }
    for blob in (config, manifest, *(blob for blob, _ in layers)):
        files[f"blobs/sha256/{blob.digest.split(':', 1)[1]}"] = blob.data
    return files


def write_image(out: Path, files: dict[str, bytes]) -> Path:
    """Write the layout's files into the tar ``out`` (atomically)."""
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, data in files.items():
            _add(tar, path, data)
    tmp.replace(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write an OCI image archive from directories")
    parser.add_argument("out", type=Path)
    parser.add_argument("name", help="the image's name, e.g. localhost/pause:v1")
    parser.add_argument("layers", nargs="+", type=Path, help="directories, one layer each")
    parser.add_argument("--entrypoint", nargs="*", default=[])
    parser.add_argument("--cmd", nargs="*", default=[])
    args = parser.parse_args(argv)
    layers = [layer_from_dir(path) for path in args.layers]
    write_image(args.out, image_archive(args.name, layers, entrypoint=args.entrypoint, cmd=args.cmd))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
