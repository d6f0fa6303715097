"""The operator's container image, built without a Docker engine or a registry.

The repository's own Dockerfile is built by buildah (vfs storage, chroot isolation) on a local
base: Debian bookworm's Python made by mmdebstrap (minbase) from the machine's Debian mirror, shaped
like the official ``python:*-slim-bookworm`` image as far as the Dockerfile needs (``python`` on
PATH, ``python -m pip`` installs into the system, CA certificates, no compiler, no apt lists). It
is passed as the Dockerfile's ``BASE_IMAGE`` build argument.

The result is an OCI archive whose index carries the ``io.containerd.image.name`` annotation, so
``ctr -n k8s.io images import ARCHIVE`` gives exactly one image, named
``localhost/durable-topic-operator:<package version>-<first 12 hex of the build inputs' sha256>``.

Everything is cached under ``$DURABLETOPIC_CACHE/image`` (default ``~/.cache/durabletopic/image``):
``base-<key>/`` the base's root file system (keyed by the base recipe), ``builds/<tag>/`` the
archive (keyed by the hash of the build inputs: Dockerfile, .dockerignore, pyproject.toml,
README.md, operator/, the base's key and the build arguments), ``storage/`` buildah's own. Each is
complete once its ``.complete`` marker exists. A build with nothing changed returns the cached
archive without running buildah.

``python -m tests.testbed.image`` builds (or finds) the image and prints the archive's path and the
image's name, one a line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "localhost/durable-topic-operator"
BASE_REPOSITORY = "localhost/durabletopic-python"
# Changing anything here (or in base_recipe) makes a new base: the key is the recipe's hash.
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-pip", "python-is-python3", "ca-certificates")
BASE_HOOKS = (
    # The official image's Python has no such marker: pip installs into the system.
    'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
)
# As Debian's slim images: no manuals, documentation (but the copyrights), translations.
BASE_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
# Emptied when the root file system becomes the base image (after mmdebstrap's own cleanup, which
# leaves apt's lock files and partial folders), as the official image has them: no apt lists or caches.
BASE_EMPTIED = ("var/lib/apt/lists", "var/cache/apt", "root/.cache", "tmp")
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
# The files of the build context: what .dockerignore lets through, and the Dockerfile itself.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
CONTEXT_DIRS = ("operator",)
IGNORED = re.compile(r"(^|/)(__pycache__|[^/]*\.egg-info)(/|$)|\.pyc$")
ANNOTATION_NAME = "io.containerd.image.name"
ANNOTATION_REF = "org.opencontainers.image.ref.name"
TOOLS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap"}  # program: Debian package
KEEP_BUILDS = 3  # archives kept in the cache, the newest
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
INSECURE_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}


@dataclass(frozen=True)
class BuiltImage:
    """An image in an OCI archive: ``ctr -n k8s.io images import archive`` names it ``name``."""

    archive: Path
    name: str
    digest: str  # the manifest's digest, sha256:...


def log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    cache = os.environ.get("DURABLETOPIC_CACHE") or Path.home() / ".cache" / "durabletopic"
    return Path(cache) / "image"


def run(cmd: Sequence[str | Path], **kw: object) -> str:
    """Runs a command; on failure raises with what it printed."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return str(result.stdout)


def run_logged(cmd: Sequence[str | Path], log_file: Path, env: dict[str, str], timeout: float) -> None:
    """Runs a long command, its output into log_file, each line stamped with the seconds since start;
    on failure raises with the log's end."""
    started = time.monotonic()
    with (
        log_file.open("w") as out,
        subprocess.Popen(
            [str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            out.write(f"[{time.monotonic() - started:6.1f}s] {line}")
            if time.monotonic() - started > timeout:
                process.kill()
    if process.returncode != 0:
        tail = "".join(log_file.read_text().splitlines(keepends=True)[-60:])
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {process.returncode}; {log_file} ends:\n{tail}")


def package_version(root: Path = ROOT) -> str:
    text = (root / "operator" / "durabletopic" / "__init__.py").read_text()
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not found:
        raise RuntimeError("no __version__ in operator/durabletopic/__init__.py")
    return found.group(1)


# ------------------------------------------------------------------------------------ the tools


def ensure_tools() -> None:
    """buildah and mmdebstrap from Debian, installed only when missing (without recommends)."""
    missing = [package for program, package in TOOLS.items() if shutil.which(program) is None]
    if not missing:
        return
    log(f"installing Debian's {', '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(install, env=env)
    except RuntimeError:
        run([*sudo, "apt-get", "update", "-q"], env=env)
        run(install, env=env)


# ------------------------------------------------------------------------------------- the base


def debian_mirrors(files: Iterable[Path] | None = None, suite: str = SUITE) -> list[str]:
    """The machine's Debian sources of ``suite`` (and its -updates, -security), as one-line entries."""
    if files is None:
        files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    entries: list[str] = []
    for path in files:
        if path.is_file():
            entries += (
                deb822_entries(path.read_text()) if path.suffix == ".sources" else one_line_entries(path)
            )
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    mirrors = [e for e in entries if e.split()[2] in wanted]
    return list(dict.fromkeys(mirrors))


def one_line_entries(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb":
            out.append(" ".join(words))
    return out


def deb822_entries(text: str) -> list[str]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line.startswith(("#", " ", "\t")) and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append(f"deb {uri} {suite} {fields.get('components', 'main')}")
    return out


def base_recipe() -> dict[str, object]:
    return {
        "suite": SUITE,
        "variant": "minbase",
        "packages": BASE_PACKAGES,
        "hooks": BASE_HOOKS,
        "dpkg": BASE_DPKG_OPTIONS,
        "emptied": BASE_EMPTIED,
        "mirrors": debian_mirrors(),
        "env": BASE_ENV,
    }


def digest_of(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def base_rootfs(recipe: dict[str, object], key: str) -> Path:
    """The base's root file system as a tar, made once by mmdebstrap (about a minute)."""
    folder = cache_dir() / f"base-{key[:12]}"
    tar = folder / "rootfs.tar"
    if (folder / ".complete").exists():
        return tar
    mirrors = recipe["mirrors"]
    assert isinstance(mirrors, list)
    if not mirrors:
        raise RuntimeError(f"no Debian {SUITE} source in /etc/apt/sources.list*")
    log(f"making the base's root file system with mmdebstrap ({SUITE}, minbase, python3)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.monotonic()
    hooks = [f"--customize-hook={hook}" for hook in BASE_HOOKS]
    hooks += [f"--dpkgopt={option}" for option in BASE_DPKG_OPTIONS]
    run(
        [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            *hooks,
            SUITE,
            tar,
            *mirrors,
        ],
        timeout=1800,
    )
    log(f"mmdebstrap took {time.monotonic() - started:.0f} s")
    (folder / "recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    (folder / ".complete").touch()
    return tar


class Buildah:
    """buildah with its storage (vfs) and configuration under the cache."""

    def __init__(self, home: Path) -> None:
        self.home = home
        policy = home / "policy.json"
        if not policy.exists():
            home.mkdir(parents=True, exist_ok=True)
            policy.write_text(json.dumps(INSECURE_POLICY))
        self.base = [
            "buildah",
            "--root",
            str(home / "storage"),
            "--runroot",
            str(home / "run"),
            "--storage-driver",
            "vfs",
        ]
        self.policy = ["--signature-policy", str(policy)]
        # Its temporary files (and any cache mount of a Dockerfile) stay in the cache too.
        (home / "tmp").mkdir(exist_ok=True)
        self.env = {**os.environ, "BUILDAH_ISOLATION": "chroot", "TMPDIR": str(home / "tmp")}

    def __call__(self, *args: str | Path, timeout: float = 1800) -> str:
        return run([*self.base, *args], timeout=timeout, env=self.env)

    def has_image(self, name: str) -> bool:
        return bool(self("images", "--noheading", "--quiet", "--filter", f"reference={name}").strip())

    def clean(self, keep: str) -> None:
        """No containers left behind, and no image but ``keep`` (the base)."""
        self("rm", "--all")
        for image in json.loads(self("images", "--json") or "[]"):
            if keep not in (image.get("names") or []):
                self("rmi", "--force", image["id"])


def base_image(buildah: Buildah) -> str:
    """The base in buildah's storage, ``localhost/durabletopic-python:bookworm-<recipe key>``."""
    recipe = base_recipe()
    key = digest_of(recipe)
    name = f"{BASE_REPOSITORY}:{SUITE}-{key[:12]}"
    if buildah.has_image(name):
        return name
    tar = base_rootfs(recipe, key)
    log(f"importing the base into buildah's storage as {name}")
    container = buildah("from", *buildah.policy, "scratch").strip()
    try:
        buildah("add", container, tar, "/")
        empty_folders(buildah, container)
        env = [arg for pair in BASE_ENV for arg in ("--env", pair)]
        buildah(
            "config", *env, "--cmd", '["python3"]', "--label", f"durabletopic.base.recipe={key}", container
        )
        buildah("commit", "--rm", *buildah.policy, container, name)
    except BaseException:
        buildah("rm", container)
        raise
    return name


def empty_folders(buildah: Buildah, container: str) -> None:
    mountpoint = Path(buildah("mount", container).strip())
    try:
        for folder in BASE_EMPTIED:
            for child in (mountpoint / folder).glob("*"):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    finally:
        buildah("umount", container)


# ------------------------------------------------------------------------------ the build inputs


def context_files(root: Path = ROOT) -> list[Path]:
    """The build context, relative to root: what the Dockerfile's COPY steps may see."""
    files = [Path(name) for name in CONTEXT_FILES]
    for folder in CONTEXT_DIRS:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not IGNORED.search(relative.as_posix()):
                files.append(relative)
    return files


def inputs_key(root: Path, files: Sequence[Path], build_args: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(build_args, sort_keys=True).encode())
    for relative in files:
        digest.update(f"\0{relative.as_posix()}\0".encode())
        digest.update(hashlib.sha256((root / relative).read_bytes()).digest())
    return digest.hexdigest()


def copy_context(root: Path, files: Sequence[Path], dest: Path) -> None:
    for relative in files:
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, dest / relative)


# ------------------------------------------------------------------------------ the OCI archive


def write_archive(layout: Path, name: str, archive: Path) -> str:
    """The OCI layout as a tar, its index annotated with the image's name; returns the manifest digest."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    (manifest,) = index["manifests"]
    manifest.setdefault("annotations", {}).update({ANNOTATION_NAME: name, ANNOTATION_REF: name})
    index_path.write_text(json.dumps(index))
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=path.relative_to(layout).as_posix(), recursive=False, filter=plain)
    partial.rename(archive)
    return str(manifest["digest"])


def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One build at a time per cache: parallel test sessions share it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def cached(folder: Path) -> BuiltImage | None:
    if not ((folder / ".complete").exists() and (folder / "image.oci.tar").exists()):
        return None
    meta = json.loads((folder / "image.json").read_text())
    return BuiltImage(archive=folder / "image.oci.tar", name=meta["name"], digest=meta["digest"])


def build_image(root: Path = ROOT) -> BuiltImage:
    """The operator's image as an OCI archive, built by buildah from the Dockerfile or found in the cache."""
    with locked(cache_dir() / ".lock"):
        return build_locked(root)


def build_locked(root: Path) -> BuiltImage:
    files = context_files(root)
    version = package_version(root)
    base_key = digest_of(base_recipe())
    args = {"VERSION": version, "BASE_KEY": base_key}
    key = inputs_key(root, files, args)[:12]
    tag = f"{version}-{key}"
    folder = cache_dir() / "builds" / tag
    found = cached(folder)
    if found:
        return found
    ensure_tools()
    buildah = Buildah(cache_dir())
    base = base_image(buildah)
    name = f"{REPOSITORY}:{tag}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="image-", dir=cache_dir()) as work:
        digest = build_into(buildah, root, files, Path(work), name, base, version, key, folder)
    prune(folder.parent, keep=KEEP_BUILDS)
    (folder / "image.json").write_text(
        json.dumps({"name": name, "digest": digest, "base": base}, indent=2) + "\n"
    )
    (folder / ".complete").touch()
    return BuiltImage(archive=folder / "image.oci.tar", name=name, digest=digest)


def trust_mount(bundle: Path = HOST_CA_BUNDLE) -> list[str]:
    """The machine's CA bundle over the image's during the build's RUN steps (not kept in the image):
    PyPI is reached the way this machine reaches it, through whatever proxy its trust store allows."""
    return ["--volume", f"{bundle}:{bundle}:ro"] if bundle.is_file() else []


def build_into(
    buildah: Buildah,
    root: Path,
    files: Sequence[Path],
    work: Path,
    name: str,
    base: str,
    version: str,
    revision: str,
    folder: Path,
) -> str:
    context = work / "context"
    copy_context(root, files, context)
    log(f"building {name} from the Dockerfile on {base}")
    started = time.monotonic()
    try:
        bud: list[str | Path] = [
            *buildah.base,
            "bud",
            *buildah.policy,
            "--isolation",
            "chroot",
            "--pull=never",
            *trust_mount(),
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"VERSION={version}",
            "--build-arg",
            f"REVISION={revision}",
            "--tag",
            name,
            "--file",
            context / "Dockerfile",
            context,
        ]
        run_logged(bud, folder / "build.log", buildah.env, timeout=3600)
        buildah("push", *buildah.policy, name, f"oci:{work / 'layout'}:{name}")
    finally:
        buildah.clean(keep=base)
    digest = write_archive(work / "layout", name, folder / "image.oci.tar")
    log(f"built and archived in {time.monotonic() - started:.0f} s")
    return digest


def prune(builds: Path, keep: int) -> None:
    """Only the newest few archives stay (one each a branch or two may come back to)."""
    done = sorted(
        (d for d in builds.iterdir() if (d / ".complete").exists()), key=lambda d: d.stat().st_mtime
    )
    for folder in done[: max(len(done) - keep + 1, 0)]:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    image = build_image()
    print(image.archive)
    print(image.name)


if __name__ == "__main__":
    main()
