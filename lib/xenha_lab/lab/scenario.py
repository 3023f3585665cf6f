"""The scenario driver: steps against a node backend, invariants sampled throughout.

    with Scenario(lab, "power cut", invariants=[AtMostOneActive("d1", dummy_active("d1"))]) as sc:
        sc.pcs("resource", "create", "d1", "ocf:pacemaker:Dummy", "meta", "allow-migrate=true")
        holder = sc.wait_until("d1 started", lambda: sc.running_on("d1"), timeout=30)
        sc.power("off", holder)
        sc.wait_until("d1 elsewhere", lambda: sc.running_on("d1", not_on=holder), timeout=60)
    # leaving the block stops the sampler and raises InvariantViolated if any sample broke one

Written against NodeBackend only (run, read_file, power, partition, heal, ...), so the
same scenarios run on the namespace lab and on a later QEMU backend. Invariants are
checked from the nodes' own state (a file the agent keeps in the node's RAM, later `xl
list` or DRBD's state on the node), several times a second, in a background thread that
only reads; Pacemaker's view (crm_mon) is recorded at every step for the report.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from xenha_lab.lab import observe
from xenha_lab.lab.backend import LabError, NodeBackend
from xenha_lab.lab.cluster import Cluster


class InvariantViolated(AssertionError):
    pass


@dataclass
class Sample:
    time: float
    violations: list


@dataclass
class StepRecord:
    name: str
    started: float                    # seconds since the scenario began
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""
    cluster: dict | None = None       # Pacemaker's view at the end of the step


# --- what a node itself says ---------------------------------------------------------------------------------------

def state_file_active(path: str):
    """A probe: the resource is active on a node when `path` exists in the node's own
    file system (no symlinks followed; the node's /run is its RAM)."""
    def probe(lab: NodeBackend, node: str) -> bool:
        return lab.exists(node, path)
    probe.__doc__ = f"{path} exists on the node"
    return probe


def dummy_active(rsc: str):
    """ocf:pacemaker:Dummy keeps its state file in HA_VARRUN (/run in a node) while started;
    a migration stops it on the source (migrate_to) before starting it on the target
    (migrate_from), so it is never legitimately active twice."""
    return state_file_active(f"/run/Dummy-{rsc}.state")


def vm_running(vm: str):
    """A probe: the VM's guest runs on the node under its own name (not a migration copy),
    by the node's hypervisor."""
    def probe(lab: NodeBackend, node: str) -> bool:
        return any(d.name == vm and d.running for d in observe.domains(lab, node))
    probe.__doc__ = f"domain {vm} runs on the node"
    return probe


class Invariant:
    name = "invariant"

    def sample(self, lab: NodeBackend) -> list[str]:
        """The violations seen now (empty when it holds)."""
        raise NotImplementedError


class AtMostOneActive(Invariant):
    """A resource is active on at most one node, by each node's own account."""

    def __init__(self, rsc: str, probe):
        self.rsc, self.probe = rsc, probe
        self.name = f"{rsc} active on at most one node"

    def active_on(self, lab: NodeBackend) -> list[str]:
        return [node for node in lab.nodes if self.probe(lab, node)]

    def sample(self, lab: NodeBackend) -> list[str]:
        active = self.active_on(lab)
        return [f"{self.rsc} active on {', '.join(active)} at once"] if len(active) > 1 else []


class OneGuestCopy(Invariant):
    """A VM's guest executes on at most one node at any moment, under any of its names
    (xl's NAME--incoming and NAME--migratedaway included: during a live migration one copy
    is paused), and at most one node holds a domain of exactly that name. The nodes are
    read one after the other: a violation counts only when a second read confirms it."""

    def __init__(self, vm: str):
        self.vm = vm
        self.name = f"{vm}: one copy of the guest"

    def _read(self, lab: NodeBackend) -> dict:
        return {node: [d for d in observe.domains(lab, node) if d.guest == self.vm] for node in lab.nodes}

    def _problems(self, views: dict) -> list[str]:
        running = sorted(f"{d.name}@{node}" for node, found in views.items() for d in found if d.running)
        named = sorted(node for node, found in views.items() if any(d.name == self.vm and d.alive for d in found))
        problems = []
        if len(running) > 1:
            problems.append(f"{self.vm} executes twice: {', '.join(running)}")
        if len(named) > 1:
            problems.append(f"domain {self.vm} exists on {', '.join(named)} at once")
        return problems

    def sample(self, lab: NodeBackend) -> list[str]:
        problems = self._problems(self._read(lab))
        return self._problems(self._read(lab)) if problems else []


class PrimaryOnlyUpToDate(Invariant):
    """DRBD is never Primary on a node whose disk is not UpToDate."""

    def __init__(self, resources):
        self.resources = list(resources)
        self.name = "DRBD Primary only on UpToDate data"

    def sample(self, lab: NodeBackend) -> list[str]:
        problems = []
        for node in lab.nodes:
            for resource in self.resources:
                state = observe.drbd(lab, node, resource)
                if state is not None and state.role == "Primary" and any(d != "UpToDate" for d in state.disks):
                    problems.append(f"{resource} Primary on {node} with disk {'/'.join(state.disks)}")
        return problems


class NoDoubleWrites(Invariant):
    """No write of a guest acknowledged by two copies of it (same boot, two nodes)."""

    def __init__(self, vm: str):
        self.vm = vm
        self.name = f"{vm}: no write acknowledged twice"

    def sample(self, lab: NodeBackend) -> list[str]:
        from xenha_lab.sim import guest_io

        pairs = guest_io.duplicates(observe.acknowledged(lab, self.vm))
        return [f"{self.vm}: seq {pairs[0][0].seq} acknowledged on {pairs[0][0].node} and {pairs[0][1].node}"] \
            if pairs else []


def vm_invariants(vms, resources) -> list[Invariant]:
    """What every scenario with VMs samples: one copy of each guest, DRBD Primary only on
    UpToDate data, no write acknowledged twice."""
    return [*(OneGuestCopy(vm) for vm in vms), PrimaryOnlyUpToDate(resources), *(NoDoubleWrites(vm) for vm in vms)]


# --- the driver ------------------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    lab: NodeBackend
    name: str = "scenario"
    invariants: list = field(default_factory=list)
    interval: float = 0.1
    log: object = None                # callable(str) for progress lines, or None

    def __post_init__(self):
        self.cluster = Cluster(self.lab)
        self.steps: list[StepRecord] = []
        self.timings: dict[str, float] = {}
        self.samples = 0
        self.violations: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    # --- sampling -------------------------------------------------------------------------------------------------
    def __enter__(self) -> "Scenario":
        self.start()
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.stop()
        if kind is None:
            self.assert_invariants()
        elif self.violations and isinstance(value, Exception):
            first = self.violations[0]
            value.add_note(f"{self.name}: an invariant broke first, at {first.time:.2f}s: "
                           f"{'; '.join(first.violations)}")

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sampler, name=f"invariants of {self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self.sample_now()               # one last look, after the last step

    def _sampler(self) -> None:
        while not self._stop.is_set():
            self.sample_now()
            self._stop.wait(self.interval)

    def sample_now(self) -> None:
        found = []
        for invariant in self.invariants:
            try:
                found += invariant.sample(self.lab)
            except LabError as error:          # the lab itself failed: that is worth failing for too
                found.append(f"{invariant.name}: cannot sample: {error}")
        self.samples += 1
        if found:
            self.violations.append(Sample(self.elapsed(), found))
            self.say(f"INVARIANT BROKEN at {self.elapsed():.2f}s: {'; '.join(found)}")

    def assert_invariants(self) -> None:
        if self.violations:
            first = self.violations[0]
            raise InvariantViolated(f"{self.name}: {len(self.violations)} of {self.samples} samples broke an "
                                    f"invariant; first at {first.time:.2f}s: {'; '.join(first.violations)}")
        if self.invariants and self.samples < 2:
            raise InvariantViolated(f"{self.name}: the invariants were sampled only {self.samples} times")

    # --- bookkeeping ------------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def say(self, message: str) -> None:
        if self.log:
            self.log(f"[{self.name} {self.elapsed():6.2f}s] {message}")

    def _step(self, name: str, action, record_cluster: bool = False):
        record = StepRecord(name, self.elapsed())
        self.steps.append(record)
        started = time.monotonic()
        try:
            result = action()
        except BaseException as error:
            record.ok, record.detail = False, str(error)
            record.seconds = time.monotonic() - started
            self.say(f"{name}: FAILED after {record.seconds:.2f}s: {error}")
            raise
        record.seconds = time.monotonic() - started
        if record_cluster:
            status = self.cluster.status()
            record.cluster = status.to_json() if status else None
        self.say(f"{name} ({record.seconds:.2f}s)")
        return result

    # --- steps ----------------------------------------------------------------------------------------------------
    def up(self, timeout: float = 90.0) -> dict:
        timings = self._step("up", lambda: self.lab.up(timeout=timeout))
        self.timings.update({f"up.{k}": v for k, v in timings.items()})
        return timings

    def run(self, node: str | None, *argv, timeout: float = 60.0, check: bool = True):
        """A command inside `node` (None: any node that is up)."""
        target = self.cluster.any_node(node)
        call = (lambda: self.lab.check(target, argv, timeout=timeout)) if check else (
            lambda: self.lab.run(target, argv, timeout=timeout))
        return self._step(f"{target}: {' '.join(argv)}", call)

    def pcs(self, *args, node: str | None = None, timeout: float = 60.0, check: bool = True):
        return self.run(node, "pcs", *args, timeout=timeout, check=check)

    def crm(self, *argv, node: str | None = None, timeout: float = 60.0, check: bool = True):
        """A Pacemaker command-line tool (crm_resource, crm_attribute, stonith_admin, ...)."""
        return self.run(node, *argv, timeout=timeout, check=check)

    def power(self, action: str, node: str) -> None:
        self._step(f"power {action} {node}", lambda: self.lab.power(node, action))

    def partition(self, *groups) -> None:
        self._step(f"partition {groups}", lambda: self.lab.partition(*groups))

    def heal(self) -> None:
        self._step("heal", self.lab.heal)

    def wait_until(self, what: str, predicate, timeout: float, interval: float = 0.2):
        """Poll predicate() until it returns something true (returned); LabError at `timeout`."""
        return self._step(f"wait: {what}", lambda: self.cluster.wait(what, predicate, timeout, interval),
                          record_cluster=True)

    def wait_idle(self, timeout: float = 60.0) -> None:
        self._step("wait: cluster idle", lambda: self.cluster.wait_idle(timeout), record_cluster=True)

    def check(self, what: str, condition) -> None:
        """Fail the scenario unless `condition` (a value or a callable) is true."""
        def verify():
            value = condition() if callable(condition) else condition
            if not value:
                raise InvariantViolated(f"{self.name}: check failed: {what}")
            return value
        return self._step(f"check: {what}", verify)

    def measure(self, name: str, seconds: float) -> float:
        self.timings[name] = seconds
        self.say(f"measured {name}: {seconds:.2f}s")
        return seconds

    # --- what the nodes say -----------------------------------------------------------------------------------------
    def active_on(self, invariant: AtMostOneActive) -> list[str]:
        return invariant.active_on(self.lab)

    def running_on(self, rsc: str, probe=None, not_on=()) -> str | None:
        """The one node where `rsc` is active by the nodes' own account (and, when not
        given a probe, by Pacemaker's), if it is exactly one and not in `not_on`."""
        if probe is not None:
            active = [node for node in self.lab.nodes if probe(self.lab, node)]
        else:
            status = self.cluster.status()
            active = list(status.located(rsc)) if status else []
        if len(active) == 1 and active[0] not in not_on:
            return active[0]
        return None
