"""The namespace backend: cluster nodes as namespaces on this machine, run by a
supervisor process (xenha_lab.lab.supervisor), each with real corosync and pacemakerd.

    lab = NamespaceLab.create("/run/xenha-lab", ["n1", "n2", "n3"])
    try:
        lab.up()                                      # cluster online, fencing enabled
        lab.check("n1", ["pcs", "status"])
        lab.power("n2", "off")                        # a power cut
    finally:
        lab.down()                                    # nothing left behind

`NamespaceLab.attach(DIR)` reaches a lab another process started (the `xenha lab`
commands). Needs root, util-linux (unshare, nsenter, setpriv), iproute2 and the lab's
fence agent installed in /usr/sbin (`make install-lab`).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time

from xenha_lab.lab import layout as L
from xenha_lab.lab import linux, machine
from xenha_lab.lab.backend import CommandResult, LabError, NodeBackend, NodeState
from xenha_lab.lab.cluster import Cluster
from xenha_lab.lab.protocol import exchange
from xenha_lab.lab.supervisor import supervisor_argv, supervisor_marker
from xenha_lab.paths import DEFAULT_PATH, default_simbindir

HOST_TOOLS = ("setpriv", "unshare", "nsenter", "ip", "losetup", "corosync", "corosync-cfgtool", "pacemakerd",
              "cibadmin", "crm_attribute", "crm_verify", "crm_mon", "pcs", "sshd", "ssh", "ssh-keygen", "lvm",
              "drbdadm")
CONTROL_TIMEOUT = 60.0


def missing_prerequisites(fence_agent: str | None = None) -> list[str]:
    """What this machine lacks to run a namespace lab (empty when it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root (namespaces, mounts, network devices)")
    for tool in HOST_TOOLS:
        if shutil.which(tool, path=DEFAULT_PATH) is None:
            problems.append(f"{tool} is not installed")
    agent = fence_agent or L.default_fence_agent()
    if not os.access(agent, os.X_OK):
        problems.append(f"{agent} is not installed (make install-lab)")
    if not problems:
        try:
            proc = subprocess.run(["unshare", "--net", "--mount", "--uts", "--ipc", "--pid", "--fork", "true"],
                                  capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            proc = None
        if proc is None or proc.returncode != 0:
            problems.append("namespaces are not available here: "
                            + (proc.stderr.strip() if proc else "unshare hung"))
    return problems


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str | None:
    """`path` inside the directory tree `root` (a node's /proc/PID/root), symlinks
    followed as the node would: an absolute link target starts again at `root`, never at
    the host's /. None when a component is missing or the links loop."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError as error:
            if error.errno == errno.EINVAL:          # not a symlink
                resolved.append(part)
                continue
            return None
        links += 1
        if links > max_links:
            return None
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p] + parts
    return os.path.join(root, *resolved)


class NamespaceLab(NodeBackend):
    def __init__(self, spec: L.LabSpec):
        self.spec = spec
        self.lay = L.Layout(spec.directory)
        self.nodes = spec.names
        self._inits: dict[str, linux.ProcessId] = {}
        self._supervisor: subprocess.Popen | None = None
        self.cluster = Cluster(self)
        self.guest_log_dir = self.lay.guest_io

    # --- making and finding labs -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, directory: str, nodes, cluster_name: str = "xenha-lab", **options) -> "NamespaceLab":
        """A lab definition (nothing runs until up()); `nodes` is a count or a list of names."""
        names = [f"n{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else list(nodes)
        if "simbindir" not in options and os.path.isdir(default_simbindir()):
            options["simbindir"] = default_simbindir()      # the installed lab's simulated tools
        options.setdefault("fence_agent", L.default_fence_agent())
        return cls(L.make_spec(directory, names, cluster_name, **options))

    @classmethod
    def from_description(cls, directory: str, path: str, **options) -> "NamespaceLab":
        """A lab with the nodes of a cluster description (their names, the cluster's name,
        each node's replication address on its link)."""
        from xenha.cluster.description import DescriptionError, load

        try:
            description = load(path)
        except DescriptionError as error:
            raise LabError(f"{path}: " + "; ".join(p.split(": ", 1)[-1] for p in error.problems)) from None
        extra = {node.name: [node.replication_address] for node in description.nodes}
        for node in description.nodes:            # a migration address that is an IP: the node has it too
            if node.migration_address not in (node.name, node.replication_address) and _is_ip(node.migration_address):
                extra[node.name].append(node.migration_address)
        options.setdefault("volume_group", description.defaults.volume_group)
        return cls.create(directory, [node.name for node in description.nodes], description.name,
                          extra_addresses=extra, description=os.path.abspath(path), **options)

    @classmethod
    def attach(cls, directory: str) -> "NamespaceLab":
        return cls(L.Layout(directory).read_spec())

    # --- the supervisor --------------------------------------------------------------------------------------------
    def request(self, op: str, wait: float = CONTROL_TIMEOUT, **fields) -> dict:
        """One request to the supervisor's control socket, answered within `wait` seconds."""
        timeout = wait
        try:
            raw = exchange(self.lay.control, json.dumps({"op": op, **fields}).encode(), timeout)
        except FileNotFoundError:
            raise LabError(f"the lab in {self.lay.dir} is not running (no control socket)") from None
        except ConnectionRefusedError:
            raise LabError(f"the lab in {self.lay.dir} is not running (its supervisor is gone)") from None
        except TimeoutError:
            raise LabError(f"the lab's supervisor did not answer {op!r} in {timeout:.0f} s") from None
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
        """The supervisor's record: nodes (power, phase, link, segment, boots), events."""
        answer = self.request("status", wait=15.0)
        for node in answer["nodes"]:
            init = linux.ProcessId.from_json(node.get("init")) if node.get("init") else None
            if init:
                self._inits[node["name"]] = init
            else:
                self._inits.pop(node["name"], None)
        return answer

    def supervisor_process(self) -> linux.ProcessId | None:
        """The lab's supervisor if it runs: as recorded when it was started (by whichever
        process started it) or by itself."""
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
    def up(self, timeout: float = 90.0, progress=None) -> dict:
        """Clean up what an earlier run left in the directory, start the supervisor (which
        boots every node), wait until every node is online in the cluster, enable fencing.
        Returns seconds from the start: {"cleanup", "booted", "online", "ready"}."""
        say = progress or (lambda message: None)
        problems = missing_prerequisites(self.spec.fence_agent)
        if problems:
            raise LabError("; ".join(problems))
        started = time.monotonic()
        timings = {}
        if os.path.exists(self.lay.dir):
            say(f"cleaning up the earlier lab in {self.lay.dir}")
            self.down(timeout=60.0)
        timings["cleanup"] = time.monotonic() - started
        L.create(self.spec)
        deadline = started + timeout
        try:
            self._start_supervisor()
            say("nodes booting")
            self._wait_booted(deadline)
            timings["booted"] = time.monotonic() - started
            for node in self.nodes:
                machine.ensure_volume_group(self, node, self.spec.volume_group, machine.disk_device(self.lay, node))
            say("waiting for every node to be online")
            self.cluster.wait_online(self.nodes, timeout=max(deadline - time.monotonic(), 1.0))
            timings["online"] = time.monotonic() - started
            self.cluster.set_property("stonith-enabled", "true")
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
        # recorded at once (pid, start time, command line), for a `lab down` from another process
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
                               f"{self._last_log_line()}")
            try:
                status = self.status()
            except LabError:
                status = None
            if status and status.get("ready"):
                failed = [n["name"] for n in status["nodes"] if n["phase"] in ("failed", "off")]
                if failed:
                    raise LabError(f"nodes {', '.join(failed)} did not boot (see {self.lay.node(failed[0])}"
                                   "/console.log)")
                if all(n["booted"] for n in status["nodes"]):
                    return
            if time.monotonic() >= deadline:
                raise LabError(f"the nodes did not boot in time (see {self.lay.dir}/nodes/*/console.log)")
            time.sleep(0.1)

    def _last_log_line(self) -> str:
        try:
            with open(self.lay.log, encoding="utf-8", errors="replace") as handle:
                lines = [line.strip() for line in handle if line.strip()]
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"

    def down(self, timeout: float = 60.0, keep_files: bool = False) -> dict:
        """Stop the nodes (orderly, then a power cut), end the supervisor, detach the lab's
        loop devices, remove the directory. Signals only processes this lab recorded."""
        started = time.monotonic()
        if os.path.exists(self.lay.dir) and not os.path.exists(self.lay.spec_file) and os.listdir(self.lay.dir):
            raise LabError(f"{self.lay.dir} is not a lab directory (no lab.json); not touching it")
        supervisor = self.supervisor_process()
        if supervisor is not None:
            try:
                self.request("shutdown", wait=timeout, timeout=max(timeout / 3, 5.0))
            except LabError:
                pass
            if not linux.wait_gone(supervisor, 10.0):
                linux.stop_checked(supervisor, term_timeout=10.0)
        if self._supervisor is not None:
            try:
                self._supervisor.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass
        # a supervisor killed with SIGKILL takes its nodes with it (parent-death signal);
        # anything recorded that is still there is ended here, checked by pid, start time, cmdline
        for node in self.lay.read_state().get("nodes", ()):
            init = linux.ProcessId.from_json(node.get("init") or {})
            if init and linux.is_alive(init):
                linux.signal_checked(init, signal.SIGKILL)
                linux.wait_gone(init, 5.0)
        for device, _backing in linux.loop_devices_under(self.lay.dir):
            subprocess.run(["losetup", "-d", device], capture_output=True, timeout=10)
        self._inits.clear()
        logs = os.environ.get("XENHA_LAB_LOGS")
        if logs and os.path.exists(self.lay.spec_file):
            self.save_logs(os.path.join(logs, os.path.basename(self.lay.dir) + time.strftime("-%H%M%S")))
        if not keep_files and os.path.exists(self.lay.dir):
            shutil.rmtree(self.lay.dir)
        return {"down": time.monotonic() - started}

    def save_logs(self, target: str) -> None:
        """Copy the lab's logs (supervisor, node consoles, corosync and pacemaker) to `target`."""
        os.makedirs(target, exist_ok=True)
        if os.path.exists(self.lay.log):
            shutil.copy2(self.lay.log, target)
        for node in self.nodes:
            for source in (self.lay.console(node), self.lay.disk(node, "var", "log", "pacemaker", "pacemaker.log"),
                           self.lay.disk(node, "var", "log", "corosync", "corosync.log")):
                if os.path.exists(source):
                    shutil.copy2(source, os.path.join(target, f"{node}-{os.path.basename(source)}"))

    # --- inside a node ---------------------------------------------------------------------------------------------
    def init_of(self, node: str) -> linux.ProcessId:
        self.spec.node(node)
        init = self._inits.get(node)
        if init is None or not linux.is_alive(init):
            self.status()
            init = self._inits.get(node)
        if init is None:
            raise LabError(f"{node} is powered off")
        return init

    def enter_argv(self, node: str, argv) -> list[str]:
        """The host command that runs `argv` inside `node`, in its clean environment."""
        init = self.init_of(node)
        env = [f"{key}={value}" for key, value in L.node_env(self.spec, node).items()]
        return ["nsenter", "-t", str(init.pid), "-m", "-u", "-n", "-p", "-i", "--wd=/", "--",
                "env", "-i", *env, *argv]

    def run(self, node: str, argv, timeout: float = 60.0, input: str | None = None) -> CommandResult:
        argv = [str(a) for a in argv]
        started = time.monotonic()
        proc = subprocess.Popen(self.enter_argv(node, argv), stdin=subprocess.PIPE if input is not None else
                                subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, text=True, env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"})
        try:
            out, err = proc.communicate(input, timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)       # nsenter and what it started inside the node
            out, err = proc.communicate()
            timed_out = True
        return CommandResult(node, tuple(argv), proc.returncode, out, err, time.monotonic() - started, timed_out)

    def read_file(self, node: str, path: str) -> bytes | None:
        if not path.startswith("/"):
            raise LabError(f"{path}: not an absolute path")
        init = self._inits.get(node)
        if init is None or not linux.is_alive(init):
            try:
                init = self.init_of(node)
            except LabError:
                return None
        resolved = resolve_in_root(f"/proc/{init.pid}/root", path)
        if resolved is None:
            return None
        try:
            with open(resolved, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        # the pid could have been reused while reading: trust only a read bracketed by the same init
        return data if linux.is_alive(init) else None

    def list_dir(self, node: str, path: str) -> list[str] | None:
        if not path.startswith("/"):
            raise LabError(f"{path}: not an absolute path")
        init = self._inits.get(node)
        if init is None or not linux.is_alive(init):
            try:
                init = self.init_of(node)
            except LabError:
                return None
        resolved = resolve_in_root(f"/proc/{init.pid}/root", path)
        try:
            names = os.listdir(resolved) if resolved else None
        except OSError:
            return None
        return names if linux.is_alive(init) else None

    def disk_blocks(self, node: str, backing: str) -> dict:
        from xenha_lab.sim import guest_io

        self.spec.node(node)
        return guest_io.disk_blocks(self.lay.disk(node, "var", "lib", "xenha-sim", "drbd-disks"), self.lay.drbd_net,
                                    node, backing)

    # --- power and network -----------------------------------------------------------------------------------------
    def power(self, node: str, action: str) -> None:
        self.spec.node(node)
        if action not in ("on", "off", "reboot"):
            raise LabError(f"power action {action!r}: on, off or reboot")
        self.request("power", node=node, action=action)

    def cut(self, node: str) -> None:
        self.spec.node(node)
        self.request("cut", node=node)

    def restore(self, node: str) -> None:
        self.spec.node(node)
        self.request("restore", node=node)

    def partition(self, *groups) -> None:
        groups = [[g] if isinstance(g, str) else list(g) for g in groups]
        for group in groups:
            for name in group:
                self.spec.node(name)
        self.request("partition", groups=groups)

    def heal(self) -> None:
        self.request("heal")

    def node_state(self, node: str) -> NodeState:
        self.spec.node(node)
        for entry in self.status()["nodes"]:
            if entry["name"] == node:
                return NodeState(name=node, address=entry["address"], power=entry["power"], booted=entry["booted"],
                                 link=entry["link"], segment=entry["segment"], boots=entry["boots"],
                                 details={"phase": entry["phase"], "addresses": entry["addresses"]})
        raise LabError(f"the supervisor does not know {node}")

    def powered(self) -> list[str]:
        return [n["name"] for n in self.status()["nodes"] if n["power"] == "on" and n["booted"]]

    def events(self) -> list[dict]:
        return list(self.status()["events"])
