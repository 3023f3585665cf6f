"""The simulators against what the real kernel said: outputs captured in the real-kernel
tier (tests/sim/real_samples/, each file says where and how) replayed on the simulators
in the same state. Every difference the real tier found is pinned here: the simulator
now answers as the real Xen 4.17.5, DRBD 8.4.11 module (drbd-utils 9.22) and lvm2 did.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from conftest import installed
from test_drbdsetup_sim import world  # noqa: F401 - a fixture (taken below: F811)
from xenha_lab.sim.drbd.world import default_simbindir

REAL = pathlib.Path(__file__).with_name("real_samples")
EIGHT_FOUR = {"DRBD_DRIVER_VERSION_OVERRIDE": "8.4.11"}


def real(name: str) -> dict:
    """{command: (stdout, stderr, rc)} of a sample file: `$ command`, stdout, an optional
    `[stderr]` line and stderr, `[rc=N]`."""
    blocks, command, out, err, target = {}, None, [], [], None
    for line in (REAL / name).read_text(encoding="utf-8").splitlines():
        if command is None:
            if line.startswith("$ "):
                command, out, err = line[2:], [], []
                target = out
            continue
        if line == "[stderr]":
            target = err
        elif re.fullmatch(r"\[rc=-?\d+\]", line):
            blocks[command] = ("".join(f"{x}\n" for x in out), "".join(f"{x}\n" for x in err), int(line[4:-1]))
            command = None
        else:
            target.append(line)
    return blocks


# --- xl (Xen 4.17.5) -----------------------------------------------------------------------------------------------

XL = real("xen417_xl.txt")


@pytest.mark.parametrize("command", [c for c in XL if "nosuchvm" in c])
def test_xl_refuses_an_unknown_domain_as_real_xl(sim_hosts, command):
    stdout, stderr, rc = XL[command]
    result = sim_hosts.xl("mk1", *command.split()[1:])
    assert (result.stdout, result.stderr, result.returncode) == (stdout, stderr, rc)


def test_xl_list_of_a_domain_elsewhere_is_the_same_refusal(sim_hosts):
    # guest1 ran on n1; n2 answered as for any unknown name
    assert XL["xl list guest1"][1:] == ("guest1 is an invalid domain identifier (rc=-6)\n", 1)
    result = sim_hosts.xl("mk2", "list", "guest1")
    assert (result.stderr, result.returncode) == XL["xl list guest1"][1:]


def test_xl_list_layout_is_real_xls(sim_hosts, shaolin_config):
    header, *rows = XL["xl list"][0].splitlines()
    assert sim_hosts.xl("mk1", "list").stdout.splitlines()[0] == header
    assert sim_hosts.xl("mk1", "create", shaolin_config).returncode == 0
    sim_rows = sim_hosts.xl("mk1", "list").stdout.splitlines()[1:]
    layout = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([-rbpscd]{6})\s+(\d+\.\d)$")
    for row in rows + sim_rows:
        assert layout.match(row), row
    for real_row, sim_row in zip(rows, sim_rows):       # the same columns (printf widths)
        assert [m.end() for m in re.finditer(r"\S+", real_row)][1:4] == \
               [m.end() for m in re.finditer(r"\S+", sim_row)][1:4]


def test_xl_info_has_real_xls_keys_in_its_order(sim_hosts):
    def keys(text):
        return [line.split(":", 1)[0].rstrip() for line in text.splitlines()]
    real_text = XL["xl info"][0]
    sim_text = sim_hosts.xl("mk1", "info").stdout
    assert keys(sim_text) == keys(real_text)
    caps = {line.split(":", 1)[1] for line in (real_text + sim_text).splitlines() if line.startswith("virt_caps")}
    assert all(cap.startswith(" pv") for cap in caps), caps    # one space after the colon, as printf has it


# --- DRBD 8.4.11 behind drbd-utils 9.22 --------------------------------------------------------------------------

DRBD = real("drbd84_kernel.txt")


@pytest.fixture
def dual_primary_84(world, tmp_path):  # noqa: F811 - the fixture
    """vm_guest1 (minor 1) as in the real tier when the sample was taken: DRBD 8.4,
    Connected, Primary/Primary, UpToDate/UpToDate."""
    installed(os.path.join(default_simbindir(), "drbdsetup-84"))
    disks = {n: world.make_disk(n, 16) for n in world.names}
    conf = tmp_path / "vm_guest1.res"
    conf.write_text("global { usage-count no; }\nresource vm_guest1 {\n"
                    "    net { allow-two-primaries yes; protocol C; }\n    disk { fencing resource-and-stonith; }\n"
                    + "".join(f"    on {n} {{ device /dev/drbd1 minor 1; disk {disks[n]}; "
                              f"address {world.nodes[n]}:7789; meta-disk internal; }}\n" for n in world.names)
                    + "}\n")
    for name in world.names:
        world.set_usermode_helper(name, str(conf))
    adm = lambda name, *args: world.drbdadm(name, *args, config=str(conf), env=EIGHT_FOUR)  # noqa: E731
    for name in world.names:
        assert adm(name, "create-md", "--force", "vm_guest1").returncode == 0
        assert adm(name, "up", "vm_guest1").returncode == 0
    assert adm("alice", "primary", "--force", "vm_guest1").returncode == 0
    assert world.wait_for(lambda: adm("bob", "dstate", "vm_guest1").stdout == "UpToDate/UpToDate\n", 10)
    assert adm("bob", "primary", "vm_guest1").returncode == 0
    world.adm = adm
    return world


def sim_84(drbd_world, command: str):
    """The sample's command on the simulated node (drbdsetup-84 from PATH, as drbdadm-84
    runs it; drbdsetup with the 8.4 module: the override)."""
    argv = command.replace("/lib/drbd/drbdsetup-84", "drbdsetup-84").split()
    if argv[0] == "drbdadm":
        return drbd_world.adm("alice", *argv[1:])
    return drbd_world.run("alice", argv, env=EIGHT_FOUR)


@pytest.mark.parametrize("command", [
    "drbdadm role vm_guest1", "drbdadm cstate vm_guest1", "drbdadm dstate vm_guest1",
    "/lib/drbd/drbdsetup-84 role 1", "/lib/drbd/drbdsetup-84 cstate 1", "/lib/drbd/drbdsetup-84 dstate 1",
    # a minor the kernel does not have: the kernel's 127 with its additional info, for every query
    "/lib/drbd/drbdsetup-84 role 9", "/lib/drbd/drbdsetup-84 cstate 9", "/lib/drbd/drbdsetup-84 dstate 9",
    "/lib/drbd/drbdsetup-84 primary 9",
    # down of an unknown resource: nothing said, success
    "/lib/drbd/drbdsetup-84 down nosuchres", "drbdsetup down nosuchres",
    # events2 and status, as 8.4's drbdsetup emulates them
    "/lib/drbd/drbdsetup-84 events2 --now vm_guest1", "/lib/drbd/drbdsetup-84 events2 --now nosuchres",
    "drbdsetup events2 --now vm_guest1", "drbdsetup events2 --now nosuchres", "drbdsetup status vm_guest1",
    # what 8.4's drbdsetup does not know: its usage, exit 20
    "drbdsetup --version", "drbdsetup status --json vm_guest1",
])
def test_drbd84_answers_as_the_real_module(dual_primary_84, command):
    result = sim_84(dual_primary_84, command)
    # drbdadm's own notice that the simulated node is chosen by __DRBD_NODE__ is not the kernel's
    stderr = re.sub(r"\n   found __DRBD_NODE__ in environment\n   PRETENDING that I am >>\w+<<\n\n", "",
                    result.stderr)
    assert (result.stdout, stderr, result.returncode) == DRBD[command]


# --- LVM and device-mapper -----------------------------------------------------------------------------------------

LVM = real("lvm_dm.txt")


def test_drbd_holds_its_backing_lv_open_twice_as_the_real_kernel(tmp_path):
    # DRBD with internal meta-data opens the backing device for the data and for the
    # meta-data: the real device-mapper counted 2 opens of the LV under DRBD
    from conftest import need_tool
    from xenha_lab.sim.drbd.world import DrbdWorld
    from xenha_lab.sim.lvm.world import LvmWorld

    need_tool("losetup")
    real_info = LVM["dmsetup info vg0-vm_guest1"][0]
    assert "Open count:        2\n" in real_info
    lvm = LvmWorld(tmp_path / "lvm")
    drbd = DrbdWorld(tmp_path / "drbd", {"alice": "10.99.0.1", "bob": "10.99.0.2"})
    try:
        lvm.add_node("alice")
        vg = lvm.name("vg0")
        lvm.create_vg("alice", vg, lvm.add_pv("alice-disk", "64M", ["alice"]))
        lvm.create_lv("alice", vg, "vm_guest1", "16M", activate=True)
        drbd.write_config("r0", disks={"alice": f"/dev/{vg}/vm_guest1", "bob": drbd.make_disk("bob", 16)})
        drbd.use_holders("alice", lvm.env("alice")["XENHA_SIM_HOLDERS"])
        drbd.create_md("alice", "r0")
        drbd.drbdadm("alice", "up", "r0", check=True)
        dm = vg.replace("-", "--") + "-vm_guest1"
        info = lvm.run("alice", ["dmsetup", "info", dm])
        assert info.returncode == 0 and "Open count:        2\n" in info.stdout, info.stdout
        refused = lvm.run("alice", ["lvchange", "-an", f"{vg}/vm_guest1"])
        assert (refused.stderr, refused.returncode) == \
               (LVM["lvchange -an vg0/vm_guest1"][1].replace("vg0/", f"{vg}/"), LVM["lvchange -an vg0/vm_guest1"][2])
    finally:
        drbd.cleanup()
        lvm.cleanup()
