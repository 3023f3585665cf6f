"""xenha-resync-snapshot, run the way DRBD runs its before/after-resync-target handlers
(environment DRBD_RESOURCE, DRBD_VOLUME, DRBD_MINOR, DRBD_LL_DISK), on real lvm2
metadata with simulated snapshots, and asking the simulated DRBD for the resync outcome.

These tests call the handler directly, the way DRBD does, to reach every branch;
test_resync_snapshot_with_drbd.py has the simulated DRBD kernel call it during a resync.
"""

import os
import subprocess

import pytest

from conftest import installed, need_tool

NODES = {"mk1": "10.99.0.1", "mk2": "10.99.0.2"}


@pytest.fixture
def world(tmp_path):
    need_tool("losetup")
    from xenha_lab.sim.drbd.world import DrbdWorld
    from xenha_lab.sim.lvm.world import LvmWorld
    lvm = LvmWorld(tmp_path / "lvm")
    drbd = DrbdWorld(tmp_path / "drbd", NODES, resync_rate_kib=64 * 1024)
    try:
        lvm.add_node("mk1")
        vg = lvm.name("vg0")
        lvm.create_vg("mk1", vg, lvm.add_pv("mk1-disk", "512M", ["mk1"]))
        lvm.create_lv("mk1", vg, "vm_shaolin", "64M", activate=True)
        drbd.write_config("r0")
        for node in NODES:
            drbd.create_md(node, "r0")
        yield lvm, drbd, vg
    finally:
        drbd.cleanup()
        lvm.cleanup()


def handler(lvm, drbd, vg, *args, env_extra=None, popen=None):
    sbindir = os.environ.get("XENHA_SBINDIR", "/usr/local/sbin")
    program = installed(f"{sbindir}/xenha-resync-snapshot")
    env = dict(drbd.env("mk1"))
    env.update(lvm.env("mk1"))
    env.update({"DRBD_RESOURCE": "r0", "DRBD_VOLUME": "0", "DRBD_MINOR": "1",
                "DRBD_LL_DISK": f"/dev/{vg}/vm_shaolin"})
    env.update(env_extra or {})
    if popen:   # its own descriptors (capture_output would open 1 and 2)
        return subprocess.run([program, *args], env=env, timeout=120, **popen)
    return subprocess.run([program, *args], env=env, capture_output=True, text=True, timeout=120)


def snapshots(lvm, vg):
    return {row["lv_name"]: row for row in lvm.report("mk1", "lvs", "lv_name,lv_attr,origin,lv_size", vg)
            if row["origin"]}


def test_before_takes_a_snapshot_and_keeps_an_older_one(world):
    lvm, drbd, vg = world
    lvm.write("mk1", vg, "vm_shaolin", 0, b"before the resync")
    result = handler(lvm, drbd, vg, "before", "--size", "20%")
    assert result.returncode == 0, result.stderr
    snap = snapshots(lvm, vg)["vm_shaolin-before-resync"]
    assert snap["origin"] == "vm_shaolin" and snap["lv_attr"][0] == "s"
    assert "snapshot" in result.stderr and "taken before the resync of r0/0" in result.stderr
    again = handler(lvm, drbd, vg, "before")
    assert again.returncode == 0 and "keeping" in again.stderr
    assert list(snapshots(lvm, vg)) == ["vm_shaolin-before-resync"]


def test_with_no_file_descriptor_open_as_the_kernel_runs_it(world, tmp_path):
    # DRBD 8.4 on a real kernel: the handler died writing to its closed stderr (exit 1)
    # and the kernel dropped the connection at every resync start
    lvm, drbd, vg = world
    closed = {"preexec_fn": lambda: os.closerange(0, 3)}
    result = handler(lvm, drbd, vg, "before", "--size", "20%", popen=closed)
    assert result.returncode == 0
    assert "vm_shaolin-before-resync" in snapshots(lvm, vg)
    drbd.drbdadm("mk1", "up", "r0", check=True)       # after: asks DRBD, which says not UpToDate
    unfence = tmp_path / "unfence"
    unfence.write_text("#!/bin/sh\necho 'says something' >&2\nexit 4\n")
    unfence.chmod(0o755)
    result = handler(lvm, drbd, vg, "after", "--then", str(unfence), popen=closed)
    assert result.returncode == 4                   # the unfence script's status, as DRBD needs it
    assert "vm_shaolin-before-resync" in snapshots(lvm, vg)


def test_no_room_goes_ahead_unprotected_or_refuses_with_require(world):
    lvm, drbd, vg = world
    result = handler(lvm, drbd, vg, "before", "--size", "2G")
    assert result.returncode == 0 and "UNPROTECTED" in result.stderr and "MiB free" in result.stderr
    refused = handler(lvm, drbd, vg, "before", "--size", "2G", "--require")
    assert refused.returncode == 1 and "refusing the resync" in refused.stderr
    assert snapshots(lvm, vg) == {}


def test_backing_device_that_is_not_an_lv(world):
    lvm, drbd, vg = world
    result = handler(lvm, drbd, vg, "before", env_extra={"DRBD_LL_DISK": drbd.backing("mk1", "r0")})
    assert result.returncode == 0 and "not an LVM logical volume" in result.stderr


def test_after_keeps_the_snapshot_unless_up_to_date(world):
    lvm, drbd, vg = world
    assert handler(lvm, drbd, vg, "before").returncode == 0
    drbd.drbdadm("mk1", "up", "r0", check=True)      # fresh: Inconsistent
    kept = handler(lvm, drbd, vg, "after")
    assert kept.returncode == 0 and "keeping" in kept.stderr and "rollback r0" in kept.stderr
    assert "vm_shaolin-before-resync" in snapshots(lvm, vg)
    drbd.drbdadm("mk2", "up", "r0", check=True)
    drbd.drbdadm("mk1", "primary", "--force", "r0", check=True)
    assert drbd.wait_sync("r0")
    done = handler(lvm, drbd, vg, "after")
    assert done.returncode == 0 and "removed" in done.stderr
    assert snapshots(lvm, vg) == {}


def test_rollback_restores_the_data_from_before_the_resync(world, tmp_path):
    lvm, drbd, vg = world
    lvm.write("mk1", vg, "vm_shaolin", 4096, b"old good data")
    assert handler(lvm, drbd, vg, "before").returncode == 0
    lvm.write("mk1", vg, "vm_shaolin", 4096, b"new bad data!")
    conf = tmp_path / "lv.conf"
    conf.write_text(f"resource r0 {{ on mk1 {{ device /dev/drbd1 minor 1; disk /dev/{vg}/vm_shaolin; "
                    "meta-disk internal; address ipv4 10.99.0.1:7789; node-id 0; } "
                    "on mk2 { device /dev/drbd1 minor 1; disk /dev/x; meta-disk internal; "
                    "address ipv4 10.99.0.2:7789; node-id 1; } }\n")
    without_env = {"DRBD_LL_DISK": "", "__DRBD_NODE__": "mk1"}
    refused = handler(lvm, drbd, vg, "rollback", "r0", "--drbd-conf", str(conf), env_extra=without_env)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    drbd.drbdadm("mk1", "up", "r0", check=True)
    busy = handler(lvm, drbd, vg, "rollback", "r0", "--drbd-conf", str(conf), "--yes", env_extra=without_env)
    assert busy.returncode == 1 and "take it down first" in busy.stderr
    drbd.drbdadm("mk1", "down", "r0", check=True)
    lvm.check("mk1", ["lvchange", "-an", f"{vg}/vm_shaolin"])
    done = handler(lvm, drbd, vg, "rollback", "r0", "--drbd-conf", str(conf), "--yes", env_extra=without_env)
    assert done.returncode == 0, done.stderr
    lvm.check("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"])
    assert lvm.read("mk1", vg, "vm_shaolin", 4096, 13) == b"old good data"
    assert snapshots(lvm, vg) == {}


def test_outside_drbd_it_says_so(world):
    lvm, drbd, vg = world
    result = handler(lvm, drbd, vg, "before", env_extra={"DRBD_RESOURCE": ""})
    assert result.returncode == 1 and "DRBD_RESOURCE is not set" in result.stderr
