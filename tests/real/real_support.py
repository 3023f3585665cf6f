"""Support of the real-kernel tier's tests (imported by the test modules, like
tests/lab/lab_support.py): one lab of two QEMU/Xen nodes per module, provisioned with the
lab's cluster description, its PV guest writing; teardown checked (no QEMU of the lab
left, its directory gone); timings printed in pytest's summary.

Only `make test-real` collects tests/real (tests/conftest.py); there a machine that cannot
run the tier (no QEMU, too little memory, not root) fails the run, it never skips.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import pytest

from conftest import REPO, missing_prerequisite

LAB_ROOT = REPO / "build" / "real-tests"
TIMINGS: list[tuple[str, float]] = []
VM = "guest1"


def record(name: str, seconds: float | None) -> float | None:
    TIMINGS.append((name, seconds))
    return seconds


_TERMINAL: list = []


def say(message: str) -> None:
    """Progress on the terminal while a scenario runs (they take minutes): pytest's own
    terminal writer, past its output capture."""
    line = f"{time.strftime('%H:%M:%S')} {message}"
    if _TERMINAL:
        _TERMINAL[0].write_line(line)
    else:
        sys.stderr.write(line + "\n")


class _TimingsReport:
    def pytest_terminal_summary(self, terminalreporter):
        if TIMINGS:
            terminalreporter.section("real-kernel tier timings")
            for name, seconds in TIMINGS:
                terminalreporter.write_line(f"{name:72} " + ("      -" if seconds is None else f"{seconds:7.1f} s"))


@dataclass
class RealCluster:
    """The lab, its provisioned VM, the guest's write log and the invariants."""
    lab: object
    vm: object
    log: object
    invariants: list = field(default_factory=list)

    def scenario(self, name: str):
        from xenha_lab.lab.scenario import Scenario

        # one sample every 3 s: each asks `xl list` of both nodes, which costs them CPU
        return Scenario(self.lab, name, invariants=self.invariants, interval=3.0, log=say)

    def status(self, node: str | None = None):
        """Pacemaker's view (crm_mon), asked again while a busy emulated node is slow to
        answer; AssertionError when no node answers within two minutes."""
        deadline = time.monotonic() + 120
        while True:
            view = self.lab.cluster.status(node, timeout=60)
            if view is not None:
                return view
            assert time.monotonic() < deadline, f"crm_mon did not answer on {node or 'any node'} for 2 minutes"
            time.sleep(2)

    def domains(self) -> dict:
        from xenha_lab.realkernel.guest import xl_domains

        return {node: xl_domains(self.lab, node) for node in self.lab.nodes}

    def running_on(self) -> str | None:
        """The one node whose `xl list` shows the guest running (None: none or several)."""
        from xenha_lab.realkernel.guest import running

        found = [node for node, domains in self.domains().items() if domains and running(domains.get(VM, ""))]
        return found[0] if len(found) == 1 else None

    def guest_boots(self) -> list[str]:
        return [boot[:8] for _t, boot, _path in self.log.boots]

    def acks_since(self, since: float) -> list[tuple[float, int, str]]:
        return [a for a in list(self.log.acks) if a[0] >= since]

    def pacemaker_log(self, node: str, needle: str) -> list[str]:
        """The lines of the node's Pacemaker log with `needle` (grep in the node: the log is
        megabytes, the channel would carry all of it)."""
        result = self.lab.run(node, ["grep", "-F", "--", needle, "/var/log/pacemaker/pacemaker.log"], timeout=60)
        assert result.returncode in (0, 1) and not result.timed_out, result.describe()
        return result.stdout.splitlines()

    def drbd(self, node: str) -> dict:
        from xenha_lab.realkernel.guest import proc_drbd

        return proc_drbd(self.lab, node).get(self.vm.minor, {})

    def writes_intact(self, node: str, acknowledged: dict) -> list[str]:
        """What of `acknowledged` ({N: boot tag}) the VM's disk on `node` does not hold."""
        from xenha_lab.realkernel.guest import lost_writes, records_on_disk

        if not acknowledged:
            return ["no acknowledged write to check"]
        records = records_on_disk(self.lab, node, self.vm.device, max(acknowledged))
        return lost_writes(acknowledged, records)

    def exec_seconds(self, operation: str) -> float | None:
        """The guest resource's last `operation` as the CIB recorded it: its exec-time (s)."""
        from xenha_lab.realkernel.bench import exec_seconds

        return exec_seconds(self.lab, self.lab.powered()[0], operation)

    def location_constraints(self) -> list[str]:
        import xml.etree.ElementTree as ET

        out = self.lab.check(self.lab.powered()[0], ["cibadmin", "--query", "--scope", "constraints"]).stdout
        return [c.get("id") for c in ET.fromstring(out).iter("rsc_location")]


def require_real_tier(nodes: int = 2) -> None:
    from xenha_lab.realkernel.backend import missing_prerequisites

    problems = missing_prerequisites(nodes)
    if problems:
        missing_prerequisite("the real-kernel tier cannot run here: " + "; ".join(problems))


@pytest.fixture(scope="module")
def cluster(request):
    """Two Xen dom0 nodes up, the lab's description provisioned (the guest starting)."""
    if not request.config.pluginmanager.has_plugin("xenha-real-timings"):
        request.config.pluginmanager.register(_TimingsReport(), "xenha-real-timings")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not _TERMINAL:
        _TERMINAL.append(reporter)
    require_real_tier()
    from xenha_lab.realkernel import provision
    from xenha_lab.realkernel.backend import QemuLab
    from xenha_lab.realkernel.guest import DomainOnOneNode, PrimaryOnlyUpToDate, WriteLog

    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    lab = QemuLab.from_description(str(LAB_ROOT / name), provision.default_description(), lifetime_s=3600)
    log = None
    try:
        started = time.monotonic()
        timings = lab.up(progress=lambda m: say(f"lab: {m}"))
        record("images (built or reused)", timings["images"])
        record("machines started -> all booted (Xen, dom0, corosync, pacemakerd)",
               timings["booted"] - timings["cleanup"])
        record("machines started -> cluster online, fencing ready", timings["ready"] - timings["cleanup"])
        vms, steps = provision.provision(lab, say=lambda m: say(f"provision: {m}"))
        record("provisioning (LVs, DRBD, xl files, CIB)", steps["cib"])
        log = WriteLog(lab.lay.share, VM).start()
        vm = next(v for v in vms if v.name == VM)
        record("lab up and provisioned", time.monotonic() - started)
        yield RealCluster(lab, vm, log, [DomainOnOneNode(VM), PrimaryOnlyUpToDate(vm.minor)])
    finally:
        if log is not None:
            log.stop()
        lab.down()
        left = lab.leftover_machines()
        assert not left, f"QEMU processes of the lab left behind: {left}"
        assert not os.path.exists(lab.lay.dir), f"{lab.lay.dir} still exists"
