"""QemuLab: the real-kernel backend of the lab's scenario driver.

    lab = QemuLab.create("/run/xenha-real", ["n1", "n2"])
    try:
        lab.up()                                   # images built or reused, machines booted,
        lab.check("n1", ["cat", "/proc/drbd"])     # cluster online, fencing enabled
        lab.power("n2", "off")                     # a power cut (QMP quit)
    finally:
        lab.down()                                 # no QEMU left, directory removed

Each node is a QEMU TCG machine booting Xen 4.17 with Debian's kernel as PV dom0 (or the
kernel alone, `xen=False`), the real DRBD 8.4 module, device-mapper/LVM, corosync and
pacemakerd; the project is the installed xenha (make install install-lab, or make
test-real's staged install), copied into the nodes at every boot. Everything runs under
the lab's supervisor (xenha_lab.realkernel.supervisor); this class talks to it through its
control socket, like NamespaceLab, so `QemuLab.attach(DIR)` reaches a lab another process
started. Two nodes at most (one wire); reference/lab-real-kernel.md has every fact used.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from xenha_lab.lab import layout as L
from xenha_lab.lab import linux
from xenha_lab.lab.backend import CommandResult, LabError, NodeBackend, NodeState
from xenha_lab.lab.cluster import Cluster
from xenha_lab.lab.protocol import exchange
from xenha_lab.paths import DEFAULT_PATH
from xenha_lab.realkernel import image
from xenha_lab.realkernel import layout as Q
from xenha_lab.realkernel.supervisor import supervisor_argv, supervisor_marker

HOST_TOOLS = (Q.QEMU, "qemu-img", "setpriv", "debootstrap", "mkfs.ext4", "cpio", "depmod", "dpkg-deb", "apt-get",
              "cibadmin", "crm_attribute", "crm_verify")
MACHINE_OVERHEAD_MB = 800          # QEMU's own memory above the guest's (TCG translation cache, page cache)
CONTROL_TIMEOUT = 60.0
UP_TIMEOUT = 420.0
LOAD_THRESHOLD = "1000%"
TOKEN_MS = 5000
OP_DEFAULT_TIMEOUT = "60s"


def memory_available_mb() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def missing_prerequisites(nodes: int = 2, xen: bool = True) -> list[str]:
    """What this machine lacks to run a real-kernel lab of `nodes` machines (empty when it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the real-kernel lab needs root (debootstrap, chroot, loop-free images)")
    for tool in HOST_TOOLS:
        if shutil.which(tool, path=DEFAULT_PATH) is None:
            problems.append(f"{tool} is not installed (scripts/install-debian-packages)")
    need = nodes * ((Q.XEN_MEMORY_MB if xen else Q.PLAIN_MEMORY_MB) + MACHINE_OVERHEAD_MB)
    have = memory_available_mb()
    if have < need:
        problems.append(f"{nodes} QEMU nodes need about {need} MiB of free memory, {have} MiB are available")
    if (os.cpu_count() or 1) < 2:
        problems.append("the real-kernel lab needs at least 2 CPU cores (each node keeps one busy while booting)")
    return problems


class QemuLab(NodeBackend):
    def __init__(self, lab: L.LabSpec, xen: bool = True, build_dir: str | None = None,
                 spec: Q.RealSpec | None = None):
        self.lab = lab
        self.xen = xen
        self.build_dir = build_dir
        self.spec = spec
        self.lay = Q.Layout(lab.directory)
        self.nodes = lab.names
        self.cluster = Cluster(self)
        self._supervisor: subprocess.Popen | None = None

    # --- making and finding labs -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, directory: str, nodes, cluster_name: str = "xenha-lab", xen: bool = True,
               build_dir: str | None = None, **options) -> "QemuLab":
        """A lab definition (nothing runs until up()); `nodes` is a count or a list of names."""
        names = [f"n{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else list(nodes)
        if not 1 <= len(names) <= 2:
            raise LabError(f"the real-kernel lab runs one or two nodes, not {len(names)}")
        options.setdefault("lifetime_s", 2 * 3600.0)
        # an emulated node shares its host's cores: a busy host can hold a vCPU for more
        # than the namespace lab's 1 s token, and a node would be lost (and fenced) for it
        options.setdefault("token_ms", TOKEN_MS)
        return cls(L.make_spec(directory, names, cluster_name, **options), xen=xen, build_dir=build_dir)

    @classmethod
    def from_description(cls, directory: str, path: str, **options) -> "QemuLab":
        """A lab with the nodes of a cluster description (names, cluster name, each node's
        replication address on its link)."""
        from xenha.cluster.description import DescriptionError, load

        try:
            description = load(path)
        except DescriptionError as error:
            raise LabError(f"{path}: " + "; ".join(p.split(": ", 1)[-1] for p in error.problems)) from None
        extra = {node.name: [node.replication_address] for node in description.nodes}
        return cls.create(directory, [node.name for node in description.nodes], description.name,
                          extra_addresses=extra, description=os.path.abspath(path), **options)

    @classmethod
    def attach(cls, directory: str) -> "QemuLab":
        spec = Q.Layout(directory).read_spec()
        return cls(spec.lab, xen=spec.xen, spec=spec)

    # --- the supervisor --------------------------------------------------------------------------------------------
    def request(self, op: str, wait: float = CONTROL_TIMEOUT, **fields) -> dict:
        try:
            raw = exchange(self.lay.control, json.dumps({"op": op, **fields}).encode(), wait)
        except FileNotFoundError:
            raise LabError(f"the lab in {self.lay.dir} is not running (no control socket)") from None
        except ConnectionRefusedError:
            raise LabError(f"the lab in {self.lay.dir} is not running (its supervisor is gone)") from None
        except TimeoutError:
            raise LabError(f"the lab's supervisor did not answer {op!r} in {wait:.0f} s") from None
        except OSError as error:
            raise LabError(f"cannot reach the lab's supervisor: {error}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise LabError(f"the lab's supervisor answered nonsense to {op!r}") from None
        if not answer.get("ok"):
            raise LabError(answer.get("error") or f"{op} failed")
        return answer

    def status(self) -> dict:
        return self.request("status", wait=15.0)

    def supervisor_process(self) -> linux.ProcessId | None:
        records = [self.lay.read_state().get("supervisor")]
        try:
            with open(self.lay.path("supervisor.json"), encoding="utf-8") as handle:
                records.append(json.load(handle))
        except (OSError, ValueError):
            pass
        for record in records:
            recorded = linux.ProcessId.from_json(record or {})
            if recorded and linux.is_alive(recorded):
                return recorded
        return None

    # --- up and down ------------------------------------------------------------------------------------------------
    def up(self, timeout: float = UP_TIMEOUT, progress=None) -> dict:
        """Build or reuse the images, clean up what an earlier run left, boot the machines
        one after the other, wait until every node is online in the cluster, enable
        fencing. Returns seconds from the start: {"images", "cleanup", "booted", "online", "ready"}."""
        say = progress or (lambda message: None)
        problems = missing_prerequisites(len(self.nodes), self.xen)
        if problems:
            raise LabError("; ".join(problems))
        started = time.monotonic()
        timings = {}
        say("node images (built once, then reused)")
        try:
            manifest, _steps = image.build(self.build_dir)
        except image.BuildError as error:
            raise LabError(f"node images: {error}") from None
        timings["images"] = time.monotonic() - started
        if os.path.exists(self.lay.dir):
            say(f"cleaning up the earlier lab in {self.lay.dir}")
            self.down(timeout=60.0)
        timings["cleanup"] = time.monotonic() - started
        deadline = time.monotonic() + timeout
        fd, tar = tempfile.mkstemp(prefix="xenha-project-", suffix=".tar")
        os.close(fd)
        try:
            Q.pack_project(tar)
            self.spec = Q.make_spec(self.lab, manifest["products"], xen=self.xen, versions=manifest["versions"])
            Q.create(self.spec, tar)
        finally:
            if os.path.exists(tar):
                os.unlink(tar)
        try:
            self._start_supervisor()
            say("machines booting (Xen, dom0, DRBD, corosync, pacemakerd)" if self.xen else "machines booting")
            self._wait_booted(deadline)
            timings["booted"] = time.monotonic() - started
            say("waiting for every node to be online")
            self.cluster.wait_online(self.nodes, timeout=max(deadline - time.monotonic(), 1.0))
            timings["online"] = time.monotonic() - started
            self.cluster.set_property("stonith-enabled", "true")
            # an emulated node is always busy; Pacemaker's default (80%) would throttle
            # every transition to one action at a time
            self.cluster.set_property("load-threshold", LOAD_THRESHOLD)
            # operations without a timeout of their own (the lab's fence device): Pacemaker's
            # 20 s default is too short for an emulated node on a busy host
            self.cluster.run(["crm_attribute", "--type", "op_defaults", "--name", "timeout", "--update",
                              OP_DEFAULT_TIMEOUT])
            self.cluster.wait_started(L.FENCE_DEVICE, timeout=max(deadline - time.monotonic(), 1.0))
            timings["ready"] = time.monotonic() - started
        except BaseException:
            self.down(keep_files=True)
            raise
        return timings

    def _start_supervisor(self) -> None:
        with open(self.lay.log, "ab") as log:
            self._supervisor = subprocess.Popen(supervisor_argv(self.lay.dir), stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True,
                                                env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"})
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and self._supervisor.poll() is None:
            found = linux.identify(self._supervisor.pid, supervisor_marker(self.lay.dir))
            if found:
                L.write_atomic(self.lay.path("supervisor.json"), json.dumps(found.to_json()) + "\n")
                return
            time.sleep(0.01)

    def _wait_booted(self, deadline: float) -> None:
        while True:
            if self._supervisor.poll() is not None:
                raise LabError(f"the lab's supervisor exited with {self._supervisor.returncode}: "
                               f"{_last_line(self.lay.log)}")
            try:
                status = self.status()
            except LabError:
                status = None
            if status:
                for node in status["nodes"]:
                    if node["phase"] == "failed" or (status.get("ready") and node["power"] == "off"):
                        raise LabError(f"{node['name']} did not boot ({node['phase']}): "
                                       f"{_last_line(self.lay.console(node['name']), 'xenha-boot')} "
                                       f"(see {self.lay.console(node['name'])})")
                if status.get("ready") and all(n["booted"] for n in status["nodes"]):
                    return
            if time.monotonic() >= deadline:
                phases = ", ".join(f"{n['name']} {n['phase']}" for n in (status or {}).get("nodes", ()))
                raise LabError(f"the machines did not boot in time ({phases or 'no status'}; see "
                               f"{self.lay.dir}/nodes/*/console.log)")
            time.sleep(0.5)

    def down(self, timeout: float = 60.0, keep_files: bool = False) -> dict:
        """Cut every machine's power, end the supervisor, kill any QEMU of this lab that is
        left (an interrupted run), remove the directory. Signals only processes this lab
        started (pid, start time and command line checked)."""
        started = time.monotonic()
        if os.path.exists(self.lay.dir) and not os.path.exists(self.lay.spec_file) and os.listdir(self.lay.dir):
            raise LabError(f"{self.lay.dir} is not a lab directory (no lab.json); not touching it")
        supervisor = self.supervisor_process()
        logs = os.environ.get("XENHA_LAB_LOGS")
        target = os.path.join(logs, os.path.basename(self.lay.dir) + time.strftime("-%H%M%S")) if logs else None
        if target and supervisor is not None:
            self.collect_node_logs(target)
        if supervisor is not None:
            try:
                self.request("shutdown", wait=timeout)
            except LabError:
                pass
            if not linux.wait_gone(supervisor, 10.0):
                linux.stop_checked(supervisor, term_timeout=10.0)
        if self._supervisor is not None:
            try:
                self._supervisor.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass
        for qemu in self.leftover_machines():
            linux.signal_checked(qemu, signal.SIGKILL)
            linux.wait_gone(qemu, 5.0)
        if target and os.path.exists(self.lay.spec_file):
            self.save_logs(target)
        if not keep_files and os.path.exists(self.lay.dir):
            shutil.rmtree(self.lay.dir)
        return {"down": time.monotonic() - started}

    def leftover_machines(self) -> list[linux.ProcessId]:
        """QEMU processes of this lab still running (by the QMP socket on their command line)."""
        found = []
        for pid in linux.all_pids():
            for name in self.nodes:
                ident = linux.identify(pid, Q.qemu_marker(self.lay, name))
                if ident is not None and (linux.cmdline(pid) or "").startswith(Q.QEMU):
                    found.append(ident)
        return found

    NODE_LOGS = ("/var/log/pacemaker/pacemaker.log", "/var/log/corosync/corosync.log",
                 "/var/log/xen/xen-hotplug.log", "/var/log/xenha-agent.log", "/var/log/sshd.log")

    def collect_node_logs(self, target: str) -> None:
        """The logs inside the nodes that are up (their disks go with the lab), into `target`."""
        os.makedirs(target, exist_ok=True)
        try:
            nodes = self.powered()
        except LabError:
            return
        for node in nodes:
            for path in self.NODE_LOGS:
                try:   # a busy emulated node takes long to send megabytes of Pacemaker log
                    data = self.read_file(node, path, wait=120.0)
                except LabError:
                    data = None
                if data is not None:
                    with open(os.path.join(target, f"{node}-{os.path.basename(path)}"), "wb") as handle:
                        handle.write(data)
            try:   # the kernel's own words: DRBD's state changes and its helpers' exit codes
                kernel = self.run(node, ["dmesg"], timeout=30.0)
            except LabError:
                continue
            with open(os.path.join(target, f"{node}-dmesg.log"), "w", encoding="utf-8") as handle:
                handle.write(kernel.stdout)

    def save_logs(self, target: str) -> None:
        os.makedirs(target, exist_ok=True)
        for source in (self.lay.log, self.lay.state_file):
            if os.path.exists(source):
                shutil.copy2(source, target)
        for node in self.nodes:
            for source in (self.lay.console(node), self.lay.qemu_log(node)):
                if os.path.exists(source):
                    shutil.copy2(source, os.path.join(target, f"{node}-{os.path.basename(source)}"))
        xenlog = os.path.join(self.lay.share, "xenlog")
        if os.path.isdir(xenlog):
            shutil.copytree(xenlog, os.path.join(target, "xenlog"), dirs_exist_ok=True)

    # --- inside a node ---------------------------------------------------------------------------------------------
    def run(self, node: str, argv, timeout: float = 60.0, input: str | None = None) -> CommandResult:
        self.lab.node(node)
        argv = [str(a) for a in argv]
        started = time.monotonic()
        answer = self.request("run", wait=timeout + 30.0, node=node, argv=argv, timeout=timeout, input=input)
        return CommandResult(node, tuple(argv), int(answer["rc"]), answer.get("out") or "", answer.get("err") or "",
                             time.monotonic() - started, bool(answer.get("timed_out")))

    def read_file(self, node: str, path: str, wait: float = 40.0) -> bytes | None:
        if not path.startswith("/"):
            raise LabError(f"{path}: not an absolute path")
        self.lab.node(node)
        data = self.request("read", wait=wait, node=node, path=path).get("data")
        return None if data is None else base64.b64decode(data)

    # --- power and network -----------------------------------------------------------------------------------------
    def power(self, node: str, action: str) -> None:
        self.lab.node(node)
        if action not in ("on", "off", "reboot"):
            raise LabError(f"power action {action!r}: on, off or reboot")
        self.request("power", node=node, action=action)

    def cut(self, node: str) -> None:
        self.lab.node(node)
        self.request("cut", node=node)

    def restore(self, node: str) -> None:
        self.lab.node(node)
        self.request("restore", node=node)

    def partition(self, *groups) -> None:
        groups = [[g] if isinstance(g, str) else list(g) for g in groups]
        for group in groups:
            for name in group:
                self.lab.node(name)
        self.request("partition", groups=groups)

    def heal(self) -> None:
        self.request("heal")

    def node_state(self, node: str) -> NodeState:
        self.lab.node(node)
        for entry in self.status()["nodes"]:
            if entry["name"] == node:
                return NodeState(name=node, address=entry["address"].split("/")[0], power=entry["power"],
                                 booted=entry["booted"], link=entry["link"], segment=entry["segment"],
                                 boots=entry["boots"], details={"phase": entry["phase"], "boot_id": entry["boot_id"],
                                                                "addresses": entry["addresses"]})
        raise LabError(f"the supervisor does not know {node}")

    def powered(self) -> list[str]:
        return [n["name"] for n in self.status()["nodes"] if n["power"] == "on" and n["booted"]]

    def events(self) -> list[dict]:
        return list(self.status()["events"])


def _last_line(path: str, containing: str = "") -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [line.strip() for line in handle if line.strip() and containing in line]
    except OSError:
        return "no log"
    return lines[-1][:200] if lines else "no log"
