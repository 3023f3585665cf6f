"""The lab part of `make bench`: the whole stack under a live Pacemaker, next to a
trivial resource (ocf:pacemaker:Dummy with allow-migrate) in the same lab, as ratios.

One 3-node namespace lab provisioned with 10 small VMs (vm01..vm10, replicated on n1
and n2, preferring n1; migration-limit 2) and 10 Dummy resources (d01..d10, allow-
migrate, preferring n1). Measured, each from the command to the moment the nodes' own
state (and Pacemaker's) shows the result:

- live migration: `pcs resource move` of one VM / one Dummy -> running on the target,
  and the guest's pause (the longest gap in its acknowledged writes);
- drain of N = 1, 5, 10 VMs / Dummies: `pcs node standby n1` -> all on n2, against the
  target 1.1 x ceil(N / migration-limit) x one migration;
- failover: power cut of the node running one VM and one Dummy -> each running on the
  survivor; target: ours adds at most 1 s to the Dummy's.

Nothing is asserted: the figures are printed (BENCHMARKS.md keeps a run).
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time

from xenha_lab.lab import observe
from xenha_lab.lab.backend import LabError
from xenha_lab.sim import guest_io

NODES = ("n1", "n2", "n3")
MIGRATION_LIMIT = 2
COUNTS = (1, 5, 10)
LAB_DIR = "/run/xenha-bench-lab"


def description(vms: int) -> str:
    nodes = "".join(f'\n[[nodes]]\nname = "n{i}"\nreplication_address = "10.215.1.{10 + i}"\n'
                    f'migration_address = "n{i}"\n' for i in (1, 2, 3))
    guests = "".join(f'\n[[vms]]\nname = "vm{i:02d}"\nmemory = 128\nkernel = "/boot/vmlinuz-xen"\n'
                     f'disk_size = "8M"\nreplicas = ["n1", "n2"]\npreferred_node = "n1"\n' for i in range(1, vms + 1))
    return ('[cluster]\nname = "bench"\n\n[cluster.fencing]\nagent = "fence_ipmilan"\n'
            + "".join(f'devices.n{i} = {{ ip = "192.0.2.{i}" }}\n' for i in (1, 2, 3))
            + f'\n[defaults]\nvolume_group = "vg0"\ndrbd_port_base = 7900\ndrbd_minor_base = 20\n'
            f'migration_limit = {MIGRATION_LIMIT}\n' + nodes + guests)


class LabBench:
    def __init__(self, lab, vms):
        self.lab, self.vms = lab, list(vms)
        self.dummies = [f"d{i:02d}" for i in range(1, len(self.vms) + 1)]
        self.node = "n3"                        # where commands run (never drained, never cut)

    # --- where things run, by the nodes' own account and Pacemaker's -----------------------------------------------
    def where(self, rsc: str, status) -> str | None:
        located = status.located(rsc) if status else ()
        if len(located) != 1:
            return None
        node = located[0]
        if rsc.startswith("vm"):
            ok = any(d.name == rsc and d.running for d in observe.domains(self.lab, node))
        else:
            ok = self.lab.exists(node, f"/run/Dummy-{rsc}.state")
        return node if ok else None

    def all_on(self, resources, node: str) -> bool:
        status = self.lab.cluster.status(self.node)
        return all(self.where(r, status) == node for r in resources)

    def wait_on(self, resources, node: str, timeout: float = 300.0) -> float:
        started = time.monotonic()
        self.lab.cluster.wait(f"{', '.join(resources)} on {node}", lambda: self.all_on(resources, node), timeout,
                              interval=0.05)
        return time.monotonic() - started

    def pcs(self, *args, timeout: float = 120.0) -> None:
        self.lab.check(self.node, ["pcs", *args], timeout=timeout)

    def idle(self) -> None:
        self.lab.cluster.wait_idle(timeout=300, node=self.node)

    # --- setting up a case -----------------------------------------------------------------------------------------
    def only(self, count: int) -> None:
        """Exactly the first `count` VMs and Dummies running, all on n1."""
        for group in (self.vms, self.dummies):
            wanted, rest = group[:count], group[count:]
            if rest:
                self.pcs("resource", "disable", *rest)
            if wanted:
                self.pcs("resource", "enable", *wanted)
        self.idle()
        for rsc in self.vms[:count] + self.dummies[:count]:
            if not self.all_on([rsc], "n1"):
                self.pcs("resource", "move", rsc, "n1", timeout=300)
        self.wait_on(self.vms[:count] + self.dummies[:count], "n1")
        self.idle()

    # --- the cases -------------------------------------------------------------------------------------------------
    def migration(self, rsc: str) -> tuple[float, float | None]:
        """`pcs resource move rsc n2` -> running there; the guest's pause for a VM."""
        wall = time.time()
        # pcs waits for the cluster and clears its constraint before it returns: the
        # arrival is watched meanwhile
        mover = threading.Thread(target=self.lab.run, args=(self.node, ["pcs", "resource", "move", rsc, "n2"]),
                                 kwargs={"timeout": 300}, daemon=True)
        mover.start()
        seconds = self.wait_on([rsc], "n2")
        mover.join(timeout=300)
        pause = None
        if rsc.startswith("vm"):
            gap = guest_io.longest_pause(observe.acknowledged(self.lab, rsc), since=wall, until=time.time())
            pause = gap.seconds if gap else None
        self.lab.check(self.node, ["pcs", "resource", "clear", rsc])
        self.idle()
        return seconds, pause

    def drain(self, resources) -> float:
        """`pcs node standby n1` -> all of `resources` on n2 (the rest disabled)."""
        self.pcs("node", "standby", "n1")
        seconds = self.wait_on(resources, "n2", timeout=600)
        self.idle()
        self.pcs("node", "unstandby", "n1")
        self.idle()
        return seconds

    def failover(self) -> tuple[float, float]:
        """Power cut of n1 running vm01 and d01 -> each running on n2 (seconds each)."""
        cut = time.monotonic()
        self.lab.power("n1", "off")
        found: dict[str, float] = {}

        def both():
            status = self.lab.cluster.status(self.node)
            for rsc in (self.vms[0], self.dummies[0]):
                if rsc not in found and self.where(rsc, status) == "n2":
                    found[rsc] = time.monotonic() - cut
            return len(found) == 2
        self.lab.cluster.wait("vm01 and d01 on n2", both, timeout=300, interval=0.05)
        self.lab.cluster.wait_online(NODES, timeout=300)
        self.idle()
        return found[self.vms[0]], found[self.dummies[0]]


def run(progress=print) -> list[str]:
    """Bring the lab up, measure, tear down; the report's lines."""
    from xenha_lab.lab.namespace import NamespaceLab
    from xenha_lab.lab.provision import provision

    workdir = tempfile.mkdtemp(prefix="xenha-bench-lab-")
    path = os.path.join(workdir, "bench.toml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(description(max(COUNTS)))
    lab = NamespaceLab.from_description(LAB_DIR, path, lifetime_s=3600)
    lines = []
    try:
        lab.up(timeout=180)
        progress("lab bench: provisioning 10 VMs")
        provision(lab, path, wait_started=600)
        bench = LabBench(lab, [f"vm{i:02d}" for i in range(1, max(COUNTS) + 1)])
        for rsc in bench.dummies:
            lab.check(bench.node, ["pcs", "resource", "create", rsc, "ocf:pacemaker:Dummy", "meta",
                                   "allow-migrate=true", "op", "monitor", "interval=10s"])
            lab.check(bench.node, ["pcs", "constraint", "location", rsc, "prefers", "n1=50"])
            lab.check(bench.node, ["pcs", "constraint", "location", rsc, "avoids", "n3"])
        bench.idle()
        progress("lab bench: one live migration")
        bench.only(1)
        vm_move, pause = bench.migration(bench.vms[0])
        dummy_move, _ = bench.migration(bench.dummies[0])
        lines.append("lab: 3 namespace nodes, real Pacemaker/Corosync/pcs, simulated Xen/DRBD/LVM; "
                     f"migration-limit {MIGRATION_LIMIT}; seconds from the command to the nodes' own state")
        lines.append(f"{'case':44} {'xen-domain s':>12} {'Dummy s':>9} {'ratio':>7}  target")
        lines.append(f"{'live migration (pcs move -> on target)':44} {vm_move:12.2f} {dummy_move:9.2f} "
                     f"{vm_move / dummy_move:6.2f}x  guest pause {pause * 1000 if pause else float('nan'):.0f} ms")
        for count in COUNTS:
            progress(f"lab bench: drain of {count}")
            bench.only(count)
            vm_drain = bench.drain(bench.vms[:count])
            bench.only(count)
            dummy_drain = bench.drain(bench.dummies[:count])
            bound = 1.1 * math.ceil(count / MIGRATION_LIMIT) * vm_move
            lines.append(f"{f'drain of {count} (standby -> all on n2)':44} {vm_drain:12.2f} {dummy_drain:9.2f} "
                         f"{vm_drain / dummy_drain:6.2f}x  <= {bound:.2f} s "
                         f"({'met' if vm_drain <= bound else 'missed'})")
        progress("lab bench: failover")
        bench.only(1)
        vm_fail, dummy_fail = bench.failover()
        lines.append(f"{'failover (power cut -> on the survivor)':44} {vm_fail:12.2f} {dummy_fail:9.2f} "
                     f"{vm_fail / dummy_fail:6.2f}x  +{vm_fail - dummy_fail:.2f} s over Dummy (target <= +1 s: "
                     f"{'met' if vm_fail - dummy_fail <= 1.0 else 'missed'})")
    except LabError as error:
        lines.append(f"lab bench failed: {error}")
    finally:
        lab.down()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    return lines


def lab_report() -> bool:
    lines = run(progress=lambda text: print(text, flush=True))
    print()
    for line in lines:
        print(line)
    return not any(line.startswith("lab bench failed") for line in lines)
