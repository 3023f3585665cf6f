"""What a power cut does to each simulated world (`node_power_off`, which the lab's power
switch calls on the host once every process of the node is gone): DRBD's adverts leave
the shared network and the peers' kernels see the node vanish after DRBD's timers;
active LVs' loop devices are detached (and only those); domains and their guests are
gone. Each hook is idempotent and quiet for a node that never used its simulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from conftest import installed, need_tool
from xenha_lab.sim.drbd import store
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.records import Advert
from xenha_lab.sim.drbd.world import DrbdWorld, default_simbindir
from xenha_lab.sim.drbd.world import node_power_off as drbd_power_off
from xenha_lab.sim.lvm.world import loop_devices
from xenha_lab.sim.lvm.world import node_power_off as lvm_power_off
from xenha_lab.sim.xen.hosts import SimHosts
from xenha_lab.sim.xen.hosts import node_power_off as xen_power_off

NODES = {"alice": "10.96.0.1", "bob": "10.96.0.2"}
FAST = "protocol C; ping-int 2; ping-timeout 5; timeout 10; connect-int 2;"


def adverts(net: str) -> list[Advert]:
    base = os.path.join(net, "ep")
    found = []
    for name in os.listdir(base) if os.path.isdir(base) else []:
        if ".lock" in name or ".tmp" in name:
            continue
        found += [Advert.load(data) for data in (store.read(os.path.join(base, name)) or {}).values()]
    return found


def test_drbd_power_off_takes_the_node_off_the_network_and_its_peer_notices_in_drbds_time(tmp_path):
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("losetup") is None:
        pytest.skip("needs root, ip netns and loop devices")
    need_tool("drbdadm")
    installed(os.path.join(default_simbindir(), "xenha-sim-drbd-kernel"))
    world = DrbdWorld(tmp_path / "drbd", NODES, wired=True)
    try:
        world.write_config("r0", net=FAST, size_mib=16)
        for name in NODES:
            world.create_md(name, "r0")
            world.start_kernel(name)
            world.drbdadm(name, "up", "r0", check=True)
        world.drbdadm("alice", "primary", "--force", "r0", check=True)
        assert world.wait_sync("r0")
        assert {a.token for a in adverts(world.net)} == {"alice", "bob"}

        def alice_cstate():
            rec = Node(world.state_dir("alice"), world.disks_dir("alice"), world.net, "alice").load("r0")
            return rec.conns[1].cstate
        cut = time.monotonic()
        world.crash("bob")          # wire down, kernel killed, then node_power_off(net, node="bob")
        assert {a.token for a in adverts(world.net)} == {"alice"}
        time.sleep(0.3)
        assert alice_cstate() == "Connected"           # no news yet: nothing told alice's kernel
        assert world.wait_for(lambda: alice_cstate() == "Connecting", 6, interval=0.05)
        assert 1.5 < time.monotonic() - cut < 4.0      # ping-int 2 s + ping-timeout 0.5 s
        drbd_power_off(world.net, node="bob", ips={NODES["bob"]})           # again: nothing left to do
        assert {a.token for a in adverts(world.net)} == {"alice"}
        drbd_power_off(str(tmp_path / "never-used"), node="carol", ips={"10.96.0.3"})
        assert not os.path.exists(tmp_path / "never-used")
    finally:
        world.cleanup()


def test_lvm_power_off_detaches_the_nodes_active_lvs_and_nothing_else(tmp_path):
    from xenha_lab.sim.lvm.world import LvmWorld

    installed(os.path.join(default_simbindir(), "lvs"))
    need_tool("losetup")
    world = LvmWorld(tmp_path / "lvm")
    stranger = None
    try:
        world.add_node("mk1")
        vg = world.name("vg0")
        pv = world.add_pv("mk1-disk", "64M", ["mk1"])
        world.create_vg("mk1", vg, pv)
        for lv in ("one", "two", "three"):
            world.create_lv("mk1", vg, lv, "8M", activate=True)
        state = world.nodes["mk1"].state
        loops = {r["lv"]: r["dev"] for r in state.devices()}
        assert set(loops) == {"one", "two", "three"}
        # "three" was torn down behind the simulator's back and its loop number reused
        subprocess.run(["losetup", "-d", loops["three"]], check=True)
        other = tmp_path / "stranger.img"
        other.write_bytes(b"\0" * (1 << 20))
        stranger = subprocess.run(["losetup", "--show", loops["three"], str(other)], capture_output=True,
                                  text=True, check=True).stdout.strip()
        assert lvm_power_off(world.nodes["mk1"].state_dir, node="mk1") == 2
        bound = dict(loop_devices())
        assert loops["one"] not in bound and loops["two"] not in bound
        assert bound.get(stranger) == str(other)       # not the node's: left alone
        assert state.devices() == []
        assert lvm_power_off(world.nodes["mk1"].state_dir, node="mk1") == 0
        assert lvm_power_off(str(tmp_path / "never-used"), node="mk2") == 0
    finally:
        if stranger:
            subprocess.run(["losetup", "-d", stranger], capture_output=True)
        world.cleanup()


def test_xen_power_off_ends_the_hosts_domains(tmp_path):
    installed(os.path.join(default_simbindir(), "xl"))
    hosts = SimHosts(str(tmp_path / "xen"), ["mk1"])
    try:
        config = hosts.write_file("vm.cfg", 'name = "vm"\ntype = "pv"\nmemory = 64\nkernel = "/boot/vmlinuz"\n')
        assert hosts.xl("mk1", "create", config).returncode == 0
        record = hosts.host("mk1").find("vm")
        pid = record.pid
        assert record.process() is not None
        hosts.power_off("mk1")
        assert hosts.host("mk1").domains() == []
        assert _gone(pid)
        assert "vm" not in hosts.xl("mk1", "list").stdout
        xen_power_off(os.path.join(hosts.hosts_dir, "mk1", "xl"), node="mk1")         # again
        xen_power_off(str(tmp_path / "never-used"), node="mk2")
        assert not os.path.exists(tmp_path / "never-used")
    finally:
        hosts.remove()


def _gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                if handle.read().split(b") ", 1)[1][:1] in b"ZX":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False
