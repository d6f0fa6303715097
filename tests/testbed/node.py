"""The test bed's node: containerd, a kubelet and kube-scheduler, so that Pods of the bed's API server
run, as on a real cluster's node, from images imported into containerd (there is no registry).

``Node(bed).up()`` starts it (or adopts the one running) and waits until the Node is Ready;
``down()`` stops it and leaves nothing behind; ``import_image(archive, name)`` imports an OCI archive.
The bed must run. Root is needed (network namespaces, cgroups, mounts). On the command line:
``python -m tests.testbed node-up`` / ``node-down`` / ``node-status``.

Networking (see :class:`~tests.testbed.config.PodNetwork`): Pods live on the CNI bridge network
``10.244.K.0/24`` behind the bridge ``dtcniK``, which the node makes with the gateway address
``10.244.K.1`` (also the node's IP; the kubelet listens there) and the ``kubernetes`` Service's ClusterIP
``10.96.K.1``. The bed's services listen on 127.0.0.1 only; the node's forwarder passes
``10.96.K.1:443`` to the API server (so the Service env the kubelet gives every container, and the
API server's certificate, work unchanged) and ``10.244.K.1:<port>`` to each broker's POD listener,
which the brokers advertise at that address. There is no kube-proxy, no cluster DNS and no route out
of the pod network (IP forwarding stays off).

What the node touches outside its directory (``STATE_DIR/node``), and undoes at ``down()``: the bridge,
the cgroups under ``/<cgroupRoot>`` (``dtnodeK``) of every cgroup v1 hierarchy, the sysctls the kubelet
sets (recorded at start, restored at stop), ``/var/log/containers`` links to its Pods' logs, CNI result
caches of its network in ``/var/lib/cni``, shim sockets in ``/run/containerd/s``, the kubelet's
``/var/lib/kubelet/device-plugins/kubelet.sock`` (a fixed path: one node per machine), and those
directories when it made them. A node left by a crashed run is cleaned up at the next ``up()``.
containerd's images stay in ``STATE_DIR/node/containerd`` from one run to the next (see ``images_dir``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar, Final

from .bed import Testbed
from .config import BROKER_IDS, ENV_PREFIX, K8S_VERSION, PodNetwork, TestbedError
from .procs import is_alive, signal_process, wait_until
from .supervisor import Supervisor

__all__ = ["NODE_NAME", "Node"]

log = logging.getLogger(__name__)

NODE_NAME: Final = "testbed-node"
CRICTL_VERSION: Final = "v1.37.0"
KEPT_IMAGES: Final = 2  # imported images kept between runs of the node, besides the pause image
# The sysctls the kubelet sets at start (unless protectKernelDefaults), and the one a CNI gateway sets.
KERNEL_TUNABLES: Final = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
)
CGROUP_FS: Final = Path("/sys/fs/cgroup")
SHIM_SOCKETS: Final = Path("/run/containerd/s")
CONTAINER_LOG_LINKS: Final = Path("/var/log/containers")
CNI_CACHE: Final = Path("/var/lib/cni/results")
# The kubelet's device plugin socket is here whatever its root directory: one node per machine.
DEVICE_PLUGINS: Final = Path("/var/lib/kubelet/device-plugins")
# Directories outside the node's own that containerd, the CNI plugins and the kubelet create: removed
# at stop (when empty) unless they were there before the node started.
MACHINE_DIRS: Final = (
    SHIM_SOCKETS,
    SHIM_SOCKETS.parent,
    CONTAINER_LOG_LINKS,
    CNI_CACHE,
    CNI_CACHE.parent,
    DEVICE_PLUGINS,
    DEVICE_PLUGINS.parent,
)


@dataclasses.dataclass(frozen=True)
class NodePrograms:
    """What ``tests/testbed/install.sh node`` installs."""

    kubelet: Path
    kube_scheduler: Path
    crictl: Path
    pause_archive: Path
    pause_image: str
    containerd: str = "containerd"
    ctr: str = "ctr"
    cni_bin_dir: Path = Path("/usr/lib/cni")

    @classmethod
    def from_cache(cls, cache: Path, env: Mapping[str, str]) -> NodePrograms:
        version = env.get("DURABLETOPIC_K8S_VERSION") or K8S_VERSION
        node_bin = cache / f"kubernetes-node-{version}" / "bin"
        crictl = env.get("DURABLETOPIC_CRICTL_VERSION") or CRICTL_VERSION
        return cls(
            kubelet=node_bin / "kubelet",
            kube_scheduler=node_bin / "kube-scheduler",
            crictl=cache / f"crictl-{crictl}" / "bin" / "crictl",
            pause_archive=cache / f"pause-{version}" / "pause.oci.tar",
            pause_image=f"localhost/durabletopic/pause:{version}",
        )

    def missing(self) -> list[str]:
        files = [
            self.kubelet,
            self.kube_scheduler,
            self.crictl,
            self.pause_archive,
            self.cni_bin_dir / "bridge",
        ]
        found = [str(p) for p in files if not p.exists()]
        return found + [p for p in (self.containerd, self.ctr, "runc", "ip", "mount") if not shutil.which(p)]


class Node(Supervisor):
    """The single node of a running :class:`~tests.testbed.bed.Testbed`; its state in ``STATE_DIR/node``."""

    __test__ = False
    STOP_ORDER: ClassVar[tuple[str, ...]] = ("kube-scheduler", "kubelet", "pod-forwarder", "containerd")
    LABEL = "the test bed's node"

    def __init__(self, bed: Testbed | None = None, env: Mapping[str, str] | None = None) -> None:
        self.bed = bed or Testbed()
        super().__init__(dataclasses.replace(self.bed.layout, state_dir=self.bed.state_dir / "node"))
        self.programs = NodePrograms.from_cache(self.bed.cache_dir, os.environ if env is None else env)
        self.name = NODE_NAME
        self._stopping: Mapping[str, Any] = {}  # the record of the node being stopped

    # ------------------------------------------------------------------ what Pods see

    @property
    def network(self) -> PodNetwork:
        return self.bed.pod_network

    @property
    def pod_bootstrap_servers(self) -> str:
        """The Kafka bootstrap servers for a client in a Pod (the brokers' POD listeners)."""
        return self.bed.pod_bootstrap_servers

    @property
    def pod_api_server(self) -> tuple[str, int]:
        """The API server for a client in a Pod: the ``kubernetes`` Service's ClusterIP and port 443
        (what the kubelet puts into KUBERNETES_SERVICE_HOST/PORT)."""
        return self.bed.pod_api_server

    @property
    def cgroup_root(self) -> str:
        return f"/dtnode{self.network.index}"

    @property
    def containerd_socket(self) -> Path:
        return self.data_dir / "containerd" / "containerd.sock"

    @property
    def images_dir(self) -> Path:
        """containerd's root (images, their unpacked layers): kept from one run of the node to the
        next, so that stopping does not delete tens of thousands of files and an image imported
        again is there at once. Only the pause image and the ``KEPT_IMAGES`` last imported stay."""
        return self.state_dir / "containerd"

    @property
    def pod_logs_dir(self) -> Path:
        return self.data_dir / "pod-logs"

    @property
    def config_dir(self) -> Path:
        return self.state_dir / "config"

    # ------------------------------------------------------------------ images and the runtime

    def import_image(self, archive: Path | str, name: str, timeout: float = 300) -> None:
        """Import the OCI archive ``archive`` (one image) into containerd's k8s.io namespace as exactly
        ``name`` (its index is rewritten on the way to say so; the archive is not changed)."""
        self._require_state()
        cmd = [self.programs.ctr, "--address", str(self.containerd_socket), "-n", "k8s.io"]
        with tempfile.TemporaryFile() as output:
            proc = subprocess.Popen(
                [*cmd, "images", "import", "-"], stdin=subprocess.PIPE, stdout=output, stderr=output
            )
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError), proc.stdin:
                _renamed_archive(Path(archive), name, proc.stdin)
            proc.wait(timeout=timeout)
            output.seek(0)
            said = output.read().decode(errors="replace")
        if proc.returncode != 0:
            raise TestbedError(f"ctr images import of {archive} as {name} failed: {said}")
        self._record_import(name)
        listed = self.ctr("images", "ls", "-q").stdout.split()
        if name not in listed:
            raise TestbedError(f"{name} is not among containerd's images after the import: {listed}")

    def _record_import(self, name: str) -> None:
        imports = self._imports()
        imports[name] = time.time()
        (self.images_dir / "imports.json").write_text(json.dumps(imports, indent=2) + "\n")

    def _imports(self) -> dict[str, float]:
        try:
            return dict(json.loads((self.images_dir / "imports.json").read_text()))
        except (OSError, ValueError):
            return {}

    def _prune_images(self) -> None:
        """Remove the Pods a crashed run left in containerd's records, and every image but the pause
        image and the ``KEPT_IMAGES`` last imported (containerd deletes their files in the background)."""
        self.crictl("rmp", "--all", "--force", check=False)
        pause = self.programs.pause_image
        imports = sorted(self._imports().items(), key=lambda item: item[1], reverse=True)
        keep = {pause, *[name for name, _ in imports if name != pause][:KEPT_IMAGES]}
        images = json.loads(self.crictl("images", "-o", "json").stdout).get("images") or []
        for image in images:
            tags = set(image.get("repoTags") or ())
            if not tags & keep:
                self.crictl("rmi", image["id"], check=False)  # every name of it, its id too
            elif tags - keep:
                self.ctr("images", "rm", *sorted(tags - keep), check=False)  # a name of a kept image

    def ctr(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``ctr`` against the node's containerd in the k8s.io namespace."""
        cmd = [self.programs.ctr, "--address", str(self.containerd_socket), "-n", "k8s.io", *args]
        return _run(cmd, check=check, timeout=timeout)

    def crictl(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``crictl`` against the node's containerd (CRI)."""
        endpoint = f"unix://{self.containerd_socket}"
        cmd = [str(self.programs.crictl), "--runtime-endpoint", endpoint, "--image-endpoint", endpoint, *args]
        return _run(cmd, check=check, timeout=timeout)

    def pod_sandbox_id(self, namespace: str, pod: str) -> str:
        ids = self.crictl("pods", "--namespace", namespace, "--name", f"^{pod}$", "--state", "ready", "-q")
        sandbox = ids.stdout.split()
        if len(sandbox) != 1:
            raise TestbedError(f"expected one ready sandbox of Pod {namespace}/{pod}, found {sandbox}")
        return sandbox[0]

    def pod_sandbox_pid(self, namespace: str, pod: str) -> int:
        """The pid of the sandbox (pause) process of a running Pod: ``/proc/PID/ns/net`` is its network."""
        info = json.loads(self.crictl("inspectp", "-o", "json", self.pod_sandbox_id(namespace, pod)).stdout)
        return int(info["info"]["pid"])

    def container_pid(self, namespace: str, pod: str, container: str) -> int:
        """The pid of a running container of a Pod: ``/proc/PID/environ`` is its environment and
        ``/proc/PID/root`` its file system, mounted volumes included."""
        sandbox = self.pod_sandbox_id(namespace, pod)
        ids = self.crictl(
            "ps", "--pod", sandbox, "--name", f"^{container}$", "--state", "running", "-q"
        ).stdout
        if len(ids.split()) != 1:
            raise TestbedError(
                f"expected one running container {container} in {namespace}/{pod}: {ids.split()}"
            )
        info = json.loads(self.crictl("inspect", "-o", "json", ids.split()[0]).stdout)
        return int(info["info"]["pid"])

    def run_in_pod_network(
        self, namespace: str, pod: str, argv: list[str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (a program of this machine) in the network namespace of a running Pod."""
        pid = self.pod_sandbox_pid(namespace, pod)
        return _run(["nsenter", f"--net=/proc/{pid}/ns/net", *argv], check=False, timeout=timeout)

    def node_ready(self) -> bool:
        result = self.bed.kubectl(
            "get",
            "node",
            self.name,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
            timeout=10,
        )
        return result.returncode == 0 and result.stdout.strip() == "True"

    # ------------------------------------------------------------------ lifecycle

    def up(self, timeout: float = 120.0) -> bool:
        """Start the node (the bed must run) and wait until it is Ready; False when it already ran."""
        if os.geteuid() != 0:
            raise TestbedError("the test bed's node needs root (network namespaces, cgroups, mounts)")
        if not self.bed.is_running():
            raise TestbedError(f"no test bed runs in {self.bed.state_dir}; start it first")
        self.bed.pod_bootstrap_servers  # noqa: B018 - raises for a bed without POD listeners
        return super().up(timeout)

    def _adopt(self, state: dict[str, Any]) -> bool:
        same_bed = state.get("bed_started_at") == self._bed_started_at()
        if same_bed and all(self._alive(state, name) for name in self.STOP_ORDER):
            return super()._adopt(state)
        log.info("cleaning up the remains of a node in %s", self.state_dir)
        self._stop_locked(state)
        return False

    # ------------------------------------------------------------------ start

    def _start(self, timeout: float) -> None:
        began = time.monotonic()
        self._sweep({})
        # The sysctls are recorded to be restored at stop.
        self._new_state(
            ("data", "config", "logs"),
            sysctls={key: _read_sysctl(key) for key in KERNEL_TUNABLES},
            machine_dirs_made=[str(d) for d in MACHINE_DIRS if not d.exists()],
            network_index=self.network.index,
            apiserver_port=self.bed.ports.apiserver,
            # A node outlives no bed: one recorded for an earlier bed is stopped, not adopted.
            bed_started_at=self._bed_started_at(),
        )
        self._make_bridge()
        self._make_cgroup_root()
        self._spawn(
            "containerd", [self.programs.containerd, "--config", str(self._write_containerd_config())]
        )
        self._wait(self.containerd_socket.exists, 30, "containerd's socket")
        self._wait(lambda: self.ctr("version", check=False).returncode == 0, 30, "containerd to answer")
        self._prune_images()
        self.import_image(self.programs.pause_archive, self.programs.pause_image)
        self._spawn(
            "pod-forwarder",
            [sys.executable, str(Path(__file__).with_name("forward.py")), *self._forward_routes()],
        )
        self._delete_node_object()  # a Node left by a crashed run could look Ready for a while
        self._spawn("kubelet", self._kubelet_argv())
        self._spawn("kube-scheduler", self._scheduler_argv())
        remaining = max(10.0, timeout - (time.monotonic() - began))
        self._wait(self.node_ready, remaining, f"Node {self.name} to be Ready")
        log.info("node up in %.1f s", time.monotonic() - began)

    def _bed_started_at(self) -> float | None:
        state = self.bed.state_file.exists() and json.loads(self.bed.state_file.read_text())
        return state.get("started_at") if state else None

    def _forward_routes(self) -> list[str]:
        net, ports = self.network, self.bed.ports
        routes = [f"{net.service_ip}:443=127.0.0.1:{ports.apiserver}"]
        for i in BROKER_IDS:
            port = ports.broker(i, "POD")
            routes.append(f"{net.gateway}:{port}=127.0.0.1:{port}")
        return routes

    def _make_bridge(self) -> None:
        net = self.network
        _run(["ip", "link", "add", net.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{net.gateway}/24", "dev", net.bridge])
        _run(["ip", "addr", "add", f"{net.service_ip}/32", "dev", net.bridge])
        _run(["ip", "link", "set", net.bridge, "up"])

    def _make_cgroup_root(self) -> None:
        for hierarchy in _cgroup_hierarchies():
            if not (hierarchy / "tasks").exists():
                continue  # the unified (v2) hierarchy: the kubelet makes its own cgroups there
            path = hierarchy / self.cgroup_root.lstrip("/")
            path.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for key in ("cpuset.cpus", "cpuset.mems"):
                    (path / key).write_text((hierarchy / key).read_text())

    def _write_containerd_config(self) -> Path:
        base = self.data_dir / "containerd"
        cni_dir = self.config_dir / "cni"
        cni_dir.mkdir(parents=True, exist_ok=True)
        (cni_dir / "10-testbed.conflist").write_text(json.dumps(self._cni_config(), indent=2) + "\n")
        text = CONTAINERD_CONFIG.format(
            root=self.images_dir,
            state=base / "state",
            socket=self.containerd_socket,
            pause=self.programs.pause_image,
            cni_bin=self.programs.cni_bin_dir,
            cni_conf=cni_dir,
            runc_root=base / "runc",
        )
        path = self.config_dir / "containerd.toml"
        path.write_text(text)
        return path

    def _cni_config(self) -> dict[str, Any]:
        net = self.network
        return {
            "cniVersion": "0.4.0",
            "name": self._cni_network_name(),
            "plugins": [
                {
                    # The node made the bridge and gave it the gateway address; not a gateway here,
                    # so the plugin leaves IP forwarding alone (Pods reach only the host's addresses).
                    "type": "bridge",
                    "bridge": net.bridge,
                    "isGateway": False,
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": net.subnet, "gateway": net.gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.data_dir / "cni-ipam"),
                    },
                },
                {"type": "loopback"},
            ],
        }

    def _cni_network_name(self) -> str:
        return f"dtnode{self.network.index}"

    def _kubelet_argv(self) -> list[str]:
        root = self.data_dir / "kubelet"
        return [
            str(self.programs.kubelet),
            f"--config={self._write_kubelet_config()}",
            f"--kubeconfig={self.bed.kubeconfig}",
            f"--root-dir={root}",
            f"--cert-dir={root / 'pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.network.gateway}",
            "--v=1",
        ]

    def _write_kubelet_config(self) -> Path:
        gateway = self.network.gateway
        socket = f"unix://{self.containerd_socket}"
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # Served on the pod network's gateway only (the API server reaches it there for logs
            # and exec); anonymous and allowed all: a throwaway node of a test bed.
            "address": gateway,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": gateway,
            "healthzPort": 10248,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": socket,
            "imageServiceEndpoint": socket,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "failCgroupV1": False,
            "failSwapOn": False,
            "podLogsDir": str(self.pod_logs_dir),
            "volumePluginDir": str(self.data_dir / "volume-plugins"),
            "nodeStatusUpdateFrequency": "2s",
            "nodeStatusReportFrequency": "10s",
            "syncFrequency": "10s",
            "maxPods": 30,
            # Imported images can be pulled from nowhere: never collect them, never evict for disk.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "shutdownGracePeriod": "0s",
            "resolvConf": "/etc/resolv.conf",
        }
        path = self.config_dir / "kubelet.json"
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path

    def _scheduler_argv(self) -> list[str]:
        return [
            str(self.programs.kube_scheduler),
            f"--kubeconfig={self.bed.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--v=1",
        ]

    # ------------------------------------------------------------------ stop

    def _stop_locked(self, state: dict[str, Any] | None, timeout: float = 60.0) -> None:
        if state is None:
            return
        procs = state.get("procs", {})
        for name in ("kube-scheduler", "kubelet"):
            if name in procs:
                _kill_recorded(procs[name], timeout)
        containerd = procs.get("containerd") or {}
        if is_alive(containerd.get("pid"), containerd.get("start_time")):
            # Through the CRI, so that containerd tears down each Pod's network and mounts itself.
            removed = self.crictl("rmp", "--all", "--force", check=False, timeout=90)
            if removed.returncode != 0:
                log.warning("crictl rmp failed: %s", removed.stderr.strip())
        self._stopping = state
        super()._stop_locked(state, timeout)
        self._delete_node_object()

    def _remove_runtime_files(self) -> None:
        # After every process is gone, before the data directory (mounts included) is removed.
        self._sweep(self._stopping)
        super()._remove_runtime_files()
        shutil.rmtree(self.config_dir, ignore_errors=True)

    def _sweep(self, state: Mapping[str, Any]) -> None:
        """Undo whatever a node of this bed may have left outside its processes; idempotent."""
        socket = str(self.containerd_socket)
        _kill_shims(socket)
        self._kill_cgroup_processes()
        _unmount_under(self.state_dir)
        self._remove_cgroups()
        _run(["ip", "link", "del", self.network.bridge], check=False)
        for key, value in (state.get("sysctls") or {}).items():
            if value is not None and _read_sysctl(key) != value:
                _write_sysctl(key, value)
        self._remove_links_and_caches()
        made_dirs = state.get("machine_dirs_made") or ()
        if str(DEVICE_PLUGINS) in made_dirs:
            (DEVICE_PLUGINS / "kubelet.sock").unlink(missing_ok=True)
        for made in made_dirs:
            with contextlib.suppress(OSError):
                Path(made).rmdir()  # only when empty: something else may have come to use it

    def _kill_cgroup_processes(self) -> None:
        pids = {pid for cgroup in self._cgroups() for pid in _cgroup_pids(cgroup)}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if pids:
            wait_until(lambda: not any(is_alive(p) for p in pids), 30, "the node's containers to exit")

    def _cgroups(self) -> list[Path]:
        """Every cgroup of the node (its root included), deepest first."""
        found: list[Path] = []
        for hierarchy in _cgroup_hierarchies():
            top = hierarchy / self.cgroup_root.lstrip("/")
            if top.is_dir():
                found.extend(p for p in top.rglob("*") if p.is_dir())
                found.append(top)
        return sorted(found, key=lambda p: len(p.parts), reverse=True)

    def _remove_cgroups(self) -> None:
        for cgroup in self._cgroups():
            for _ in range(50):
                try:
                    cgroup.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)  # its last tasks are still exiting
            else:
                log.warning("could not remove cgroup %s", cgroup)

    def _remove_links_and_caches(self) -> None:
        logs = str(self.pod_logs_dir)
        if CONTAINER_LOG_LINKS.is_dir():
            for link in CONTAINER_LOG_LINKS.iterdir():
                with contextlib.suppress(OSError):
                    if link.is_symlink() and os.readlink(link).startswith(logs):
                        link.unlink()
        if CNI_CACHE.is_dir():
            for cached in CNI_CACHE.glob(f"{self._cni_network_name()}-*"):
                cached.unlink(missing_ok=True)
            # containerd gives every sandbox a loopback of its own, cached by sandbox id.
            sandboxes = self.images_dir / "io.containerd.grpc.v1.cri" / "sandboxes"
            for sandbox in sandboxes.glob("*") if sandboxes.is_dir() else ():
                (CNI_CACHE / f"cni-loopback-{sandbox.name}-lo").unlink(missing_ok=True)

    def _delete_node_object(self) -> None:
        if self.bed.is_running():
            self.bed.kubectl("delete", "node", self.name, "--ignore-not-found", "--wait=false", check=False)

    # ------------------------------------------------------------------ what Supervisor asks

    def _check_programs(self) -> None:
        missing = self.programs.missing()
        if missing:
            raise TestbedError(
                "the node's programs are not installed: "
                + ", ".join(missing)
                + ". Run `bash tests/testbed/install.sh node`."
            )

    def _check_ports(self) -> None:
        """The node listens only on its own bridge's addresses (and unix sockets): nothing to check."""

    def _wait_serving(self, name: str, timeout: float) -> None:
        self._wait(lambda: self._alive(self._require_state(), name), timeout, f"{name} to run")

    def _wait_healthy(self, timeout: float) -> None:
        self._wait(self.node_ready, timeout, f"Node {self.name} to be Ready")

    def _healthy(self) -> bool:
        return self.node_ready()

    def _endpoints(self) -> dict[str, str]:
        host, port = self.pod_api_server
        return {
            "node": self.name,
            "pod_bootstrap_servers": self.pod_bootstrap_servers,
            "pod_api_server": f"{host}:{port}",
        }

    def _down_hint(self) -> str:
        return f"{ENV_PREFIX}DIR={self.bed.state_dir} {sys.executable} -m tests.testbed node-down"

    def _service_ports(self, name: str) -> list[int]:
        return []

    def _recorded_ports(self, state: Mapping[str, Any]) -> dict[str, int] | None:
        return None


CONTAINERD_CONFIG: Final = """\
# written by tests/testbed/node.py
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket}"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{pause}"
    # no CAP_SYS_RESOURCE here: runc cannot set a negative oom_score_adj (the sandbox's -998)
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{cni_bin}"
      conf_dir = "{cni_conf}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{runc_root}"
"""


# ---------------------------------------------------------------------- helpers


def _run(cmd: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise TestbedError(f"{' '.join(cmd)} exited with {result.returncode}: {result.stderr.strip()}")
    return result


def _read_sysctl(key: str) -> str | None:
    try:
        return (Path("/proc/sys") / key).read_text().strip()
    except OSError:
        return None


def _write_sysctl(key: str, value: str) -> None:
    try:
        (Path("/proc/sys") / key).write_text(value + "\n")
    except OSError as exc:
        log.warning("could not restore %s to %s: %s", key, value, exc)


def _kill_recorded(record: Mapping[str, Any], timeout: float) -> None:
    pid, start_time = record.get("pid"), record.get("start_time")
    if pid and signal_process(pid, signal.SIGKILL, start_time):
        wait_until(lambda: not is_alive(pid, start_time), timeout, f"pid {pid} to exit")


def _cgroup_hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies (v1 ones, and the unified one of a hybrid setup)."""
    if not CGROUP_FS.is_dir():
        return []
    return [p for p in sorted(CGROUP_FS.iterdir()) if p.is_dir() and (p / "cgroup.procs").exists()]


def _cgroup_pids(cgroup: Path) -> list[int]:
    try:
        return [int(line) for line in (cgroup / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _proc_cmdlines() -> Iterator[tuple[int, list[str]]]:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (proc / "cmdline").read_bytes()
                yield int(proc.name), raw.decode(errors="replace").split("\0")


def _kill_shims(socket: str) -> None:
    """SIGKILL the containerd shims serving ``socket``'s containerd, and remove their sockets."""
    killed = []
    for pid, argv in _proc_cmdlines():
        if not argv or "containerd-shim" not in Path(argv[0]).name:
            continue
        flags = dict(zip(argv[1::2], argv[2::2], strict=False))
        if flags.get("-address") != socket:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        # containerd 1.6: the shim's socket is /run/containerd/s/sha256(address/namespace/id).
        digest = hashlib.sha256(f"{socket}/{flags.get('-namespace', '')}/{flags.get('-id', '')}".encode())
        (SHIM_SOCKETS / digest.hexdigest()).unlink(missing_ok=True)
    if killed:
        wait_until(lambda: not any(is_alive(p) for p in killed), 30, "the node's containerd shims to exit")


def _unmount_under(root: Path) -> None:
    """Unmount everything mounted at or below ``root``, deepest first (lazily if busy)."""
    prefix = str(root.resolve())
    for _ in range(5):
        mounts = [m for m in _mount_points() if m == prefix or m.startswith(prefix + "/")]
        if not mounts:
            return
        for mount in sorted(mounts, key=len, reverse=True):
            if subprocess.run(["umount", mount], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    log.warning("mounts left under %s: %s", prefix, _mount_points())


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        points.append(point.encode().decode("unicode_escape"))
    return points


def _renamed_archive(archive: Path, name: str, out: IO[bytes]) -> None:
    """Copy the OCI archive ``archive`` to the stream ``out``, its index naming the one image ``name``."""
    with tarfile.open(archive) as src, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            stream = src.extractfile(member) if member.isreg() else None
            if member.name.lstrip("./") == "index.json" and stream is not None:
                data = _renamed_index(json.load(stream), name, archive)
                dst.addfile(_sized_copy(member, len(data)), io.BytesIO(data))
            else:
                dst.addfile(member, stream)


def _renamed_index(index: dict[str, Any], name: str, archive: Path) -> bytes:
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise TestbedError(f"{archive} holds {len(manifests)} images; import_image wants exactly one")
    manifests[0]["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
    }
    return json.dumps(index).encode()


def _sized_copy(member: tarfile.TarInfo, size: int) -> tarfile.TarInfo:
    copy = tarfile.TarInfo(member.name)
    copy.mode, copy.mtime, copy.size = member.mode, member.mtime, size
    return copy
