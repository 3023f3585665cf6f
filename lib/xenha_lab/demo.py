"""`make demo` (`xenha demo`): the howto's cluster running in the lab, narrated.

The embedded default is the howto (cluster-config/examples/howto.toml: nodes mk1 and
mk2, VM shaolin on the DRBD-replicated LV vg0/vm_shaolin). The lab brings up two
namespace nodes with real corosync, pacemakerd, pcs, drbdadm, lvm2 and OpenSSH over the
simulated Xen, DRBD kernel and LVM activation; xenha provisions them from the
description (LVs, DRBD meta-data and initial sync, the xl config, the Pacemaker
configuration through pcs); then:

    VM started -> live migration with `pcs resource move` -> drain mk2 with `pcs node
    standby` (the VM leaves by live migration) -> mk2 back online -> power cut of the
    node running the VM -> fenced -> the VM restarted on the survivor with every
    acknowledged write on its disk -> tear down

Each step is timed; the guest writes to its disk all along (protocol C: a write counts
once the peer has it) and its longest pause during each migration is measured from its
log of acknowledged writes. The invariants (one copy of the guest, DRBD Primary only on
UpToDate data, no write acknowledged twice) are sampled from the nodes' own state
throughout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from xenha_lab.lab import observe
from xenha_lab.lab.backend import LabError
from xenha_lab.sim import guest_io

DEMO_DIR = "/run/xenha-demo"
VM = "shaolin"


def default_description() -> str:
    """The howto, as `make install` put it next to the product (or in the checkout)."""
    import xenha

    installed = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(xenha.__file__))), "examples",
                             "howto.toml")
    if os.path.exists(installed):
        return installed
    return os.path.join(os.path.dirname(installed), "..", "..", "cluster-config", "examples", "howto.toml")


@dataclass
class StepResult:
    title: str
    seconds: float
    pause: float | None = None          # the guest's longest pause during the step
    note: str = ""


@dataclass
class DemoResult:
    steps: list = field(default_factory=list)
    ok: bool = False
    failure: str = ""
    samples: int = 0
    violations: list = field(default_factory=list)
    total: float = 0.0


class ClusterDemo:
    """The steps, each reported to `show` as it ends: show(kind, **data) with kind
    "title", "phase", "progress", "step", "table", "done"."""

    def __init__(self, show, directory: str = DEMO_DIR, description: str | None = None, keep: bool = False):
        self.show = show
        self.directory = directory
        self.description_path = description or default_description()
        self.keep = keep
        self.lab = None
        self.result = DemoResult()
        self.vms = []                       # (vm, resource, replicas)
        self.backing = ""

    # --- helpers ------------------------------------------------------------------------------------------------
    def step(self, title: str, action, pause_of: str | None = None, note=None) -> StepResult:
        self.show("phase", title=title)
        wall, started = time.time(), time.monotonic()
        outcome = action()
        seconds = time.monotonic() - started
        pause = None
        if pause_of:
            longest = guest_io.longest_pause(observe.acknowledged(self.lab, pause_of), since=wall, until=time.time())
            pause = longest.seconds if longest else None
        result = StepResult(title, seconds, pause, note(outcome) if note else "")
        self.result.steps.append(result)
        self.show("step", result=result)
        self.table(title)
        return result

    def table(self, title: str) -> None:
        from xenha_lab.lab import snapshot

        self.show("table", snapshot=snapshot.take(self.lab, self.vms), title=f"after: {title}")

    def running_on(self, vm: str, not_on=()) -> str | None:
        nodes = [n for n in self.lab.powered() if any(d.name == vm and d.running for d in observe.domains(self.lab, n))]
        return nodes[0] if len(nodes) == 1 and nodes[0] not in not_on else None

    def wait_running(self, vm: str, on: str | None = None, not_on=(), timeout: float = 120.0) -> str:
        def placed():
            where = self.running_on(vm, not_on)
            status = self.lab.cluster.status()
            if where and (on is None or where == on) and status and status.located(vm) == (where,):
                return where
            return None
        return self.lab.cluster.wait(f"{vm} running" + (f" on {on}" if on else ""), placed, timeout)

    def pcs(self, *args, timeout: float = 120.0) -> None:
        self.lab.check(self.lab.cluster.any_node(), ["pcs", *args], timeout=timeout)

    # --- the run --------------------------------------------------------------------------------------------------
    def run(self) -> DemoResult:
        from xenha_lab.lab.namespace import NamespaceLab
        from xenha_lab.lab.scenario import Scenario, vm_invariants

        started = time.monotonic()
        self.lab = NamespaceLab.from_description(self.directory, self.description_path, lifetime_s=1800)
        self.show("title", description=self.description_path, nodes=self.lab.nodes, directory=self.directory)
        sampler = None
        try:
            self.step("lab up: two namespace nodes, corosync + pacemakerd, fencing by the lab's power switch",
                      lambda: self.lab.up(timeout=120, progress=lambda text: self.show("progress", text=text)),
                      note=lambda t: f"all online after {t['online'] - t['cleanup']:.1f} s")
            self.provision()
            sampler = Scenario(self.lab, "demo", vm_invariants([vm for vm, _r, _n in self.vms],
                                                            [r for _v, r, _n in self.vms]), interval=0.25)
            sampler.start()
            self.step(f"VM {VM} started by Pacemaker", lambda: self.wait_running(VM),
                      note=lambda node: f"on {node}, its preferred node (started as soon as the configuration "
                                        "was pushed)")
            holder = self.running_on(VM)
            other = next(n for n in self.lab.nodes if n != holder)
            self.step(f"live migration: pcs resource move {VM} {other}", lambda: self.move(other), pause_of=VM,
                      note=lambda _: "migrate_to + migrate_from; the move constraint cleared")
            self.step(f"drain {other}: pcs node standby {other}", lambda: self.standby(other, holder), pause_of=VM,
                      note=lambda _: f"{VM} left {other} by live migration")
            self.step(f"{other} back online: pcs node unstandby {other}", lambda: self.unstandby(other),
                      note=lambda _: f"{VM} stays on {holder} (stickiness)")
            self.step(f"power cut of {holder}, where {VM} runs", lambda: self.power_cut(holder, other),
                      note=lambda text: text)
            self.step(f"{holder} rebooted by the fencing rejoins", lambda: self.rejoin(holder))
        except (LabError, AssertionError) as error:
            self.result.failure = str(error)
            self.show_failure()
        finally:
            if sampler is not None:
                sampler.stop()
                self.result.samples = sampler.samples
                self.result.violations = [f"{v.time:.1f}s: {'; '.join(v.violations)}" for v in sampler.violations]
            if not self.keep:
                self.show("phase", title="tear down")
                down = time.monotonic()
                try:
                    self.lab.down()
                    self.result.steps.append(StepResult("tear down: nothing left behind", time.monotonic() - down))
                    self.show("step", result=self.result.steps[-1])
                except LabError as error:
                    self.result.failure = self.result.failure or f"tear down: {error}"
        self.result.total = time.monotonic() - started
        self.result.ok = not self.result.failure and not self.result.violations and self.result.samples > 1
        self.show("done", result=self.result)
        return self.result

    def show_failure(self) -> None:
        """What the nodes and Pacemaker say when a step failed (before the tear down)."""
        try:
            self.table("the failure")
            node = self.lab.cluster.any_node()
            status = self.lab.run(node, ["crm_mon", "--one-shot", "--inactive", "--failcounts"], timeout=30)
            for line in (status.stdout or status.stderr).splitlines():
                self.show("progress", text=f"{node}$ {line}")
        except LabError as error:
            self.show("progress", text=f"no status: {error}")

    def provision(self) -> None:
        from xenha.render.drbd import backing_disk
        from xenha_lab.lab.provision import provision, rendering

        description, slots, _files = rendering(self.description_path)
        self.vms = [(vm.name, slots[vm.name].resource, tuple(vm.replicas)) for vm in description.vms]
        self.backing = backing_disk(description, description.vms[0])

        def progress(kind, **data):
            if kind == "step":
                entry = data["result"]
                self.show("progress", text=f"{data['node']}: {entry['op']} {entry['target']}: {entry['outcome']}")
            elif kind == "sync" and data.get("done") is not None:
                self.show("progress", text=f"initial sync of {data['resource']}: {data['done']:.0f} %")
            elif kind == "phase":
                self.show("progress", text=f"provisioning: {data['name']}")
        self.step("provision from the description: LV, DRBD meta-data, up, initial sync, xl config, pcs script",
                  lambda: provision(self.lab, self.description_path, progress=progress, wait_started=None),
                  note=lambda report: ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items() if k != "total"))

    def move(self, target: str) -> None:
        self.pcs("resource", "move", VM, target)
        self.wait_running(VM, on=target)
        constraints = self.lab.check(self.lab.cluster.any_node(), ["cibadmin", "--query", "--scope", "constraints"])
        if f"cli-prefer-{VM}" in constraints.stdout:
            raise LabError(f"the move constraint cli-prefer-{VM} was left behind")

    def standby(self, node: str, expected: str) -> None:
        self.pcs("node", "standby", node)
        self.wait_running(VM, on=expected)

    def unstandby(self, node: str) -> None:
        self.pcs("node", "unstandby", node)
        self.lab.cluster.wait_idle(timeout=60)
        # the power cut that follows starts from full redundancy: the resync of what the
        # node missed is over (a cut during it leaves the survivor Inconsistent: the VM
        # then waits for the cut node, as it must), both replicas Promoted, the cluster idle
        self.lab.cluster.wait("DRBD in sync on both replicas", self.in_sync, timeout=120)
        self.lab.cluster.wait_idle(timeout=60)

    def in_sync(self) -> bool:
        """Every VM's replicas UpToDate, connected, no resync, as the nodes' DRBD answers
        (`drbdsetup status --json`), and Promoted on each."""
        from xenha.operate.state import StateError, parse_drbd_status

        for _vm, resource, replicas in self.vms:
            for node in replicas:
                answer = self.lab.run(node, ["drbdsetup", "status", "--json", resource], timeout=30)
                try:
                    replica = parse_drbd_status(node, answer.stdout).get(resource) if answer.ok else None
                except StateError:
                    return False
                if replica is None or not (replica.up_to_date and replica.connected and not replica.resyncing
                                           and replica.role == "Primary"
                                           and set(replica.peer_disks.values()) == {"UpToDate"}
                                           and set(replica.replication.values()) == {"Established"}):
                    return False
        return True

    def power_cut(self, holder: str, survivor: str) -> str:
        cut = time.time()
        self.lab.power(holder, "off")
        fenced = self.lab.cluster.wait(f"{holder} fenced", lambda: [
            e for e in self.lab.events() if e["node"] == holder and e["by"].startswith("fence-agent@")
            and e["time"] >= cut], timeout=90)
        fence_at = fenced[0]["time"] - cut
        self.wait_running(VM, on=survivor, timeout=120)
        restarted = time.time() - cut
        before = [ack for ack in observe.acknowledged(self.lab, VM) if ack.time < cut]
        self.lab.cluster.wait(f"{VM} writing again on {survivor}", lambda: [
            ack for ack in observe.acknowledged(self.lab, VM) if ack.node == survivor and ack.time > cut], timeout=60)
        writing = min(ack.time for ack in observe.acknowledged(self.lab, VM) if ack.time > cut) - cut
        check = observe.check_writes(self.lab, VM, survivor, self.backing)
        if not check.ok or not before:
            raise LabError(f"after the failover: {check.describe()}")
        return (f"fenced by {fenced[0]['by'].split('@')[1]} after {fence_at:.1f} s, {VM} running on {survivor} after "
                f"{restarted:.1f} s and writing after {writing:.1f} s; all {len(before)} writes acknowledged before "
                f"the cut are on {survivor}'s disk")

    def rejoin(self, node: str) -> None:
        self.lab.cluster.wait(f"{node} online", lambda: node in ((self.lab.cluster.status() or _Nobody()).online()),
                              timeout=120)
        self.lab.cluster.wait_idle(timeout=90)


class _Nobody:
    def online(self):
        return []
