"""End-to-end scenarios of issue 10 on the howto's two-node cluster (mk1, mk2, VM
shaolin on DRBD resource vm_shaolin), provisioned in the lab: a network partition
(priority-fencing-delay: the node running the VM wins), and the DRBD peer outdated
during a partition, not promoted until resynced. The lab is shared by the module's
scenarios (vm_lab.VmLab.reset between them); invariants sampled throughout.
"""

from __future__ import annotations

import time

import pytest

from conftest import REPO
from lab_support import record, traces_of  # noqa: F401 - traces_of is a fixture
from vm_lab import provisioned
from xenha_lab.lab import observe
from xenha_lab.lab.scenario import Invariant

HOWTO = str(REPO / "cluster-config" / "examples" / "howto.toml")
VM, RESOURCE = "shaolin", "vm_shaolin"


class GuestStaysOn(Invariant):
    """The guest never executes on any node but `node` (under any of its names)."""

    def __init__(self, vm: str, node: str):
        self.vm, self.node = vm, node
        self.name = f"{vm} stays on {node}"

    def sample(self, lab) -> list[str]:
        elsewhere = [n for n in lab.nodes if n != self.node and
                     any(d.guest == self.vm and d.running for d in observe.domains(lab, n))]
        return [f"{self.vm} runs on {', '.join(elsewhere)}"] if elsewhere else []


class DrbdHistory(Invariant):
    """Records a node's DRBD role and disk state at every sample; never a violation."""

    def __init__(self, node: str, resource: str):
        self.node, self.resource = node, resource
        self.name = f"{resource} on {node}, recorded"
        self.seen: list[tuple[float, str, str]] = []

    def sample(self, lab) -> list[str]:
        state = observe.drbd(lab, self.node, self.resource)
        self.seen.append((time.monotonic(), state.role if state else "-", state.disk if state else "-"))
        return []


@pytest.fixture(scope="module")
def pair(traces_of):  # noqa: F811 - the fixture imported above
    with provisioned(traces_of, "scen2", HOWTO, "scenarios (2 nodes)") as vm_lab:
        yield vm_lab


@pytest.fixture
def cluster(pair):
    pair.reset()
    return pair


def partitioned(cluster, sc, loser: str, winner: str) -> float:
    """Partition the two nodes; the holder (`winner`) fences `loser`. The time of the cut."""
    lab = cluster.lab
    cut = time.time()
    sc.partition([winner], [loser])
    sc.wait_until(f"{loser} fenced by {winner}", lambda: [e for e in lab.events() if e["node"] == loser and
                                                         e["by"] == f"fence-agent@{winner}" and e["time"] >= cut],
                  timeout=120)
    return cut


def test_6_a_two_node_partition_leaves_the_vm_on_one_side_only(cluster):
    lab = cluster.lab
    with cluster.scenario("2-node partition", GuestStaysOn(VM, "mk1")) as sc:
        cut = partitioned(cluster, sc, "mk2", "mk1")
        record("scenarios (2 nodes): partition -> mk2 fenced", time.time() - cut)
        cluster.wait_writing(sc, VM, "mk1", since=time.time())
        sc.heal()
        sc.wait_until("both nodes online", lambda: sorted((sc.cluster.status("mk1") or _Nobody()).online()) ==
                      ["mk1", "mk2"], timeout=180)
        sc.wait_idle(timeout=120)
    assert not [e for e in lab.events() if e["node"] == "mk1" and e["what"] in ("off", "on") and e["time"] >= cut]
    assert cluster.guest_on(VM) == ["mk1"]
    cluster.writes_intact(VM, "mk1", before=cut)


def test_10_the_peer_outdated_during_a_partition_is_not_promoted_until_resynced(cluster):
    lab = cluster.lab
    history = DrbdHistory("mk2", RESOURCE)
    with cluster.scenario("outdated peer", history) as sc:
        cut = partitioned(cluster, sc, "mk2", "mk1")
        sc.wait_until("the fence-peer handler's constraint", lambda: "drbd-fence-by-handler" in lab.check(
            "mk1", ["cibadmin", "--query", "--scope", "constraints"]).stdout, timeout=60)
        written = cluster.wait_writing(sc, VM, "mk1", since=cut + 0.5)   # data mk2 lacks
        sc.heal()
        sc.wait_until("mk2 Promoted again", lambda: cluster.promoted_on("drbd_shaolin") == ["mk1", "mk2"],
                      timeout=240)
        sc.wait_until("the fence constraint lifted", lambda: "drbd-fence-by-handler" not in lab.check(
            "mk1", ["cibadmin", "--query", "--scope", "constraints"]).stdout, timeout=60)
        sc.wait_idle(timeout=120)
    assert written
    after_boot = [s for s in history.seen if s[2] != "-"]
    stale = [s for s in after_boot if s[2] != "UpToDate"]
    assert stale, f"mk2 never came back with data to resync: {sorted(set(s[1:] for s in history.seen))}"
    promoted = [s for s in after_boot if s[1] == "Primary" and s[0] > stale[0][0]]
    assert promoted and promoted[0][0] > stale[-1][0], "mk2 was promoted before its resync ended"
    assert cluster.drbd_synced(VM)
    cluster.writes_intact(VM, "mk2" if cluster.placed(VM) == "mk2" else "mk1", before=cut)


class _Nobody:
    def online(self):
        return []


def test_teardown_leaves_nothing(pair, traces_of):  # noqa: F811
    traces = traces_of(pair.lab.lay.dir)
    traces.note(pair.lab)
    pair.lab.down()
    assert traces.leftovers() == []
