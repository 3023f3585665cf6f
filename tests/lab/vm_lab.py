"""A provisioned lab with VMs, shared by the end-to-end scenarios of a test module
(tests/lab/test_scenarios_*.py): written against the node interface (NodeBackend) and
the scenario driver only, so that another backend (QEMU nodes) reuses it.

`VmLab.reset()` brings the cluster back to its starting point between scenarios: one
network, every node on and online, no simulator fault, no failure or temporary
constraint, every VM running on its preferred node with its DRBD replicas UpToDate.
"""

from __future__ import annotations

import contextlib
import time
import warnings

from lab_support import lab_dir, record, require_lab
from xenha_lab.lab import observe
from xenha_lab.lab.backend import LabError
from xenha_lab.lab.scenario import Scenario, vm_invariants
from xenha_lab.sim import guest_io

XL_FAULTS = "/run/xenha-sim/xl/faults"


@contextlib.contextmanager
def provisioned(traces_of, name: str, path: str, label: str):
    """A lab made from the description at `path`, up and provisioned, as a VmLab; down
    at the end (and noted in `traces_of`, which checks that nothing stays behind)."""
    require_lab()
    from xenha_lab.lab.namespace import NamespaceLab
    from xenha_lab.lab.provision import provision

    lab = NamespaceLab.from_description(lab_dir(name), path, lifetime_s=2400)
    traces = traces_of(lab.lay.dir)
    try:
        timings = lab.up(timeout=180)
        record(f"{label}: lab up", timings["online"] - timings["cleanup"])
        started = time.monotonic()
        provision(lab, path, wait_started=240)
        record(f"{label}: provision", time.monotonic() - started)
        yield VmLab(lab, path)
    finally:
        traces.note(lab)
        lab.down()


class VmLab:
    def __init__(self, lab, path: str):
        from xenha.render.drbd import backing_disk
        from xenha_lab.lab.provision import rendering

        description, slots, _files = rendering(path)
        self.lab, self.path = lab, path
        self.vms = [vm.name for vm in description.vms]
        self.resource = {vm.name: slots[vm.name].resource for vm in description.vms}
        self.replicas = {vm.name: tuple(vm.replicas) for vm in description.vms}
        self.home = {vm.name: vm.preferred_node or vm.replicas[0] for vm in description.vms}
        self.backing = {vm.name: backing_disk(description, vm) for vm in description.vms}
        self.stale_fences: list[str] = []          # lifted by reset (reported at the end of the run)

    # --- the scenario --------------------------------------------------------------------------------------------
    def scenario(self, name: str, *extra) -> Scenario:
        return Scenario(self.lab, name, [*vm_invariants(self.vms, self.resource.values()), *extra], interval=0.1)

    # --- what the nodes say --------------------------------------------------------------------------------------
    def guest_on(self, vm: str) -> list[str]:
        """The nodes where the guest executes under its own name, by the nodes' own account."""
        return [n for n in self.lab.powered() if any(d.name == vm and d.running for d in observe.domains(self.lab, n))]

    def placed(self, vm: str, on: str | None = None, not_on=()) -> str | None:
        """The one node where `vm` runs by the node's account and by Pacemaker's."""
        nodes = self.guest_on(vm)
        if len(nodes) != 1 or (on and nodes[0] != on) or nodes[0] in not_on:
            return None
        status = self.lab.cluster.status()
        return nodes[0] if status and status.located(vm) == (nodes[0],) else None

    def wait_placed(self, sc: Scenario, vm: str, on: str | None = None, not_on=(), timeout: float = 120.0) -> str:
        where = f" on {on}" if on else (f" not on {', '.join(not_on)}" if not_on else "")
        return sc.wait_until(f"{vm} running{where}", lambda: self.placed(vm, on, not_on), timeout=timeout)

    def acks(self, vm: str, since: float = 0.0, node: str | None = None) -> list:
        return [a for a in observe.acknowledged(self.lab, vm) if a.time >= since and (node is None or a.node == node)]

    def wait_writing(self, sc: Scenario, vm: str, node: str, since: float, timeout: float = 60.0) -> list:
        return sc.wait_until(f"{vm} writing on {node}", lambda: self.acks(vm, since, node), timeout=timeout)

    def writes_intact(self, vm: str, node: str, before: float) -> observe.WriteCheck:
        """Every write acknowledged (all of them, and at least one before `before`) is on
        the disk of `node`, none lost across a restart, none acknowledged twice."""
        check = observe.check_writes(self.lab, vm, node, self.backing[vm])
        assert check.ok, check.describe()
        assert [a for a in observe.acknowledged(self.lab, vm) if a.time < before], f"{vm} wrote nothing before"
        return check

    def drbd_synced(self, vm: str) -> bool:
        """Both replicas UpToDate and connected to each other."""
        states = [observe.drbd(self.lab, n, self.resource[vm]) for n in self.replicas[vm]]
        return all(s is not None and s.disks and all(d == "UpToDate" for d in s.disks)
                   and all(c == "Connected" for c in s.connections.values())
                   and all(p == "UpToDate" for p in s.peer_disks.values()) for s in states)

    def log_count(self, node: str, needle: str) -> int:
        data = self.lab.read_file(node, "/var/log/pacemaker/pacemaker.log") or b""
        return data.decode(errors="replace").count(needle)

    def promoted_on(self, rsc: str) -> list[str]:
        """The nodes where Pacemaker has the clone of `rsc` Promoted."""
        import xml.etree.ElementTree as ET

        out = self.lab.check(self.lab.cluster.any_node(), ["crm_mon", "--one-shot", "--output-as=xml"]).stdout
        return sorted(node.get("name") for r in ET.fromstring(out).iter("resource")
                      if r.get("id", "").split(":")[0] == rsc and r.get("role") == "Promoted"
                      for node in r.iterfind("node"))

    def lift_stale_fence(self, vm: str, timeout: float) -> str | None:
        """Once both replicas are UpToDate and connected, delete a fencing constraint of
        crm-fence-peer that crm-unfence-peer did not lift (seen when fence-peer returned
        after the peer was back and resynced); the id deleted, if any. What an operator
        does when drbd-resource reports "stale fencing constraint"."""
        import re

        self.lab.cluster.wait(f"{vm}'s replicas in sync", lambda: self.drbd_synced(vm), timeout=timeout)
        node = self.lab.cluster.any_node()
        constraints = self.lab.check(node, ["cibadmin", "--query", "--scope", "constraints"]).stdout
        found = re.search(rf'id="(drbd-fence-by-handler-{re.escape(self.resource[vm])}-[^"]+)"', constraints)
        if not found:
            return None
        self.lab.check(node, ["pcs", "constraint", "delete", found.group(1)])
        self.stale_fences.append(found.group(1))
        warnings.warn(f"reset: deleted the stale fencing constraint {found.group(1)} (both replicas UpToDate, "
                      "crm-unfence-peer never ran)", stacklevel=2)
        return found.group(1)

    # --- faults --------------------------------------------------------------------------------------------------
    def xl_fault(self, node: str, key: str, value: str) -> None:
        self.lab.check(node, ["sh", "-c", f"echo '{key}={value}' >> {XL_FAULTS}"])

    # --- between scenarios ---------------------------------------------------------------------------------------
    def reset(self, timeout: float = 240.0) -> None:
        lab, cluster = self.lab, self.lab.cluster
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(10.0, deadline - time.monotonic())
        lab.heal()
        for node in lab.nodes:
            if lab.node_state(node).power != "on":
                lab.power(node, "on")
        cluster.wait_online(lab.nodes, timeout=left())
        for node in lab.powered():
            lab.check(node, ["rm", "-f", XL_FAULTS])
        node = cluster.any_node()
        lab.check(node, ["pcs", "resource", "enable", *self.vms])
        for vm in self.vms:
            lab.check(node, ["pcs", "resource", "clear", vm])
        lab.check(node, ["pcs", "node", "unstandby", "--all"])
        lab.check(node, ["pcs", "resource", "cleanup"], timeout=120)
        cluster.wait_idle(timeout=left())
        for vm in self.vms:
            self.lift_stale_fence(vm, timeout=left())
        for vm in self.vms:       # a node back from a power cut resyncs before it is promoted (and can take a VM)
            cluster.wait(f"{vm}'s replicas in sync and Promoted", lambda vm=vm: self.drbd_synced(vm) and
                         self.promoted_on(f"drbd_{vm}") == sorted(self.replicas[vm]), timeout=left())
        for vm in self.vms:
            home = self.home[vm]
            if self.placed(vm) != home:
                lab.check(node, ["pcs", "resource", "move", vm, home], timeout=left())
                cluster.wait(f"{vm} back on {home}", lambda vm=vm, home=home: self.placed(vm, home), timeout=left())
        for vm in self.vms:
            cluster.wait(f"{vm}'s replicas in sync", lambda vm=vm: self.drbd_synced(vm), timeout=left())
        cluster.wait_idle(timeout=left())
        leftovers = [vm for vm in self.vms if self.placed(vm) != self.home[vm]]
        if leftovers:
            raise LabError(f"reset: {', '.join(leftovers)} not on their preferred node")


def executed(vm_lab: VmLab, node: str, op: str, vm: str) -> list[tuple[str, float]]:
    """When `node`'s controller asked its executor for `op` of `vm`, and when the result
    came, from the node's Pacemaker log: [("request" | "result", seconds of the day)]."""
    data = vm_lab.lab.read_file(node, "/var/log/pacemaker/pacemaker.log") or b""
    found = []
    for line in data.decode(errors="replace").splitlines():
        kind = ("request" if f"Requesting local execution of {op} operation for {vm} on {node}" in line else
                "result" if f"Result of {op} operation for {vm} on {node}" in line else None)
        if kind:
            clock = line.split()[2]                   # "Mon DD HH:MM:SS[.mmm] host daemon ..."
            hours, minutes, seconds = clock.split(":")
            found.append((kind, int(hours) * 3600 + int(minutes) * 60 + float(seconds)))
    return found


def longest_pause(vm_lab: VmLab, vm: str, since: float, until: float) -> float | None:
    longest = guest_io.longest_pause(observe.acknowledged(vm_lab.lab, vm), since=since, until=until)
    return longest.seconds if longest else None
