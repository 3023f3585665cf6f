"""Support of the lab tests: a real cluster per module, its teardown checked, its timings
reported at the end of the run (imported by the test modules: a conftest.py here would
take the module name `conftest` from tests/conftest.py for the directories after it).

The clusters live in build/lab-tests/<name> of the checkout (a fixed place, so that a run
killed half-way is cleaned up by the next one). Namespaces missing -> skip with the
reason; under `make test` that is a failure.
"""

from __future__ import annotations

import os

import pytest

from conftest import REPO, STAGED

LAB_ROOT = REPO / "build" / "lab-tests"
TIMINGS: list[tuple[str, float]] = []


def require_lab() -> None:
    from xenha_lab.lab.namespace import missing_prerequisites

    problems = missing_prerequisites()
    if problems:
        if STAGED:
            pytest.fail("the lab cannot run here: " + "; ".join(problems))
        pytest.skip("the lab cannot run here: " + "; ".join(problems))


def lab_dir(name: str) -> str:
    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    return str(LAB_ROOT / name)


def record(name: str, seconds: float) -> float:
    TIMINGS.append((name, seconds))
    return seconds


class _TimingsReport:
    """A plugin printing the measured lab timings in pytest's summary."""

    def pytest_terminal_summary(self, terminalreporter):
        if TIMINGS:
            terminalreporter.section("lab timings")
            for name, seconds in TIMINGS:
                terminalreporter.write_line(f"{name:60} {seconds:6.2f} s")


class Traces:
    """What a lab ever showed of itself, to prove afterwards that nothing of it is left:
    its directory, every network namespace it used (hub and nodes, over reboots), every
    init it ran."""

    def __init__(self, directory: str):
        self.dir = directory
        self.netns: set[str] = set()
        self.pids: set[int] = set()

    def note(self, lab) -> None:
        try:
            status = lab.status()
        except Exception:  # noqa: BLE001 - a lab that is down has nothing more to show
            return
        if status.get("hub_netns"):
            self.netns.add(status["hub_netns"])
        for event in status["events"]:
            if event.get("netns"):
                self.netns.add(event["netns"])
            if event.get("pid"):
                self.pids.add(event["pid"])
        self.pids.add(status["pid"])

    def leftovers(self) -> list[str]:
        from xenha_lab.lab import linux

        found = []
        me = os.getpid()
        for pid in linux.all_pids():
            if pid == me:
                continue
            line = linux.cmdline(pid) or ""
            if self.dir in line:
                found.append(f"process {pid}: {line[:120]}")
            net = linux.namespace_id(pid, "net")
            if net in self.netns:
                found.append(f"process {pid} in the lab's network namespace {net}: {line[:80]}")
            for mount in linux.mounts_mentioning(self.dir, pid):
                found.append(f"mount in process {pid}'s namespace: {mount[:120]}")
        for mount in linux.mounts_mentioning("nsfs"):
            if any(ns in mount for ns in self.netns):
                found.append(f"a bind mount keeps a lab network namespace: {mount}")
        found += [f"loop device {dev} on {backing}" for dev, backing in linux.loop_devices_under(self.dir)]
        if os.path.exists(self.dir):
            found.append(f"{self.dir} still exists")
        return found


@pytest.fixture(scope="module")
def traces_of(request):
    """traces_of(dir) -> Traces; every lab noted must be gone at the end of the module."""
    if not request.config.pluginmanager.has_plugin("xenha-lab-timings"):
        request.config.pluginmanager.register(_TimingsReport(), "xenha-lab-timings")
    made: list[Traces] = []

    def make(directory: str) -> Traces:
        traces = Traces(directory)
        made.append(traces)
        return traces
    yield make
    problems = [p for traces in made for p in traces.leftovers()]
    assert not problems, "the lab left something behind:\n" + "\n".join(problems)
