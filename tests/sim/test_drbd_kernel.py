"""The simulated DRBD kernel as a process of its own (`xenha-sim-drbd-kernel`): time
passes without commands, and connections follow real TCP links between two network
namespaces (a veth pair each, to a bridge in a hub namespace the world creates and
removes), with DRBD's timers.

What is observed without running any command is read from the kernel's own records
(`Node.load`, no advance); the rest through the real drbdadm and the simulated
drbdsetup, as a user would.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest

from conftest import installed, need_tool
from xenha_lab.sim.drbd import network
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.world import DrbdWorld, default_simbindir

NODES = {"alice": "10.98.0.1", "bob": "10.98.0.2"}
FAST = "protocol C; ping-int 2; ping-timeout 5; timeout 10; connect-int 2;"


@pytest.fixture
def wired(tmp_path):
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("losetup") is None:
        pytest.skip("needs root, ip netns and loop devices")
    need_tool("drbdadm")
    installed(os.path.join(default_simbindir(), "xenha-sim-drbd-kernel"))
    world = DrbdWorld(tmp_path / "drbd", NODES, wired=True, resync_rate_kib=4096)
    try:
        yield world
    finally:
        logs = {name: world.kernel_log(name) for name in world.names}
        world.cleanup()
        for name, text in logs.items():
            print(f"--- kernel log of {name}\n{text}")


def record(world, name: str, res: str = "r0"):
    """The node's kernel record as the kernel left it (no command, no advance)."""
    return Node(world.state_dir(name), world.disks_dir(name), world.net, name).load(res)


def repl(world, name: str) -> str:
    rec = record(world, name)
    return rec.conns[1 - rec.node_id].pd[0].repl if rec else ""


def cstate(world, name: str) -> str:
    rec = record(world, name)
    return rec.conns[1 - rec.node_id].cstate if rec else ""


def up_with_kernels(world, net: str = FAST, size_mib: int = 16) -> None:
    world.write_config("r0", net=net, size_mib=size_mib)
    for name in world.names:
        world.create_md(name, "r0")
        world.start_kernel(name)
        world.drbdadm(name, "up", "r0", check=True)


def session(world, res: str = "r0"):
    rec = record(world, "alice", res)
    local, peer = rec.conns[1].paths[0]
    with network.SessionFile(world.net, local, peer) as sfile:
        return sfile.load()


def synced(world) -> bool:
    for name in world.names:
        rec = record(world, name)
        if rec is None or rec.devices[0].disk != "UpToDate":
            return False
        pd = rec.conns[1 - rec.node_id].pd[0]
        if pd.repl != "Established" or pd.pdisk != "UpToDate":
            return False
    return True


def test_the_kernel_process_finishes_a_resync_with_no_command_run(wired):
    up_with_kernels(wired)
    assert wired.wait_for(lambda: cstate(wired, "alice") == cstate(wired, "bob") == "Connected", 15)
    wired.drbdadm("alice", "primary", "--force", "r0", check=True)       # the last command
    seen = set()

    def done():
        seen.add(repl(wired, "bob"))
        return synced(wired)
    # 16 MiB at 4 MiB/s: about 4 s of SyncTarget, then the end, seen by both kernels
    assert wired.wait_for(done, 20, interval=0.1), (record(wired, "alice").dump(), record(wired, "bob").dump())
    assert "SyncTarget" in seen
    alice, bob = (Node(wired.state_dir(n), wired.disks_dir(n), wired.net, n) for n in wired.names)
    backing = {n: record(wired, n).devices[0].backing for n in wired.names}
    assert bob.disk(backing["bob"]).cur == alice.disk(backing["alice"]).cur   # the target took the source's data generation
    assert not alice.disk(backing["alice"]).oos and not bob.disk(backing["bob"]).oos


def finished_resync_then_reconnect(world) -> str:
    """resource-agents' test cases: the sync is seen done from the source's side, which
    goes down and up again at once; what the reconnection decides."""
    world.drbdadm("alice", "primary", "--force", "r0", check=True)
    assert world.wait_for(lambda: "peer-disk:UpToDate" in world.drbdsetup("alice", "status", "r0").stdout, 20)
    world.drbdadm("alice", "down", "r0", check=True)
    world.drbdadm("alice", "up", "r0", check=True)
    assert world.wait_for(lambda: synced(world), 20), (record(world, "alice").dump(), record(world, "bob").dump())
    return session(world).vols[0].kind


def test_a_reconnect_after_a_finished_resync_resyncs_nothing(wired):
    up_with_kernels(wired)
    assert finished_resync_then_reconnect(wired) == "none"


def test_a_cut_wire_disconnects_both_sides_and_the_reconnect_resyncs_only_what_changed(wired):
    up_with_kernels(wired)
    wired.drbdadm("alice", "primary", "--force", "r0", check=True)
    assert wired.wait_for(lambda: synced(wired), 20)
    time.sleep(0.5)
    cut = time.monotonic()
    wired.link_down("bob")
    # ping-int 2 s, ping-timeout 0.5 s: both kernels give up within 2.5 s of the last traffic
    assert wired.wait_for(lambda: cstate(wired, "alice") == cstate(wired, "bob") == "Connecting", 8, interval=0.05)
    lost_after = time.monotonic() - cut
    assert 0.4 < lost_after < 4.0, lost_after
    assert wired.kernel_links("alice") == {"ipv4:10.98.0.1:7789 ipv4:10.98.0.2:7789": False}
    # written while apart: alice's bitmap holds these three blocks for bob
    for blk in (1, 2, 3):
        assert wired.write("alice", "r0", blk, f"apart {blk}".encode()) == "ack"
    status = wired.drbdsetup("alice", "status", "r0", "--statistics").stdout
    assert "out-of-sync:12" in status, status
    wired.link_up("bob")
    # alice (node-id 0) tries again every connect-int (2 s); then the handshake
    assert wired.wait_for(lambda: synced(wired), 10), (record(wired, "alice").dump(), record(wired, "bob").dump())
    decision = session(wired).vols[0]
    assert decision.kind == "resync" and decision.blocks == {1, 2, 3}, decision.dump()
    assert all(wired.disk_blocks("bob", "r0")[b].startswith(f"apart {b}".encode()) for b in (1, 2, 3))
    # apart again with nothing written: the reconnect resyncs nothing
    epoch = session(wired).epoch
    wired.link_down("alice")
    assert wired.wait_for(lambda: cstate(wired, "alice") == cstate(wired, "bob") == "Connecting", 8)
    wired.link_up("alice")
    assert wired.wait_for(lambda: synced(wired) and session(wired).epoch != epoch, 10)
    assert session(wired).vols[0].kind == "none", session(wired).vols[0].dump()


def test_drbd_default_timers_apply_when_the_resource_sets_none(wired):
    up_with_kernels(wired, net="protocol C;")
    assert wired.wait_for(lambda: cstate(wired, "alice") == cstate(wired, "bob") == "Connected", 15)
    cut = time.monotonic()
    wired.link_down("alice")
    # idle: nothing is noticed before a ping is due (ping-int 10 s after the last traffic)
    time.sleep(3.0)
    assert cstate(wired, "alice") == cstate(wired, "bob") == "Connected"
    assert wired.wait_for(lambda: cstate(wired, "alice") == cstate(wired, "bob") == "Connecting", 12, interval=0.1)
    lost_after = time.monotonic() - cut
    assert 8.0 < lost_after < 12.5, lost_after
    restored = time.monotonic()
    wired.link_up("alice")
    assert wired.wait_for(lambda: cstate(wired, "alice") == cstate(wired, "bob") == "Connected", 15, interval=0.1)
    assert time.monotonic() - restored < 12.0          # connect-int 10 s


def test_a_write_waits_for_the_peers_answer_up_to_timeout(wired):
    up_with_kernels(wired)
    wired.drbdadm("alice", "primary", "--force", "r0", check=True)
    assert wired.wait_for(lambda: synced(wired), 20)
    started = time.monotonic()
    assert wired.write("alice", "r0", 5, b"answered") == "ack"
    assert time.monotonic() - started < 1.0
    bob_kernel = wired.kernels["bob"]
    bob_kernel.send_signal(signal.SIGSTOP)            # bob's kernel hangs: no answer comes
    try:
        result = {}

        def write():
            began = time.monotonic()
            result["rc"] = wired.write("alice", "r0", 6, b"unanswered")
            result["took"] = time.monotonic() - began
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=10)
        assert not writer.is_alive()
    finally:
        bob_kernel.send_signal(signal.SIGCONT)
    # timeout 1 s: the write completes locally once alice gives bob up, the block out of sync for bob
    assert result["rc"] == "ack" and 0.9 < result["took"] < 3.0, result
    assert cstate(wired, "alice") in ("Connecting", "Connected")
    assert wired.wait_for(lambda: synced(wired), 15)
    assert wired.disk_blocks("bob", "r0")[6].startswith(b"unanswered")


def test_a_second_kernel_process_on_a_node_refuses_to_start(wired):
    wired.start_kernel("alice")
    proc = wired.run("alice", ["xenha-sim-drbd-kernel"], timeout=10)
    assert proc.returncode == 1 and "already running on this node" in proc.stderr
