"""A set of simulated Xen hosts in one directory, and running agents against them.

Used by the tests, `xenha demo` and the benchmark. Each host has its own xl state and
its own `HA_RSCTMP` (what tmpfs /run holds on a real node); `xenha-sim-ssh` reaches a
host by name, or by an address registered with `add_address`. Agents run as Pacemaker
runs them: the installed executable, the action as argv[1], parameters and meta
attributes in `OCF_RESKEY_*`, a clean environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from xenha.sim.xl_state import SimHost

OCF_ROOT = os.environ.get("OCF_ROOT", "/usr/lib/ocf")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def default_simbindir() -> str:
    """Where `make install` put the simulated tools (next to the package)."""
    configured = os.environ.get("XENHA_SIMBINDIR")
    if configured:
        return configured
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(package_parent, "sim-bin")


def default_agent(agent: str) -> str:
    provider = os.environ.get("XENHA_PROVIDER_DIR", os.path.join(OCF_ROOT, "resource.d", "xenha"))
    return os.path.join(provider, agent)


class AgentCall:
    """One agent invocation and its outcome."""

    __slots__ = ("node", "action", "rc", "stdout", "stderr", "seconds")

    def __init__(self, node, action, rc, stdout, stderr, seconds):
        self.node, self.action, self.rc = node, action, rc
        self.stdout, self.stderr, self.seconds = stdout, stderr, seconds

    @property
    def exit_reason(self) -> str | None:
        reason = None
        for line in self.stderr.splitlines():
            if line.startswith("ocf-exit-reason:"):
                reason = line[len("ocf-exit-reason:"):]
        return reason

    def __repr__(self) -> str:
        return f"AgentCall({self.node} {self.action} rc={self.rc} reason={self.exit_reason!r})"


class SimHosts:
    """Simulated Xen hosts under `root`, e.g. SimHosts(tmp, ["mk1", "mk2"])."""

    def __init__(self, root: str, names, simbindir: str | None = None):
        self.root = os.path.abspath(root)
        self.names = list(names)
        self.simbindir = simbindir or default_simbindir()
        self.hosts_dir = os.path.join(self.root, "hosts")
        for name in self.names:
            os.makedirs(os.path.join(self.hosts_dir, name, "xl"), exist_ok=True)
            os.makedirs(self.rsctmp(name), exist_ok=True)

    def write_file(self, name: str, text: str) -> str:
        """A file in the lab directory (removed with it), e.g. a domain config."""
        path = os.path.join(self.root, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def host(self, name: str) -> SimHost:
        return SimHost(os.path.join(self.hosts_dir, name, "xl"))

    def rsctmp(self, name: str) -> str:
        return os.path.join(self.root, "rsctmp", name)

    def add_address(self, address: str, name: str) -> None:
        """Make `address` reach host `name` through xenha-sim-ssh."""
        link = os.path.join(self.hosts_dir, address)
        if not os.path.lexists(link):
            os.symlink(name, link)

    def set_ssh_fault(self, name: str, fault: str | None) -> None:
        path = os.path.join(self.hosts_dir, name, "ssh-fault")
        if fault is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(fault + "\n")

    def env(self, name: str, extra=None) -> dict:
        """The environment of processes on host `name` (no OCF variables)."""
        env = {
            "PATH": f"{self.simbindir}:{DEFAULT_PATH}",
            "LANG": "C.UTF-8",
            "XENHA_SIM_XL_STATE": os.path.join(self.hosts_dir, name, "xl"),
            "XENHA_SIM_HOSTS": self.hosts_dir,
        }
        env.update(extra or {})
        return env

    def xl(self, name: str, *args, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run(["xl", *args], env=self.env(name), capture_output=True, text=True,
                              timeout=timeout)

    def run_agent(self, name: str, action: str, params=None, meta=None, *, agent: str = "xen-domain",
                  instance: str = "vm", timeout_s: float = 20.0, interval_s: float | None = None,
                  check_level: int | None = None, extra_env=None, agent_path: str | None = None) -> AgentCall:
        """Run `agent action` on host `name` the way pacemaker-execd would."""
        env = self.env(name)
        env.update({
            "OCF_ROOT": OCF_ROOT, "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": instance, "OCF_RESOURCE_TYPE": agent,
            "OCF_RESOURCE_PROVIDER": "xenha", "OCF_EXIT_REASON_PREFIX": "ocf-exit-reason:",
            "HA_RSCTMP": self.rsctmp(name), "HA_debug": "0", "HA_LOGFACILITY": "none",
            "OCF_RESKEY_crm_feature_set": "3.16.1",
            "OCF_RESKEY_CRM_meta_timeout": str(int(timeout_s * 1000)),
            "OCF_RESKEY_CRM_meta_on_node": name,
        })
        if interval_s is not None:
            env["OCF_RESKEY_CRM_meta_interval"] = str(int(interval_s * 1000))
        if check_level is not None:
            env["OCF_CHECK_LEVEL"] = str(check_level)
        for key, value in (params or {}).items():
            env[f"OCF_RESKEY_{key}"] = str(value)
        for key, value in (meta or {}).items():
            env[f"OCF_RESKEY_CRM_meta_{key.replace('-', '_')}"] = str(value)
        env.update(extra_env or {})
        started = time.monotonic()
        # Pacemaker kills an agent at its timeout; a few seconds more here catch hangs.
        proc = subprocess.run([agent_path or default_agent(agent), action], env=env, capture_output=True,
                              text=True, timeout=timeout_s + 10)
        return AgentCall(name, action, proc.returncode, proc.stdout, proc.stderr,
                         time.monotonic() - started)

    def cleanup(self) -> None:
        """Kill every guest of every host (tests and demo call this even on failure)."""
        for name in self.names:
            try:
                self.host(name).kill_all()
            except OSError:
                pass

    def remove(self) -> None:
        self.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)
