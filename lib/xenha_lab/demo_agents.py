"""The `make demo` scenario: the installed Xen agent on two simulated Xen hosts.

No Xen, no cluster: `xl` is xenha's simulator (same commands, outputs and exit codes),
and the agent is the installed ocf:xenha:xen-domain, called the way pacemaker-execd
calls it. The scenario is the howto's: domain `shaolin` with its original config is
started on mk1, live-migrated to mk2 (migrate_to, migrate_from, stop on the source, as
Pacemaker orders them), then a migration that fails before the point of no return shows
what an operator sees, and the domain is stopped.
"""

from __future__ import annotations

import os
import tempfile
import time

from xenha.ocf import codes
from xenha.tools.xl import XlError, parse_list
from xenha_lab.sim.xen.hosts import SimHosts

SHAOLIN_CFG = """\
# The howto's domU, unchanged: legacy xm syntax, disk on DRBD resource vm_shaolin.
kernel = '/boot/vmlinuz-2.6.18-xen'
memory = 512
name = 'shaolin'
vif = [ 'bridge=xenbr0' ]
disk = [ 'drbd:vm_shaolin,hda1,w' ]
root = '/dev/hda1 ro'
"""
NODES = ("mk1", "mk2")
TRANSPORT = "xenha-sim-ssh -o BatchMode=yes"


class Step:
    """One OCF call of the demo and what the hosts looked like afterwards."""

    def __init__(self, number, call, label, states, expected):
        self.number = number
        self.call = call
        self.label = label
        self.states = states          # {node: "shaolin running (id 1)" or "-"}
        self.expected = expected

    @property
    def as_expected(self) -> bool:
        return self.call.rc == self.expected


def domain_state(hosts: SimHosts, node: str) -> str:
    result = hosts.xl(node, "list")
    if result.returncode != 0:
        return "xl failed"
    try:
        domains = [d for d in parse_list(result.stdout) if d.name.startswith("shaolin")]
    except XlError:
        return "unreadable"
    if not domains:
        return "-"
    return ", ".join(f"{d.name} {'running' if d.active else d.state} (id {d.domid})" for d in domains)


def guest_memory(hosts: SimHosts, node: str) -> dict:
    record = hosts.host(node).find("shaolin")
    if record is None:
        return {}
    try:
        with open(record.path(".mem"), encoding="utf-8") as handle:
            return dict(line.split("=", 1) for line in handle.read().split())
    except OSError:
        return {}


def run_scheduler(report) -> bool:
    """Part two: the howto as a cluster description, rendered, and what Pacemaker's own
    scheduler (crm_simulate, offline) does with it on first start, a drain and a crash."""
    from xenha import cluster
    from xenha.cluster import allocation, description
    from xenha.render import files
    from xenha.scenario import Simulation

    path = os.path.join(cluster.examples_dir(), "howto.toml")
    desc = description.load(path)
    slots, _added = allocation.allocate(desc, {})
    rendered = files.render_all(desc, slots)
    report("render", {"path": path, "files": sorted(rendered)})
    simulation = Simulation(desc)
    ok = True
    try:
        for step, expect in (("up mk1 mk2", "Start"), ("next", "Start      shaolin"),
                             ("standby mk1", "Migrate    shaolin"), ("unstandby mk1", "Start"),
                             ("next", "Promote"), ("fail mk2", "Fence")):
            transition = simulation.step(step)
            summary = transition.summary.split("Executing Cluster Transition:")[0]
            lines = [line.strip()[2:] for line in summary.splitlines()[1:] if line.strip().startswith("*")]
            found = expect is None or any(expect in line for line in lines)
            ok = ok and found
            report("transition", {"step": step, "lines": lines, "ok": found})
    finally:
        simulation.cleanup()
    return ok


def run(report) -> bool:
    """Run the scenario; `report(kind, payload)` receives "intro", "step", "note" and
    "summary" events. Returns True when every call answered as expected."""
    hosts = SimHosts(tempfile.mkdtemp(prefix="xenha-demo-"), NODES)
    config = hosts.write_file("shaolin.cfg", SHAOLIN_CFG)
    params = {"config": config, "migration_transport": TRANSPORT}
    migration = {"migrate_source": "mk1", "migrate_target": "mk2"}
    back = {"migrate_source": "mk2", "migrate_target": "mk1"}
    steps = []
    report("intro", {"config": config, "text": SHAOLIN_CFG, "agent": "ocf:xenha:xen-domain"})

    def call(node, action, label, expected, meta=None, interval=None):
        result = hosts.run_agent(node, action, params, meta, instance="shaolin", interval_s=interval,
                                 timeout_s=60)
        step = Step(len(steps) + 1, result, label, {n: domain_state(hosts, n) for n in NODES}, expected)
        steps.append(step)
        report("step", step)
        return step

    try:
        call("mk1", "monitor", "probe", codes.NOT_RUNNING)
        call("mk2", "monitor", "probe", codes.NOT_RUNNING)
        call("mk1", "start", "start", codes.SUCCESS)
        call("mk1", "monitor", "monitor every 10s", codes.SUCCESS, interval=10)
        time.sleep(1.2)  # let the guest run a little
        before = guest_memory(hosts, "mk1")
        call("mk1", "migrate_to", "migrate_to mk2", codes.SUCCESS, meta=migration)
        call("mk2", "migrate_from", "migrate_from mk1", codes.SUCCESS, meta=migration)
        call("mk1", "stop", "stop (source)", codes.SUCCESS)
        call("mk2", "monitor", "monitor every 10s", codes.SUCCESS, interval=10)
        time.sleep(1.2)  # the guest keeps counting on its new host
        after = guest_memory(hosts, "mk2")
        report("note", f"guest boot id before {before.get('boot_id', '?')[:8]} after "
                       f"{after.get('boot_id', '?')[:8]}, ticks {before.get('ticks')} -> {after.get('ticks')}: "
                       + ("the same guest kept running (live migration)"
                          if before.get("boot_id") == after.get("boot_id") else "the guest was restarted"))
        report("note", "fault injected: mk1's migration receiver fails during the transfer")
        hosts.host("mk1").set_fault("migrate-receive", "fail-transfer")
        call("mk2", "migrate_to", "migrate_to mk1", codes.ERR_GENERIC, meta=back)
        call("mk2", "monitor", "monitor every 10s", codes.SUCCESS, interval=10)
        call("mk1", "monitor", "probe", codes.NOT_RUNNING)
        call("mk2", "stop", "stop", codes.SUCCESS)
        call("mk2", "monitor", "probe", codes.NOT_RUNNING)
    finally:
        hosts.remove()
    ok = all(step.as_expected for step in steps)
    report("summary", {"steps": steps, "ok": ok})
    return ok
