"""PID 1 of a namespace node: its "firmware and init system".

Started by the supervisor as
    setpriv --pdeathsig KILL -- unshare --net --mount --uts --ipc --pid --fork
        --kill-child --mount-proc --propagation private -- python3 -IS -c … PLAN GO_FD
in a clean environment, it gives the node its own file system view, then waits until
the supervisor has wired its network (a byte on GO_FD), starts the boot services, then
corosync, then pacemakerd once corosync answers; it reaps every orphan of the node.
SIGTERM is an orderly shutdown (pacemakerd, then corosync, each with a bounded wait);
a SIGKILL from the host is a power cut: the kernel kills every process of the node.

The node's file system (everything private is gone with its mount namespace):
    /run        the node's RAM directory (DIR/nodes/N/ram), emptied at every power loss
    /dev        the host's devices, with a writable layer of its own (device-mapper and
                /dev/VG links of one node are not seen by another), its own /dev/pts, /dev/shm
    /usr/sbin   the host's, read-only, with the lab's fence agent over it (fenced looks there)
    /etc, /var  the host's, with the node's disk as a writable layer (DIR/nodes/N/disk):
                corosync.conf, hosts, hostname, /etc/lvm, /etc/ssh, the CIB, /var/lib/xenha-sim
    /root       root's home on the node's disk (DIR/nodes/N/disk/root: its ssh keys)
    /tmp        an empty tmpfs
    /sys        a sysfs of the node's own network namespace
    /run/xenha-lab/{bin,switch,shared}, /run/xenha-sim/drbd-net   bound from the lab directory
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import sys
import time

from xenha_lab.lab import layout as L
from xenha_lab.lab.linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC, mount

SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
GO_TIMEOUT = 30.0


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
    sys.stderr.write(f"{stamp} init: {message}\n")
    sys.stderr.flush()


def _mkdir(path: str, mode: int = 0o755, owner: tuple | None = None) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)


def setup_filesystem(lay: L.Layout, name: str) -> None:
    """The node's private view (see the module docstring). Every source in the lab
    directory is opened first: the directory may itself be under /run, /var or /tmp,
    which the node's own mounts cover."""
    fds = {}
    for key, path in {"ram": lay.ram(name), "etc": lay.disk(name, "etc"), "etc.work": lay.disk(name, "etc.work"),
                      "var": lay.disk(name, "var"), "var.work": lay.disk(name, "var.work"),
                      "tools": lay.tools(name), "switch": lay.switch_dir, "shared": lay.shared, "sbin": lay.sbin,
                      "drbd-net": lay.drbd_net, "root": lay.disk(name, "root")}.items():
        fds[key] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    fd = lambda key: f"/proc/self/fd/{fds[key]}"  # noqa: E731 - a path naming an open directory

    mount("none", "/", None, MS_REC | MS_PRIVATE)
    mount("node-etc", "/etc", "overlay", 0, f"lowerdir=/etc,upperdir={fd('etc')},workdir={fd('etc.work')}")
    mount("node-var", "/var", "overlay", 0, f"lowerdir=/var,upperdir={fd('var')},workdir={fd('var.work')}")
    # read-only: the lab's fence agent over the host's /usr/sbin
    mount("node-sbin", "/usr/sbin", "overlay", 0, f"lowerdir={fd('sbin')}:/usr/sbin")
    mount(fd("ram"), "/run", None, MS_BIND)
    hacluster = L._ids("hacluster", "haclient")
    for path, mode, owner in (("/run/lock", 0o1777, None), ("/run/crm", 0o750, hacluster),
                              (L.NODE_TOOLS, 0o755, None), (L.NODE_SWITCH_DIR, 0o755, None),
                              (L.NODE_SHARED, 0o755, None), (L.NODE_DRBD_NET, 0o755, None),
                              ("/run/xenha-lab/dev/upper", 0o755, None), ("/run/xenha-lab/dev/work", 0o755, None)):
        _mkdir(path, mode, owner)
    for key, target in (("tools", L.NODE_TOOLS), ("switch", L.NODE_SWITCH_DIR), ("shared", L.NODE_SHARED),
                        ("drbd-net", L.NODE_DRBD_NET)):
        mount(fd(key), target, None, MS_BIND)
    mount("nodedev", "/dev", "overlay", 0,
          "lowerdir=/dev,upperdir=/run/xenha-lab/dev/upper,workdir=/run/xenha-lab/dev/work")
    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    if os.path.exists("/dev/ptmx"):
        mount("/dev/pts/ptmx", "/dev/ptmx", None, MS_BIND)
    mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    mount("tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    mount(fd("root"), "/root", None, MS_BIND)
    mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for descriptor in fds.values():
        os.close(descriptor)


class Init:
    def __init__(self, plan: dict):
        self.plan = plan
        self.name = plan["name"]
        self.env = dict(plan["env"])
        self.exited: dict[int, int] = {}        # pid -> exit code, for every child reaped
        self.daemons: dict[int, str] = {}       # pid -> name, the long-running ones
        self.stopping = False

    # --- signals and children ---------------------------------------------------------------------------------
    def tick(self, timeout: float) -> None:
        """Wait up to `timeout` for a signal; reap children; note a shutdown request."""
        info = signal.sigtimedwait(SIGNALS, max(timeout, 0.0))
        while info is not None:
            if info.si_signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) and not self.stopping:
                log(f"signal {signal.Signals(info.si_signo).name}: shutting down")
                self.stopping = True
            info = signal.sigtimedwait(SIGNALS, 0)
        self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self.exited[pid] = code
            name = self.daemons.pop(pid, None)
            if name:
                log(f"{name} (pid {pid}) exited with {code}")

    def spawn(self, argv, name: str | None = None) -> int:
        path = shutil.which(argv[0], path=self.env["PATH"])
        if path is None:
            raise FileNotFoundError(f"{argv[0]} not found on {self.env['PATH']}")
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, 2, 1)]
        pid = os.posix_spawn(path, list(argv), self.env, file_actions=actions, setsigmask=(),
                             setsigdef=tuple(SIGNALS | {signal.SIGPIPE}))
        if name:
            self.daemons[pid] = name
            log(f"started {name} (pid {pid})")
        return pid

    def call(self, argv, timeout: float) -> int | None:
        """Run a short command to its end (None if it had to be killed at `timeout`)."""
        pid = self.spawn(argv)
        deadline = time.monotonic() + timeout
        while pid not in self.exited:
            if time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                while pid not in self.exited:
                    self.tick(0.05)
                return None
            self.tick(0.05)
        return self.exited.pop(pid)

    def alive(self, pid: int | None) -> bool:
        return pid is not None and pid in self.daemons

    def wait_exit(self, pid: int | None, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive(pid) and time.monotonic() < deadline:
            self.tick(0.1)
        return not self.alive(pid)

    def set_state(self, state: str) -> None:
        tmp = L.NODE_STATE + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(state + "\n")
        os.replace(tmp, L.NODE_STATE)
        log(f"state {state}")

    # --- boot and shutdown ----------------------------------------------------------------------------------
    def wait_go(self, fd: int) -> bool:
        deadline = time.monotonic() + GO_TIMEOUT
        while time.monotonic() < deadline and not self.stopping:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                data = os.read(fd, 16)
                os.close(fd)
                return data.startswith(b"go")
            self.tick(0)
        return False

    def boot(self) -> tuple[int | None, int | None]:
        for argv in self.plan.get("services", ()):
            self.spawn(argv, name=os.path.basename(argv[0]))
        corosync = self.spawn(["corosync", "-f"], name="corosync")
        self.set_state("corosync")
        deadline = time.monotonic() + float(self.plan.get("corosync_timeout", 30.0))
        while True:
            if self.stopping or not self.alive(corosync):
                return corosync, None
            if self.call(["corosync-cfgtool", "-s"], timeout=5.0) == 0:
                break
            if time.monotonic() >= deadline:
                log("corosync did not answer in time; the cluster stack stays down")
                return corosync, None
            self.tick(0.1)
        pacemakerd = self.spawn(["pacemakerd"], name="pacemakerd")
        self.set_state("up")
        return corosync, pacemakerd

    def shutdown(self, corosync: int | None, pacemakerd: int | None) -> None:
        self.set_state("stopping")
        budget = float(self.plan.get("stop_timeout", 20.0))
        if self.alive(pacemakerd):
            os.kill(pacemakerd, signal.SIGTERM)
            if not self.wait_exit(pacemakerd, budget):
                log("pacemakerd did not stop in time: killed")
        if self.alive(corosync):
            # corosync-cfgtool cannot reach a corosync that is still starting: then SIGTERM
            if self.call(["corosync-cfgtool", "-H", "--force"], timeout=5.0) != 0 and self.alive(corosync):
                os.kill(corosync, signal.SIGTERM)
            if not self.wait_exit(corosync, 10.0):
                log("corosync did not stop in time: killed")
        os.kill(-1, signal.SIGKILL)         # everything left in the node (PID 1 is spared)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.02)
            except ChildProcessError:
                break
        self.set_state("off")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    plan_path, go_fd = argv[0], int(argv[1])
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    name = plan["name"]
    lay = L.Layout(plan["lab"])
    log(f"booting {name}")
    try:
        setup_filesystem(lay, name)
        socket.sethostname(name)
    except OSError as error:
        log(f"cannot set up the node's file system: {error}")
        return 1
    init = Init(plan)
    init.set_state("booting")
    if not init.wait_go(go_fd):
        log("the supervisor did not wire the network in time")
        init.set_state("failed")
        return 1
    os.chdir("/")
    corosync = pacemakerd = None
    try:
        corosync, pacemakerd = init.boot()
        while not init.stopping:
            init.tick(1.0)
    except FileNotFoundError as error:
        log(str(error))
    init.shutdown(corosync, pacemakerd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
