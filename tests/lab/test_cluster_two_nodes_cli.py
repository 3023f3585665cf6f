"""A real 2-node cluster driven through the installed `xenha lab` commands, shared by the
tests of this module (in order): `lab up` after an aborted run (the second lab made from
the howto's cluster description: nodes mk1 and mk2), status/exec, a partition
(priority-fencing-delay: the node holding the resource fences the other and keeps it), a
power cut of the holder, `lab down` leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import REPO, installed
from lab_support import lab_dir, record, require_lab, traces_of  # noqa: F401 - traces_of is a fixture
from xenha_lab.lab import linux
from xenha_lab.lab.scenario import AtMostOneActive, Invariant, Scenario, dummy_active
from xenha_lab.paths import DEFAULT_PATH

HOWTO = REPO / "cluster-config" / "examples" / "howto.toml"
D1 = dummy_active("d1")
ONE_D1 = AtMostOneActive("d1", D1)


class StaysOn(Invariant):
    """The resource is never active on any node but `node`."""

    def __init__(self, rsc: str, probe, node: str):
        self.rsc, self.probe, self.node = rsc, probe, node
        self.name = f"{rsc} stays on {node}"

    def sample(self, lab):
        moved = [n for n in lab.nodes if n != self.node and self.probe(lab, n)]
        return [f"{self.rsc} active on {', '.join(moved)}"] if moved else []


def xenha(directory: str, *args, timeout: float = 180.0) -> subprocess.CompletedProcess:
    command = installed(os.path.join(os.environ.get("XENHA_SBINDIR", "/usr/local/sbin"), "xenha"))
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
    if os.environ.get("XENHA_LAB_LOGS"):                 # where `lab down` keeps the logs, if asked
        env["XENHA_LAB_LOGS"] = os.environ["XENHA_LAB_LOGS"]
    return subprocess.run([command, "lab", "--dir", directory, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def lab(traces_of):  # noqa: F811 - the fixture imported above
    require_lab()
    from xenha_lab.lab.namespace import NamespaceLab

    directory = lab_dir("two")
    traces = traces_of(directory)
    holder = {}
    try:
        yield directory, traces, holder
    finally:
        if os.path.exists(directory):
            try:
                traces.note(NamespaceLab.attach(directory))
            finally:
                xenha(directory, "down")


def attach(directory: str):
    from xenha_lab.lab.namespace import NamespaceLab
    return NamespaceLab.attach(directory)


def holder_of_d1(backend) -> str:
    return backend.cluster.wait("d1 on one node", lambda: _only(ONE_D1.active_on(backend)), timeout=60)


def _only(nodes):
    return nodes[0] if len(nodes) == 1 else None


def test_lab_up_after_an_aborted_run_cleans_up_first(lab):
    directory, traces, _ = lab
    first = xenha(directory, "up", "--nodes", "2", "--lifetime", "15m")
    assert first.returncode == 0, first.stdout + first.stderr
    backend = attach(directory)
    traces.note(backend)
    inits = [linux.ProcessId.from_json(n["init"]) for n in backend.status()["nodes"]]
    supervisor = backend.supervisor_process()
    assert supervisor is not None and all(linux.is_alive(p) for p in inits)
    # the run is aborted: its supervisor killed outright; its nodes die with it (parent-death signal)
    assert linux.signal_checked(supervisor, signal.SIGKILL)
    assert linux.wait_gone(supervisor, 10.0)
    assert all(linux.wait_gone(p, 10.0) for p in inits), "nodes outlived their supervisor"
    second = xenha(directory, "up", "--cluster", str(HOWTO), "--no-provision", "--lifetime", "15m")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"cleaning up the earlier lab in {directory}" in second.stdout
    online = float(second.stdout.split("all online in ")[1].split(" s")[0])
    record("2 nodes (CLI): lab up -> all online", online)
    traces.note(attach(directory))


def test_status_and_exec(lab):
    directory, _, _ = lab
    status = xenha(directory, "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert [(n["name"], n["power"], n["booted"]) for n in data["lab"]["nodes"]] == [("mk1", "on", True),
                                                                                    ("mk2", "on", True)]
    assert sorted(n["name"] for n in data["cluster"]["nodes"] if n["online"]) == ["mk1", "mk2"]
    table = xenha(directory, "status").stdout
    assert "lab-fence (stonith:fence_xenha_lab): Started on" in table and "quorate" in table
    assert xenha(directory, "exec", "mk2", "--", "crm_node", "-n").stdout.strip() == "mk2"
    assert "Quorate:          Yes" in xenha(directory, "exec", "mk1", "corosync-quorumtool", "-s").stdout
    assert xenha(directory, "exec", "mk1", "--", "sh", "-c", "exit 3").returncode == 3
    # the description's cluster name and replication addresses; names resolve through the lab's /etc/hosts
    assert "Cluster name: howto" in xenha(directory, "exec", "mk1", "pcs", "status").stdout
    assert "10.0.0.2/24" in xenha(directory, "exec", "mk2", "ip", "-o", "addr", "show", "dev", "eth0").stdout
    assert xenha(directory, "exec", "mk1", "getent", "hosts", "mk2").stdout.split() == ["10.213.0.12", "mk2"]
    wrong = xenha(directory, "exec", "n7", "--", "true")
    assert wrong.returncode == 1 and wrong.stderr.strip().splitlines() == [
        "Error: no node 'n7' in this lab (nodes: mk1, mk2)"]
    gone = xenha(directory + "-none", "status")
    assert gone.returncode == 1 and len(gone.stderr.strip().splitlines()) == 1 and "Traceback" not in gone.stderr


def test_a_partition_is_won_by_the_node_holding_the_resource(lab):
    directory, _, holder_box = lab
    created = xenha(directory, "exec", "mk1", "--", "pcs", "resource", "create", "d1", "ocf:pacemaker:Dummy",
                    "meta", "allow-migrate=true", "priority=10", "op", "monitor", "interval=5s")
    assert created.returncode == 0, created.stderr
    backend = attach(directory)
    holder = holder_of_d1(backend)
    other = next(n for n in backend.nodes if n != holder)
    with Scenario(backend, "2-node partition", [ONE_D1, StaysOn("d1", D1, holder)]) as sc:
        cut = time.time()
        assert xenha(directory, "partition", other).returncode == 0
        fenced = sc.wait_until(f"{other} fenced", lambda: [e for e in backend.events() if e["node"] == other and
                                                          e["by"] == f"fence-agent@{holder}"], timeout=60)
        record("2 nodes: partition -> the holder powered its peer off", fenced[0]["time"] - cut)
        time.sleep(2)
        assert xenha(directory, "heal").returncode == 0
        sc.wait_until("both online", lambda: sorted((sc.cluster.status(holder) or _Nobody()).online()) ==
                      ["mk1", "mk2"], timeout=90)
        sc.wait_idle()
    events = backend.events()
    assert not [e for e in events if e["node"] == holder and e["what"] in ("off", "on") and e["by"] != "lab"], \
        "the holder was fenced too"
    assert ONE_D1.active_on(backend) == [holder]
    holder_box["holder"] = holder


def test_a_power_cut_of_the_holder_fails_over_after_the_fencing_delay(lab):
    directory, _, _ = lab
    backend = attach(directory)
    holder = holder_of_d1(backend)
    with Scenario(backend, "2-node power cut", [ONE_D1]) as sc:
        cut = time.monotonic()
        assert xenha(directory, "power", "off", holder).returncode == 0
        survivor = sc.wait_until("d1 on the survivor", lambda: sc.running_on("d1", D1, not_on=[holder]), timeout=60)
        record("2 nodes: power cut -> d1 on the survivor (priority-fencing-delay 5s)", time.monotonic() - cut)
    assert [e["what"] for e in backend.events() if e["node"] == holder and e["by"] == f"fence-agent@{survivor}"] \
        == ["off", "on"]


class _Nobody:
    def online(self):
        return []


def test_lab_down_leaves_nothing(lab):
    directory, traces, _ = lab
    traces.note(attach(directory))
    down = xenha(directory, "down")
    assert down.returncode == 0, down.stderr
    record("2 nodes (CLI): lab down", float(down.stdout.split("down in ")[1].split(" s")[0]))
    assert traces.leftovers() == []
    assert xenha(directory, "down").stdout.strip() == f"lab: nothing in {directory}"
