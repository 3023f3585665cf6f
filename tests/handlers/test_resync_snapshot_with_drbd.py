"""The storage stack of one VM on two simulated nodes: DRBD on LVM logical volumes, with
the resync-snapshot handlers wired in as xenha renders them. The simulated DRBD kernel
runs before-resync-target on the node that becomes SyncTarget (and waits for it) and
after-resync-target when the resync ended; DRBD holds its backing LV open."""

import os
import time

import pytest

from conftest import installed, need_tool
from xenha.ocf import codes
from xenha_lab.harness import run_agent
from xenha_lab.paths import default_agent

NODES = {"mk1": "10.99.0.1", "mk2": "10.99.0.2"}


EIGHT_FOUR = {"DRBD_DRIVER_VERSION_OVERRIDE": "8.4.11"}   # drbd-utils' override: drbdadm-84, drbdsetup-84


@pytest.fixture
def stack(tmp_path, request):
    """DRBD 9; `@pytest.mark.parametrize("stack", ["8.4"], indirect=True)`: DRBD 8.4."""
    drbd84 = getattr(request, "param", "9") == "8.4"
    adm_env = EIGHT_FOUR if drbd84 else None
    need_tool("losetup")
    from xenha_lab.sim.drbd.world import DrbdWorld
    from xenha_lab.sim.lvm.world import LvmWorld
    handler = installed(f"{os.environ.get('XENHA_SBINDIR', '/usr/local/sbin')}/xenha-resync-snapshot")
    lvm = LvmWorld(tmp_path / "lvm")
    drbd = DrbdWorld(tmp_path / "drbd", NODES, resync_rate_kib=16 * 1024)
    try:
        vgs = {}
        for node in NODES:
            lvm.add_node(node)
            vgs[node] = lvm.name(f"vg_{node}")     # host-local VGs (distinct names: one /dev here)
            lvm.create_vg(node, vgs[node], lvm.add_pv(f"{node}-disk", "256M", [node]))
            lvm.create_lv(node, vgs[node], "vm_r0", "64M", activate=True)
        drbd.write_config("r0", disks={n: f"/dev/{vgs[n]}/vm_r0" for n in NODES},
                          handlers=f'before-resync-target "{handler} before --size 20%"; '
                                   f'after-resync-target "{handler} after";', drbd84=drbd84)
        for node in NODES:
            lvm_env = {k: v for k, v in lvm.env(node).items() if k != "PATH"}
            drbd.use_holders(node, lvm_env["XENHA_SIM_HOLDERS"])
            drbd.set_usermode_helper(node, drbd.configs["r0"], extra_env=lvm_env)
            drbd.drbdadm(node, "create-md", "--force", "r0", check=True, env=adm_env)
        yield lvm, drbd, vgs
    finally:
        drbd.cleanup()
        lvm.cleanup()


def snapshot_of(lvm, node, vg):
    rows = lvm.report(node, "lvs", "lv_name,origin", vg)
    return [row["lv_name"] for row in rows if row["origin"] == "vm_r0"]


def test_the_sync_target_is_protected_by_a_snapshot_until_the_resync_ended(stack):
    lvm, drbd, vgs = stack
    for node in NODES:
        drbd.drbdadm(node, "up", "r0", check=True)
    drbd.drbdadm("mk1", "primary", "--force", "r0", check=True)   # initial full sync mk1 -> mk2
    assert drbd.wait_for(lambda: "SyncTarget" in str(drbd.events("mk2", "r0")), timeout=10)
    assert snapshot_of(lvm, "mk2", vgs["mk2"]) == ["vm_r0-before-resync"]
    assert snapshot_of(lvm, "mk1", vgs["mk1"]) == [], "the sync source needs no snapshot"
    assert drbd.wait_sync("r0", timeout=60)
    assert drbd.wait_for(lambda: snapshot_of(lvm, "mk2", vgs["mk2"]) == [], timeout=20)
    assert drbd.wait_for(lambda: any("helper:after-resync-target status:0" in line
                                     for line in drbd.helper_log("mk2")), timeout=10), drbd.helper_log("mk2")
    assert any("helper:before-resync-target status:0" in line for line in drbd.helper_log("mk2"))


@pytest.mark.parametrize("stack", ["8.4"], indirect=True)
def test_on_drbd_84_the_snapshot_goes_once_the_target_is_up_to_date(stack):
    # the real 8.4 node: `drbdsetup status --json` does not exist there (exit 20), and the
    # after handler, asking that, kept every snapshot ("did not end UpToDate")
    lvm, drbd, vgs = stack
    eight_four = EIGHT_FOUR
    for node in NODES:
        drbd.drbdadm(node, "up", "r0", check=True, env=eight_four)
    drbd.drbdadm("mk1", "primary", "--force", "r0", check=True, env=eight_four)
    # a query lets the simulated kernel go on (no kernel process here): mk2 becomes SyncTarget
    assert drbd.wait_for(lambda: "SyncTarget" in drbd.drbdadm("mk2", "cstate", "r0", env=eight_four).stdout, timeout=10)
    assert snapshot_of(lvm, "mk2", vgs["mk2"]) == ["vm_r0-before-resync"]
    assert drbd.wait_for(lambda: drbd.drbdadm("mk2", "dstate", "r0", env=eight_four).stdout
                         == "UpToDate/UpToDate\n", timeout=60)
    assert drbd.wait_for(lambda: any("helper:after-resync-target status:0" in line
                                     for line in drbd.helper_log("mk2")), timeout=20), drbd.helper_log("mk2")
    assert drbd.wait_for(lambda: snapshot_of(lvm, "mk2", vgs["mk2"]) == [], timeout=20)


def test_a_refusing_handler_drops_the_connection_and_the_target_is_untouched(stack, tmp_path):
    lvm, drbd, vgs = stack
    handler = f"{os.environ.get('XENHA_SBINDIR', '/usr/local/sbin')}/xenha-resync-snapshot"
    drbd.write_config("r0", disks={n: f"/dev/{vgs[n]}/vm_r0" for n in NODES},
                      handlers=f'before-resync-target "{handler} before --size 10G --require";')
    for node in NODES:
        lvm_env = {k: v for k, v in lvm.env(node).items() if k != "PATH"}
        drbd.set_usermode_helper(node, drbd.configs["r0"], extra_env=lvm_env)
        drbd.drbdadm(node, "up", "r0", check=True)
    drbd.drbdadm("mk1", "primary", "--force", "r0", check=True)
    assert drbd.wait_for(lambda: [c["connection"] for c in drbd.events("mk2", "r0").get("connection", [])]
                         == ["StandAlone"], timeout=15)
    assert "SyncTarget" not in str(drbd.events("mk2", "r0"))
    assert snapshot_of(lvm, "mk2", vgs["mk2"]) == []
    assert any("before-resync-target status:1" in line for line in drbd.helper_log("mk2"))


def test_an_lv_under_drbd_is_open_and_the_lvm_agent_will_not_pull_it_away(stack):
    lvm, drbd, vgs = stack
    agent = installed(default_agent("lvm-volume"))
    drbd.drbdadm("mk1", "up", "r0", check=True)
    row = lvm.report("mk1", "lvs", "lv_name,lv_attr", f"{vgs['mk1']}/vm_r0")[0]
    assert row["lv_attr"][4:6] == "ao", row

    def stop():
        return run_agent(lvm.env("mk1"), "mk1", "lvm-volume", "stop", instance="lv_r0", rsctmp=f"{lvm.root}/rsctmp",
                         params={"vg": vgs["mk1"], "lvs": "vm_r0"}, timeout_s=30, agent_path=agent)

    refused = stop()
    assert refused.rc == codes.ERR_GENERIC and "still open" in refused.exit_reason, refused
    drbd.drbdadm("mk1", "down", "r0", check=True)
    time.sleep(0.1)
    assert stop().rc == codes.SUCCESS
