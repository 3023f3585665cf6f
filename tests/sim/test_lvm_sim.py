"""The simulated LVM world: real lvm2 metadata, simulated activation, dmsetup, snapshots.

Runs the installed launchers (make test) against loop-backed PVs; every test cleans up
its loop devices and /dev entries through LvmWorld.cleanup(), even on failure.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from conftest import installed, need_tool
from xenha_lab import harness

AGENT = "/usr/lib/ocf/resource.d/heartbeat/LVM-activate"
WARNING = "WARNING: Activation disabled"
DEFAULT_HEADER = "Name             Maj Min Stat Open Targ Event  UUID"


@pytest.fixture
def world(tmp_path):
    from xenha_lab.paths import default_simbindir
    from xenha_lab.sim.lvm.world import LvmWorld

    installed(os.path.join(default_simbindir(), "lvs"))
    installed(os.path.join(default_simbindir(), "dmsetup"))
    need_tool("losetup")
    if not os.path.exists("/usr/sbin/lvm") and not os.path.exists("/sbin/lvm"):
        pytest.fail("lvm2 is not installed (make test installs it)")
    w = LvmWorld(tmp_path / "lvm")
    try:
        yield w
    finally:
        w.cleanup()


def ok(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert WARNING not in proc.stderr
    return proc


def lv_rows(world, node, vg, fields="lv_name,lv_attr,lv_active", *extra):
    proc = ok(world.run(node, ["lvs", "-a", "--reportformat", "json", "-o", fields, *extra, vg]))
    return {r["lv_name"]: r for r in json.loads(proc.stdout)["report"][0]["lv"]}


def one_node(world, size="64M", lv_size="16M", lv="vm_shaolin"):
    world.add_node("mk1")
    vg = world.name("vg0")
    world.create_vg("mk1", vg, world.add_pv("mk1-disk", size, ["mk1"]))
    world.create_lv("mk1", vg, lv, lv_size)
    return vg


def test_activation_makes_a_real_block_device(world):
    vg = one_node(world)
    rows = lv_rows(world, "mk1", vg, "lv_name,lv_attr,lv_active,lv_device_open,lv_kernel_major")
    assert rows["vm_shaolin"] == {"lv_name": "vm_shaolin", "lv_attr": "-wi-------", "lv_active": "",
                                  "lv_device_open": "unknown", "lv_kernel_major": "-1"}
    activated = ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"]))
    assert activated.stdout == "" and activated.stderr == ""
    link = f"/dev/{vg}/vm_shaolin"
    node = f"/dev/mapper/{vg.replace('-', '--')}-vm_shaolin"
    assert os.path.islink(link) and os.readlink(link) == node
    assert stat.S_ISBLK(os.stat(node).st_mode)
    size = subprocess.run(["blockdev", "--getsize64", link], capture_output=True, text=True)
    assert size.stdout.strip() == str(16 << 20)
    rows = lv_rows(world, "mk1", vg, "lv_name,lv_attr,lv_active,lv_device_open,lv_kernel_major,lv_kernel_minor")
    assert rows["vm_shaolin"]["lv_attr"] == "-wi-a-----" and rows["vm_shaolin"]["lv_active"] == "active"
    assert rows["vm_shaolin"]["lv_device_open"] == ""
    assert rows["vm_shaolin"]["lv_kernel_major"] == str(os.major(os.stat(node).st_rdev))
    # writes land on the PV: extent 0 of the LV is at pe_start (1 MiB) of the disk
    world.write("mk1", vg, "vm_shaolin", 4096, b"shaolin")
    with open(world.pv("mk1-disk").path, "rb") as disk:
        disk.seek((1 << 20) + 4096)
        assert disk.read(7) == b"shaolin"
    ok(world.run("mk1", ["lvchange", "-an", f"{vg}/vm_shaolin"]))
    assert not os.path.lexists(link) and not os.path.lexists(node)
    assert lv_rows(world, "mk1", vg)["vm_shaolin"]["lv_attr"] == "-wi-------"
    ok(world.run("mk1", ["lvchange", "-aey", f"{vg}/vm_shaolin"]))
    assert world.read("mk1", vg, "vm_shaolin", 4096, 7) == b"shaolin"
    # lvcreate activates by default and zeroes the start of the new LV
    created = ok(world.run("mk1", ["lvcreate", "-L", "8M", "-n", "fresh", vg]))
    assert created.stdout == '  Logical volume "fresh" created.\n' and created.stderr == ""
    assert lv_rows(world, "mk1", vg)["fresh"]["lv_attr"] == "-wi-a-----"
    # vgchange -an / -ay report the real count
    down = ok(world.run("mk1", ["vgchange", "-an", vg]))
    assert down.stdout == f'  0 logical volume(s) in volume group "{vg}" now active\n'
    up = ok(world.run("mk1", ["vgchange", "-ay", vg]))
    assert up.stdout == f'  2 logical volume(s) in volume group "{vg}" now active\n'


def test_report_formats_are_rewritten(world):
    vg = one_node(world)
    world.create_lv("mk1", vg, "other", "8M")
    ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"]))
    table = ok(world.run("mk1", ["lvs", vg])).stdout.splitlines()
    assert table[0].split() == ["LV", "VG", "Attr", "LSize", "Pool", "Origin", "Data%", "Meta%", "Move",
                                "Log", "Cpy%Sync", "Convert"]
    assert table[1].split()[:3] == ["other", vg, "-wi-------"]
    assert table[2].split()[:3] == ["vm_shaolin", vg, "-wi-a-----"]
    assert len({len(line) for line in table}) == 1          # aligned columns
    sep = ok(world.run("mk1", ["lvs", "--noheadings", "--separator", "|", "-o",
                               "lv_name,lv_attr,lv_active,lv_tags", vg])).stdout
    assert sep == "  other|-wi-------||\n  vm_shaolin|-wi-a-----|active|\n"
    prefixed = ok(world.run("mk1", ["lvs", "--noheadings", "--nameprefixes", "-o", "lv_name,lv_active",
                                    f"{vg}/vm_shaolin"])).stdout
    assert prefixed.strip() == "LVM2_LV_NAME='vm_shaolin' LVM2_LV_ACTIVE='active'"
    # JSON with the report_command_log "log" key; the identifying fields the simulator
    # adds are not printed
    proc = ok(world.run("mk1", ["lvs", "--reportformat", "json", "--config", "log{report_command_log=1}",
                                "-o", "lv_name,lv_active,lv_active_locally,lv_permissions", vg]))
    data = json.loads(proc.stdout)
    assert set(data) == {"report", "log"}
    assert data["report"][0]["lv"] == [
        {"lv_name": "other", "lv_active": "", "lv_active_locally": "", "lv_permissions": "unknown"},
        {"lv_name": "vm_shaolin", "lv_active": "active", "lv_active_locally": "active locally",
         "lv_permissions": "writeable"}]
    binary = ok(world.run("mk1", ["lvs", "--binary", "--noheadings", "-o", "lv_device_open", f"{vg}/other"]))
    assert binary.stdout.strip() == "-1"
    # a selection on an activation field is evaluated on the real state
    selected = ok(world.run("mk1", ["lvs", "--noheadings", "-o", "lv_name", "-S", "lv_active=active", vg]))
    assert selected.stdout.split() == ["vm_shaolin"]
    display = ok(world.run("mk1", ["lvdisplay", f"{vg}/vm_shaolin"])).stdout
    assert "LV Status              available\n  # open                 0\n" in display
    assert "Block device           7:" in display
    scan = ok(world.run("mk1", ["lvscan"])).stdout
    assert f"  ACTIVE            '/dev/{vg}/vm_shaolin' [16.00 MiB] inherit" in scan
    assert f"  inactive          '/dev/{vg}/other' [8.00 MiB] inherit" in scan
    # not found: the real rc 5 and messages
    missing = world.run("mk1", ["lvs", "--reportformat", "json", f"{vg}/nosuchlv"])
    assert missing.returncode == 5 and f'Failed to find logical volume "{vg}/nosuchlv"' in missing.stderr
    assert json.loads(missing.stdout) == {"report": [{"lv": []}]}


def test_volume_list_filter_silently_skips(world):
    world.add_node("mk1", extra_config='activation {\n\tvolume_list = ["@pacemaker"]\n}')
    vg = world.name("vg0")
    world.create_vg("mk1", vg, world.add_pv("mk1-disk", "64M", ["mk1"]))
    world.create_lv("mk1", vg, "lv", "8M")
    skipped = ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/lv"]))
    assert skipped.stderr == "" and lv_rows(world, "mk1", vg)["lv"]["lv_active"] == ""
    # the tagging mode of ocf:heartbeat:LVM-activate: tag, then a user --config merged
    # with the simulator's forced activation=0 (--config may be given only once)
    ok(world.run("mk1", ["vgchange", "--addtag", "pacemaker", vg]))
    ok(world.run("mk1", ["lvchange", "-ay", "--config", 'activation{volume_list=["@pacemaker"]}', f"{vg}/lv"]))
    assert lv_rows(world, "mk1", vg)["lv"]["lv_active"] == "active"
    twice = world.run("mk1", ["lvs", "--config", "x", "--config", "y", vg])
    assert twice.returncode == 3 and "Option --config may not be repeated." in twice.stderr
    # lvcreate of an LV that the filter excludes (and must be wiped): lvm2 aborts
    world.set_config("mk1", 'activation {\n\tvolume_list = ["@other"]\n}')
    refused = world.run("mk1", ["lvcreate", "-L", "4M", "-n", "new", vg])
    assert refused.returncode == 5
    assert f'Volume "{vg}/new" is not active locally (volume_list activation filter?).' in refused.stderr
    assert "new" not in lv_rows(world, "mk1", vg)


def test_partial_lv_is_refused(world):
    world.add_node("mk1")
    vg = world.name("vg0")
    a = world.add_pv("a", "64M", ["mk1"])
    b = world.add_pv("b", "64M", ["mk1"])
    world.create_vg("mk1", vg, a, b)
    world.create_lv("mk1", vg, "on_a", "8M", pvs=[a])
    world.create_lv("mk1", vg, "on_b", "8M", pvs=[b])
    world.fail_pv("b")
    rows = lv_rows(world, "mk1", vg, "lv_name,lv_attr,lv_health_status")
    assert rows["on_b"]["lv_attr"] == "-wi-----p-" and rows["on_b"]["lv_health_status"] == "partial"
    refused = world.run("mk1", ["lvchange", "-ay", f"{vg}/on_b"])
    assert refused.returncode == 5
    assert (f"Refusing activation of partial LV {vg}/on_b.  Use '--activationmode partial' to override."
            in refused.stderr)
    assert "Couldn't find device with uuid" in refused.stderr
    whole = world.run("mk1", ["vgchange", "-ay", vg])
    assert whole.returncode == 5
    assert whole.stdout == f'  1 logical volume(s) in volume group "{vg}" now active\n'
    assert lv_rows(world, "mk1", vg)["on_a"]["lv_active"] == "active"
    world.restore_pv("b")
    ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/on_b"]))


def test_open_lv_is_not_deactivated(world):
    vg = one_node(world)
    ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"]))
    path = f"/dev/{vg}/vm_shaolin"
    world.hold("mk1", path, "drbd1")
    rows = lv_rows(world, "mk1", vg, "lv_name,lv_attr,lv_device_open")
    assert rows["vm_shaolin"]["lv_attr"] == "-wi-ao----" and rows["vm_shaolin"]["lv_device_open"] == "open"
    info = ok(world.run("mk1", ["dmsetup", "info", "-c", "--noheadings", "-o", "name,open"])).stdout
    assert info == f"{vg}-vm_shaolin:1\n"
    refused = world.run("mk1", ["lvchange", "-an", f"{vg}/vm_shaolin"])
    assert refused.returncode == 5
    assert refused.stderr == f"  Logical volume {vg}/vm_shaolin is used by another device.\n"
    vg_refused = world.run("mk1", ["vgchange", "-an", vg])
    assert vg_refused.returncode == 5
    assert f"Can't deactivate volume group \"{vg}\" with 1 open logical volume(s)" in vg_refused.stderr
    assert os.path.exists(path)
    # a plain opener (not a block device holder): the open count, without retries here
    world.release("mk1", path)
    world.hold("mk1", path, "qemu-guest")
    busy = world.run("mk1", ["lvchange", "-an", "--config", "activation/retry_deactivation=0",
                             f"{vg}/vm_shaolin"])
    assert busy.returncode == 5 and busy.stderr == f"  Logical volume {vg}/vm_shaolin in use.\n"
    world.release("mk1", path)
    ok(world.run("mk1", ["lvchange", "-an", f"{vg}/vm_shaolin"]))
    assert not os.path.exists(path)


def test_system_id_foreign_refusal_and_hand_over(world):
    world.add_node("node1")
    world.add_node("node2")
    vg = world.name("san")
    disk = world.add_pv("san", "64M", ["node1", "node2"])
    created = world.create_vg("node1", vg, disk)
    assert "successfully created with system ID node1" in created.stdout
    world.create_lv("node1", vg, "lv", "8M")
    ok(world.run("node1", ["lvchange", "-ay", f"{vg}/lv"]))
    world.write("node1", vg, "lv", 0, b"from node1")
    foreign = world.run("node2", ["lvchange", "-ay", f"{vg}/lv"])
    assert foreign.returncode == 5
    assert f"Cannot access VG {vg} with system ID node1 with local system ID node2." in foreign.stderr
    assert ok(world.run("node2", ["dmsetup", "info", "-c"])).stdout == "No devices found\n"
    assert world.report("node2", "vgs", "vg_name") == []
    assert world.report("node2", "vgs", "vg_name,vg_systemid", "--foreign") == [
        {"vg_name": vg, "vg_systemid": "node1"}]
    # node1 fails; node2 takes the VG over the way LVM-activate's system_id mode does
    world.crash("node1")
    ok(world.run("node2", ["vgchange", "-y", "--config", 'local/extra_system_ids=["node1"]',
                           "--systemid", "node2", vg]))
    ok(world.run("node2", ["lvchange", "-ay", f"{vg}/lv"]))
    assert world.read("node2", vg, "lv", 0, 10) == b"from node1"
    assert world.report("node1", "vgs", "vg_name") == []     # foreign VGs are ignored
    back = world.run("node1", ["lvs", f"{vg}/lv"])
    assert back.returncode == 5
    assert back.stderr == f"  Cannot access VG {vg} with system ID node2 with local system ID node1.\n"


def test_snapshot_create_report_and_remove(world):
    vg = one_node(world, size="128M")
    ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"]))
    world.write("mk1", vg, "vm_shaolin", 0, b"A" * 8192)
    made = ok(world.run("mk1", ["lvcreate", "-s", "-L", "8M", "-n", "snap", f"{vg}/vm_shaolin"]))
    assert made.stdout == '  Logical volume "snap" created.\n' and made.stderr == ""
    rows = lv_rows(world, "mk1", vg, "lv_name,lv_attr,origin,snap_percent,lv_active")
    assert rows["vm_shaolin"]["lv_attr"] == "owi-a-s---"
    assert rows["snap"]["lv_attr"] == "swi-a-s---" and rows["snap"]["origin"] == "vm_shaolin"
    fresh = float(rows["snap"]["snap_percent"])
    assert 0 < fresh < 1
    world.write("mk1", vg, "vm_shaolin", 0, b"B" * 65536)
    assert world.read("mk1", vg, "snap", 0, 4) == b"AAAA"
    used = float(lv_rows(world, "mk1", vg, "lv_name,snap_percent")["snap"]["snap_percent"])
    assert used > fresh
    status = ok(world.run("mk1", ["dmsetup", "status", f"{vg}-snap"])).stdout
    assert status.startswith("0 32768 snapshot ") and status.rstrip().endswith("/16384 16")
    # the real checks before the device-mapper refusal, and lvm2's own free-space text
    taken = world.run("mk1", ["lvcreate", "-s", "-L", "8M", "-n", "snap", f"{vg}/vm_shaolin"])
    assert taken.returncode == 5 and f'Logical Volume "snap" already exists in volume group "{vg}"' in taken.stderr
    world.create_lv("mk1", vg, "filler", "88M")
    full = world.run("mk1", ["lvcreate", "-s", "-L", "16M", "-n", "snap2", f"{vg}/vm_shaolin"])
    assert full.returncode == 5
    assert f'Volume group "{vg}" has insufficient free space' in full.stderr
    assert "device-mapper" not in full.stderr
    removed = ok(world.run("mk1", ["lvremove", "-f", f"{vg}/snap"]))
    assert removed.stdout == '  Logical volume "snap" successfully removed.\n'
    assert lv_rows(world, "mk1", vg)["vm_shaolin"]["lv_attr"] == "-wi-a-----"
    assert not os.path.exists(f"/dev/{vg}/snap")
    snapdir = world.pv("mk1-disk").path + ".xenha-snapshots"
    assert os.listdir(snapdir) == []


def test_snapshot_merge_now_and_deferred(world):
    vg = one_node(world, size="128M")
    lv = f"{vg}/vm_shaolin"
    ok(world.run("mk1", ["lvchange", "-ay", lv]))
    world.write("mk1", vg, "vm_shaolin", 0, b"before")
    ok(world.run("mk1", ["lvcreate", "-s", "-L", "8M", "-n", "snap", lv]))
    world.write("mk1", vg, "vm_shaolin", 0, b"after!")
    merged = ok(world.run("mk1", ["lvconvert", "--merge", f"{vg}/snap"]))
    assert merged.stdout == (f"  Merging of volume {vg}/snap started.\n"
                             f"  {vg}/vm_shaolin: Merged: 100.00%\n")
    assert world.read("mk1", vg, "vm_shaolin", 0, 6) == b"before"
    assert set(lv_rows(world, "mk1", vg)) == {"vm_shaolin"}
    # open origin (DRBD attached): deferred to the next activation, as lvm2 does
    ok(world.run("mk1", ["lvcreate", "-s", "-L", "8M", "-n", "snap", lv]))
    world.write("mk1", vg, "vm_shaolin", 0, b"later!")
    world.hold("mk1", f"/dev/{vg}/vm_shaolin", "drbd1")
    deferred = ok(world.run("mk1", ["lvconvert", "--merge", f"{vg}/snap"]))
    assert deferred.stdout == ("  Delaying merge since origin is open.\n"
                               f"  Merging of snapshot {vg}/snap will occur on next activation of {lv}.\n")
    rows = lv_rows(world, "mk1", vg, "lv_name,lv_attr,lv_merging")
    assert rows["vm_shaolin"]["lv_attr"] == "Owi-aos---" and rows["[snap]"]["lv_attr"].startswith("Swi-a-s")
    assert world.read("mk1", vg, "vm_shaolin", 0, 6) == b"later!"
    world.release("mk1", f"/dev/{vg}/vm_shaolin")
    ok(world.run("mk1", ["lvchange", "-an", lv]))
    ok(world.run("mk1", ["lvchange", "-ay", lv]))
    assert world.read("mk1", vg, "vm_shaolin", 0, 6) == b"before"
    assert set(lv_rows(world, "mk1", vg)) == {"vm_shaolin"}
    # an inactive origin defers too
    ok(world.run("mk1", ["lvcreate", "-s", "-L", "8M", "-n", "snap", lv]))
    world.write("mk1", vg, "vm_shaolin", 0, b"third!")
    ok(world.run("mk1", ["lvchange", "-an", lv]))
    inactive = ok(world.run("mk1", ["lvconvert", "--merge", f"{vg}/snap"]))
    assert inactive.stdout == f"  Merging of snapshot {vg}/snap will occur on next activation of {lv}.\n"
    ok(world.run("mk1", ["vgchange", "-ay", vg]))
    assert world.read("mk1", vg, "vm_shaolin", 0, 6) == b"before"


def test_dmsetup_formats(world):
    vg = one_node(world)
    world.create_lv("mk1", vg, "other", "8M")
    none = ok(world.run("mk1", ["dmsetup", "info", "-c"]))
    assert none.stdout == "No devices found\n"
    ok(world.run("mk1", ["vgchange", "-ay", vg]))
    dm = vg.replace("-", "--")
    nodes = {name: os.stat(f"/dev/mapper/{dm}-{name}").st_rdev for name in ("other", "vm_shaolin")}
    lines = ok(world.run("mk1", ["dmsetup", "info", "-c"])).stdout.splitlines()
    assert lines[0].split() == DEFAULT_HEADER.split()
    # Name is padded to its longest value (declared width 16), numbers right-aligned
    width = len(f"{dm}-vm_shaolin")
    assert lines[0].startswith("Name".ljust(width) + " Maj Min Stat Open Targ Event  UUID")
    assert len({len(line) for line in lines}) == 1
    uuid_rows = lv_rows(world, "mk1", vg, "lv_name,lv_uuid,vg_uuid")
    row = lines[2].split()
    vm = uuid_rows["vm_shaolin"]
    dm_uuid = "LVM-" + vm["vg_uuid"].replace("-", "") + vm["lv_uuid"].replace("-", "")
    assert row == [f"{dm}-vm_shaolin", str(os.major(nodes["vm_shaolin"])), str(os.minor(nodes["vm_shaolin"])),
                   "L--w", "0", "1", "0", dm_uuid]
    # what ocf:heartbeat:LVM-activate's monitor runs, and what xenha's agent runs
    colon = ok(world.run("mk1", ["dmsetup", "info", "--noheadings", "--noflush", "-c", "-S",
                                 f"vg_name={vg} && lv_name=vm_shaolin"])).stdout
    assert colon == "%s-vm_shaolin:%d:%d:L--w:0:1:0:%s\n" % (
        dm, os.major(nodes["vm_shaolin"]), os.minor(nodes["vm_shaolin"]), dm_uuid)
    piped = ok(world.run("mk1", ["dmsetup", "info", "-c", "--noheadings", "--noflush", "--separator", "|",
                                 "-o", "name,attr,open,segments,uuid", "-S", f"vg_name={vg}"])).stdout
    assert piped.splitlines() == [f"{dm}-other|L--w|0|1|" + "LVM-" + uuid_rows["other"]["vg_uuid"].replace("-", "")
                                  + uuid_rows["other"]["lv_uuid"].replace("-", ""),
                                  f"{dm}-vm_shaolin|L--w|0|1|{dm_uuid}"]
    nothing = ok(world.run("mk1", ["dmsetup", "info", "--noheadings", "-c", "-S", "vg_name=nosuchvg"]))
    assert nothing.stdout == ""
    long = ok(world.run("mk1", ["dmsetup", "info", f"{dm}-vm_shaolin"])).stdout
    assert long.splitlines()[:8] == [
        f"Name:              {dm}-vm_shaolin", "State:             ACTIVE", "Read Ahead:        256",
        "Tables present:    LIVE", "Open count:        0", "Event number:      0",
        "Major, minor:      %d, %d" % (os.major(nodes["vm_shaolin"]), os.minor(nodes["vm_shaolin"])),
        "Number of targets: 1"]
    assert long.splitlines()[8] == f"UUID: {dm_uuid}"
    ls = ok(world.run("mk1", ["dmsetup", "ls"])).stdout
    assert f"{dm}-vm_shaolin\t({os.major(nodes['vm_shaolin'])}:{os.minor(nodes['vm_shaolin'])})" in ls
    table = ok(world.run("mk1", ["dmsetup", "table", f"{dm}-vm_shaolin"])).stdout
    pv = os.stat(world.pv("mk1-disk").device).st_rdev
    assert table == "0 32768 linear %d:%d 2048\n" % (os.major(pv), os.minor(pv))
    missing = world.run("mk1", ["dmsetup", "info", "nosuch"])
    assert missing.returncode == 1 and "Device does not exist." in missing.stdout + missing.stderr


def run_agent(world, node, action, vg, lv, interval_ms=0, check_level=None):
    """resource-agents' LVM-activate on the simulated node, as pacemaker-execd runs it."""
    rsctmp = os.path.join(world.root, f"rsctmp-{node}")
    os.makedirs(rsctmp, exist_ok=True)
    return harness.run_agent(world.env(node), node, "LVM-activate", action, provider="heartbeat", instance="lvm",
                             rsctmp=rsctmp, params={"vgname": vg, "lvname": lv, "vg_access_mode": "system_id"},
                             interval_s=interval_ms / 1000, check_level=check_level, agent_path=AGENT)


def test_lvm_activate_monitor_follows_activation(world):
    installed(AGENT)
    vg = one_node(world)
    probe = run_agent(world, "mk1", "monitor", vg, "vm_shaolin")
    assert probe.rc == 7, probe.stderr
    recurring = run_agent(world, "mk1", "monitor", vg, "vm_shaolin", interval_ms=30000)
    assert recurring.rc == 1, recurring.stderr
    ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"]))
    assert run_agent(world, "mk1", "monitor", vg, "vm_shaolin").rc == 0
    deep = run_agent(world, "mk1", "monitor", vg, "vm_shaolin", interval_ms=30000, check_level=10)
    assert deep.rc == 0, deep.stderr
    ok(world.run("mk1", ["lvchange", "-an", f"{vg}/vm_shaolin"]))
    assert run_agent(world, "mk1", "monitor", vg, "vm_shaolin").rc == 7


def test_metadata_changes_follow_an_active_lv(world):
    vg = one_node(world)
    ok(world.run("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"]))
    world.write("mk1", vg, "vm_shaolin", 0, b"data")
    ok(world.run("mk1", ["lvrename", vg, "vm_shaolin", "renamed"]))
    assert os.listdir(f"/dev/{vg}") == ["renamed"]
    assert world.read("mk1", vg, "renamed", 0, 4) == b"data"
    ok(world.run("mk1", ["lvextend", "-L", "+8M", f"{vg}/renamed"]))
    size = subprocess.run(["blockdev", "--getsize64", f"/dev/{vg}/renamed"], capture_output=True, text=True)
    assert size.stdout.strip() == str(24 << 20)
    asked = world.run("mk1", ["lvremove", f"{vg}/renamed"])
    assert asked.returncode == 5
    assert asked.stdout.startswith(f"Do you really want to remove active logical volume {vg}/renamed? [y/n]: ")
    ok(world.run("mk1", ["lvremove", "-y", f"{vg}/renamed"]))
    assert ok(world.run("mk1", ["dmsetup", "ls"])).stdout == "No devices found\n"
    assert not os.path.exists(f"/dev/{vg}")
