"""A set of simulated Xen hosts in one directory, and running agents against them.

Used by the tests, `xenha demo` and the benchmark. Each host has its own xl state and
its own `HA_RSCTMP` (what tmpfs /run holds on a real node); `xenha-sim-ssh` reaches a
host by name, or by an address registered with `add_address`, with the host's
environment (`set_env`: e.g. the variables of a simulated DRBD node, so that a guest
migrated there writes through that node's DRBD device). Agents run as Pacemaker runs
them (xenha_lab.harness).

`node_power_off(xl_state_dir)` is what a power cut does to a host's domains (the lab's
power switch calls it; `SimHosts.power_off` for tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess


from xenha_lab.harness import AgentCall, run_agent
from xenha_lab.paths import DEFAULT_PATH, default_simbindir
from xenha_lab.sim.xen.state import SimHost, read_kv, write_kv

ENV_FILE = "env"          # per host: variables its processes get (key=value lines)


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

    def set_env(self, name: str, env: dict) -> None:
        """Variables every process on host `name` gets, also through xenha-sim-ssh (the
        receiving end of a migration)."""
        write_kv(os.path.join(self.hosts_dir, name, ENV_FILE), env)

    def host_env(self, name: str) -> dict:
        return read_kv(os.path.join(self.hosts_dir, name, ENV_FILE))

    def env(self, name: str, extra=None) -> dict:
        """The environment of processes on host `name` (no OCF variables)."""
        env = {
            "PATH": f"{self.simbindir}:{DEFAULT_PATH}",
            "LANG": "C.UTF-8",
            "XENHA_SIM_XL_STATE": os.path.join(self.hosts_dir, name, "xl"),
            "XENHA_SIM_HOSTS": self.hosts_dir,
        }
        env.update(self.host_env(name))
        env.update(extra or {})
        return env

    def xl(self, name: str, *args, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run(["xl", *args], env=self.env(name), capture_output=True, text=True,
                              timeout=timeout)

    def run_agent(self, name: str, action: str, params=None, meta=None, *, agent: str = "xen-domain",
                  instance: str = "vm", timeout_s: float = 20.0, interval_s: float | None = None,
                  check_level: int | None = None, extra_env=None, agent_path: str | None = None) -> AgentCall:
        """Run `agent action` on host `name` the way pacemaker-execd would (xenha_lab.harness)."""
        return run_agent(self.env(name), name, agent, action, instance=instance, rsctmp=self.rsctmp(name),
                         params=params, meta=meta, timeout_s=timeout_s, interval_s=interval_s,
                         check_level=check_level, extra=extra_env, agent_path=agent_path)

    def cleanup(self) -> None:
        """Kill every guest of every host (tests and demo call this even on failure)."""
        for name in self.names:
            try:
                self.host(name).kill_all()
            except OSError:
                pass

    def power_off(self, name: str) -> None:
        """A power cut of host `name`: its guests die, its domains are gone."""
        node_power_off(os.path.join(self.hosts_dir, name, "xl"), node=name)

    def remove(self) -> None:
        self.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


def node_power_off(xl_state_dir: str, node: str | None = None) -> None:
    """What a power cut does to a host's domains: every guest dies (signalled only when
    its recorded pid, start time and pid namespace are the caller's to signal — a lab
    node's guests die with the node's pid namespace), every record goes (the domain
    list of a host that boots again is empty). Idempotent; nothing to do for a host that
    never ran a domain. `node` names the host in messages only."""
    if not os.path.isdir(os.path.join(xl_state_dir, "domains")):
        return
    SimHost(xl_state_dir).kill_all()
