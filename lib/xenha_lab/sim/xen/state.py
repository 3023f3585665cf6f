"""The state of one simulated Xen host: its domains, their guest processes, its faults.

Layout of a host's state directory (`XENHA_SIM_XL_STATE`, default /run/xenha-sim/xl —
on tmpfs in the lab, so a fenced node loses its domains as real hardware would):

    lock                 flock(2) for every change
    next-domid           domain ids are never reused while the host lives
    faults               key=value switches set by tests (see FAULTS)
    domains/<id>         the domain record (key=value)
    domains/<id>.cfg     the effective config text (file + key=value overrides)
    domains/<id>.mem     the guest's "memory": written by the guest process, carried
                         over by live migration
    domains/<id>.exit    written by the guest when it powers off or reboots itself
    pending/<name>       a rebooting domain waiting to be recreated

A domain is backed by a guest process (`xenha_lab.sim.xen.guest`) identified by pid and start
time. Its run state is read from /proc: R → r, S/D → b, T (SIGSTOP) → p. A guest that
died without writing `.exit` crashed. What a dead guest leaves behind follows the
domain's on_poweroff/on_reboot/on_crash settings, applied lazily by `reconcile()` at the
start of every xl command (the real xl does it in a per-domain daemon).
"""

from __future__ import annotations

import fcntl
import os
import time

from xenha_lab.sim.procs import pid_namespace, proc_start, proc_stat

DEFAULT_ROOT = "/run/xenha-sim/xl"
ENV_ROOT = "XENHA_SIM_XL_STATE"

DOM0_MEMORY_MIB = 1024
HOST_MEMORY_MIB = 16384

# Fault switches (the `faults` file), for tests and the lab:
FAULTS = {
    "toolstack": "down: every command fails like xl without a hypervisor connection",
    "hang": "comma-separated sub-commands that hang until killed (e.g. list,shutdown)",
    "create": "fail | slow:SECONDS | crash (the guest dies right after creation)",
    "guest-shutdown": "ignore | slow:SECONDS (how guests react to a shutdown request)",
    "destroy": "fail | slow:SECONDS (domain stays dying that long)",
    "reboot-gap": "SECONDS a rebooting domain is absent from the list",
    "migrate": "fail-suspend | hang | lose-after-go (sender side)",
    "migrate-receive": "fail-transfer | fail-start | die-after-go (receiver side)",
}

SIGKILL, SIGTERM, SIGCONT, SIGSTOP, SIGUSR1 = 9, 15, 18, 19, 10

# What ends a guest, and which config key (with xl's default) decides what follows.
ON_EVENT = {
    "poweroff": ("on_poweroff", "destroy"),
    "reboot": ("on_reboot", "restart"),
    "crash": ("on_crash", "destroy"),
}


def root_from_env(environ=None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(ENV_ROOT) or DEFAULT_ROOT


def read_kv(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return {}
    record = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            record[key.strip()] = value
    return record


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_kv(path: str, record: dict) -> None:
    write_atomic(path, "".join(f"{k}={v}\n" for k, v in record.items()))


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class DomainRecord:
    """A domain as the simulated hypervisor knows it."""

    def __init__(self, host: "SimHost", domid: int, data: dict):
        self.host = host
        self.domid = domid
        self.data = data

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    def path(self, suffix: str = "") -> str:
        return os.path.join(self.host.root, "domains", f"{self.domid}{suffix}")

    def save(self) -> None:
        write_kv(self.path(), self.data)

    def process(self):
        """(state letter, cpu ticks) of the guest process, or None if it is gone (or
        lives in another pid namespace than ours, where its pid is not ours to read)."""
        if not self.pid:
            return None
        if self.data.get("pidns", "") not in ("", pid_namespace()):
            return None
        stat = proc_stat(self.pid)
        if stat is None or stat[1] != self.data.get("pid_start") or stat[0] in "ZX":
            return None
        return stat[0], stat[2]

    def io_helper(self):
        """(pid, start time) of the guest's disk I/O helper, from its memory, or None."""
        memory = read_kv(self.path(".mem"))
        try:
            return int(memory["io_pid"]), memory.get("io_pid_start", "")
        except (KeyError, ValueError):
            return None

    def letters(self) -> str:
        status = self.data.get("status", "live")
        if status == "dying":
            return "-----d"
        if status.startswith("shutdown:"):
            reason = status.split(":", 1)[1]
            return {"crash": "--psc-", "reboot": "---sr-", "suspend": "---ss-",
                    "watchdog": "---sw-"}.get(reason, "---s--")
        proc = self.process()
        if proc is None:
            return "------"
        if status == "suspended":
            return "---ss-"
        return {"R": "r-----", "T": "--p---", "t": "--p---"}.get(proc[0], "-b----")

    def cpu_seconds(self) -> float:
        proc = self.process()
        base = float(self.data.get("cpu_base", "0") or 0)
        return base + (proc[1] / 100.0 if proc else 0.0)

    def signal(self, signum: int) -> bool:
        if self.process() is None:
            return False
        try:
            os.kill(self.pid, signum)
            return True
        except OSError:
            return False


class SimHost:
    """One simulated Xen host rooted at a state directory."""

    def __init__(self, root: str | None = None):
        self.root = root or root_from_env()
        self._lock_fd = None

    # --- setup and locking ---------------------------------------------------------
    def ensure(self) -> None:
        os.makedirs(os.path.join(self.root, "domains"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "pending"), exist_ok=True)

    def __enter__(self):
        self.ensure()
        self._lock_fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self._lock_fd)
        self._lock_fd = None

    # --- faults --------------------------------------------------------------------
    def faults(self) -> dict:
        return read_kv(os.path.join(self.root, "faults"))

    def fault(self, key: str) -> str:
        return self.faults().get(key, "")

    def set_fault(self, key: str, value: str | None) -> None:
        if key not in FAULTS:
            raise KeyError(f"unknown fault {key}")
        self.ensure()
        faults = self.faults()
        if value is None:
            faults.pop(key, None)
        else:
            faults[key] = value
        write_kv(os.path.join(self.root, "faults"), faults)

    # --- domains -------------------------------------------------------------------
    def domains(self) -> list[DomainRecord]:
        directory = os.path.join(self.root, "domains")
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        records = []
        for entry in names:
            if entry.isdigit():
                data = read_kv(os.path.join(directory, entry))
                if data:
                    records.append(DomainRecord(self, int(entry), data))
        records.sort(key=lambda r: r.domid)
        return records

    def find(self, name: str) -> DomainRecord | None:
        for record in self.domains():
            if record.name == name:
                return record
        return None

    def by_id(self, domid: int) -> DomainRecord | None:
        data = read_kv(os.path.join(self.root, "domains", str(domid)))
        return DomainRecord(self, domid, data) if data else None

    def allocate_domid(self) -> int:
        path = os.path.join(self.root, "next-domid")
        try:
            with open(path, encoding="ascii") as handle:
                domid = int(handle.read().strip() or 1)
        except (OSError, ValueError):
            domid = 1
        write_atomic(path, f"{domid + 1}\n")
        return domid

    def used_memory(self) -> int:
        return DOM0_MEMORY_MIB + sum(int(r.data.get("memory", 0)) for r in self.domains())

    def remove(self, record: DomainRecord) -> None:
        for suffix in ("", ".cfg", ".mem", ".exit"):
            remove_quietly(record.path(suffix))

    def kill_guest(self, record: DomainRecord) -> None:
        """The guest dies (a crash): returns once the kernel has it dead (SIGKILL is
        delivered asynchronously; a loaded machine showed it alive to the next xl list)
        and its disk I/O helper has finished the write in hand (as Xen's block backend
        completes in-flight requests before the domain is gone)."""
        record.signal(SIGCONT)
        if not record.signal(SIGKILL):
            return
        helper = record.io_helper()
        give_up = time.monotonic() + 5.0
        while time.monotonic() < give_up:
            if record.process() is None and (helper is None or proc_start(helper[0]) != helper[1]):
                return
            time.sleep(0.005)

    def destroy(self, record: DomainRecord) -> None:
        """Take a domain away now (record first, so the dead guest is not a 'crash')."""
        self.remove(record)
        self.kill_guest(record)

    def kill_all(self) -> None:
        """Test and lab cleanup: every guest of this host dies, every record goes."""
        for record in self.domains():
            self.destroy(record)
        pending_dir = os.path.join(self.root, "pending")
        if os.path.isdir(pending_dir):
            for entry in os.listdir(pending_dir):
                remove_quietly(os.path.join(pending_dir, entry))

    # --- lazy consequences of guests dying ------------------------------------------
    def reconcile(self, spawn) -> None:
        """Apply on_poweroff/on_reboot/on_crash to dead guests, end dying domains, and
        recreate rebooting domains whose gap is over. `spawn(config_text, memory, name)`
        recreates a domain (provided by the xl front end)."""
        now = time.time()
        for record in self.domains():
            status = record.data.get("status", "live")
            if status == "dying":
                if now >= float(record.data.get("dying_until", "0")):
                    self.remove(record)
                continue
            if status.startswith("shutdown:") or record.process() is not None:
                continue
            if status == "suspended":
                continue  # a suspended migration source stays until xl acts on it
            reason = read_kv(record.path(".exit")).get("reason") or "crash"
            key, default = ON_EVENT[reason]
            self._apply_action(record, reason, record.data.get(key) or default, now)
        pending_dir = os.path.join(self.root, "pending")
        for name in sorted(os.listdir(pending_dir)) if os.path.isdir(pending_dir) else []:
            if name.endswith(".cfg"):
                continue
            pending = read_kv(os.path.join(pending_dir, name))
            if now >= float(pending.get("due", "0")):
                remove_quietly(os.path.join(pending_dir, name))
                config = pending.get("config_path", "")
                try:
                    with open(config, encoding="utf-8") as handle:
                        text = handle.read()
                except OSError:
                    continue
                remove_quietly(config)
                spawn(text, None, name)

    def _apply_action(self, record: DomainRecord, reason: str, action: str, now: float) -> None:
        if action in ("preserve",):
            record.data["status"] = f"shutdown:{reason}"
            record.data["pid"] = "0"
            record.save()
            return
        if action in ("restart", "coredump-restart", "rename-restart", "soft-reset"):
            gap = float(self.fault("reboot-gap") or 0)
            pending = os.path.join(self.root, "pending", record.name)
            config_copy = pending + ".cfg"
            try:
                with open(record.path(".cfg"), encoding="utf-8") as src:
                    write_atomic(config_copy, src.read())
            except OSError:
                self.remove(record)
                return
            write_kv(pending, {"due": f"{now + gap:.3f}", "config_path": config_copy})
        self.remove(record)
