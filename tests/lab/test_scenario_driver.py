"""The scenario driver against a stand-in backend (no cluster): the invariant sampler
notices a resource active on two nodes even for a moment, a failed check fails the
scenario, and the driver needs nothing but the NodeBackend interface."""

from __future__ import annotations

import threading
import time

import pytest

from xenha_lab.lab.backend import CommandResult, LabError, NodeBackend, NodeState
from xenha_lab.lab.scenario import AtMostOneActive, InvariantViolated, Scenario, dummy_active


class PaperLab(NodeBackend):
    """Nodes that are dictionaries of files; enough for the driver."""

    def __init__(self, names):
        self.nodes = list(names)
        self.files = {name: {} for name in names}
        self.power_state = {name: "on" for name in names}
        self.lock = threading.Lock()
        self.log = []

    def up(self, timeout=90.0):
        return {"online": 0.0}

    def down(self, timeout=60.0):
        return {"down": 0.0}

    def run(self, node, argv, timeout=60.0, input=None):
        self.log.append((node, tuple(argv)))
        return CommandResult(node, tuple(argv), 0, "", "", 0.0)

    def read_file(self, node, path):
        with self.lock:
            if self.power_state[node] != "on":
                return None
            return self.files[node].get(path)

    def write(self, node, path, data):
        with self.lock:
            if data is None:
                self.files[node].pop(path, None)
            else:
                self.files[node][path] = data

    def power(self, node, action):
        with self.lock:
            self.power_state[node] = "off" if action == "off" else "on"
            if action == "off":
                self.files[node].clear()

    def cut(self, node):
        pass

    def restore(self, node):
        pass

    def partition(self, *groups):
        pass

    def heal(self):
        pass

    def node_state(self, node):
        return NodeState(node, "10.0.0.1", self.power_state[node], True, "up", 0)

    def events(self):
        return []


STATE = "/run/Dummy-d1.state"


def test_a_moment_on_two_nodes_is_caught():
    lab = PaperLab(["a", "b"])
    lab.write("a", STATE, b"")
    with pytest.raises(InvariantViolated, match="d1 active on a, b at once"):
        with Scenario(lab, "bad migration", [AtMostOneActive("d1", dummy_active("d1"))], interval=0.01) as sc:
            lab.write("b", STATE, b"")           # started on the target before the source stopped
            time.sleep(0.1)
            lab.write("a", STATE, None)
            sc.wait_until("d1 on b", lambda: sc.running_on("d1", dummy_active("d1")) == "b", timeout=5)


def test_a_clean_move_and_a_power_cut_pass_and_are_sampled():
    lab = PaperLab(["a", "b"])
    lab.write("a", STATE, b"")
    with Scenario(lab, "good", [AtMostOneActive("d1", dummy_active("d1"))], interval=0.01) as sc:
        sc.pcs("resource", "move", "d1", "b", node="a")
        lab.write("a", STATE, None)
        lab.write("b", STATE, b"")
        assert sc.wait_until("d1 on b", lambda: sc.running_on("d1", dummy_active("d1")), timeout=5) == "b"
        sc.power("off", "b")
        assert sc.running_on("d1", dummy_active("d1")) is None
        time.sleep(0.05)
    assert sc.samples >= 3 and not sc.violations
    assert ("a", ("pcs", "resource", "move", "d1", "b")) in lab.log
    assert [s.name for s in sc.steps] == ["a: pcs resource move d1 b", "wait: d1 on b", "power off b"]


def test_failed_checks_and_waits_fail_the_scenario():
    lab = PaperLab(["a"])
    with Scenario(lab, "checks") as sc:
        with pytest.raises(InvariantViolated, match="check failed: nothing runs"):
            sc.check("nothing runs", lambda: sc.running_on("d1", dummy_active("d1")))
        with pytest.raises(LabError, match="timed out after 0 s waiting for d1"):
            sc.wait_until("d1", lambda: None, timeout=0.2, interval=0.05)
    assert [s.ok for s in sc.steps] == [False, False]
