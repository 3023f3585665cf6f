"""ocf:xenha:lvm-volume against real lvm2 metadata with simulated activation."""

import pytest

from conftest import installed, need_tool
from xenha.ocf import codes
from xenha_lab.harness import run_agent
from xenha_lab.paths import default_agent


class Lab:
    def __init__(self, world):
        self.world = world
        self.agent = installed(default_agent("lvm-volume"))

    def call(self, node, action, params, interval=None, check_level=None, timeout=60, extra=None,
             with_stderr=False):
        result = run_agent(self.world.env(node), node, "lvm-volume", action, instance="lv_shaolin",
                           rsctmp=f"{self.world.root}/rsctmp-{node}", params=params, timeout_s=timeout,
                           interval_s=interval, check_level=check_level, extra=extra, agent_path=self.agent)
        if with_stderr:
            return result.rc, result.exit_reason, result.stderr
        return result.rc, result.exit_reason

    def active(self, node, vg, lv):
        rows = self.world.report(node, "lvs", "lv_name,lv_attr,lv_active", f"{vg}/{lv}")
        return rows[0]["lv_attr"][4] == "a"


@pytest.fixture
def lab(tmp_path):
    need_tool("losetup")
    from xenha_lab.sim.lvm.world import LvmWorld
    world = LvmWorld(tmp_path / "lvm")
    try:
        world.add_node("mk1")
        yield Lab(world)
    finally:
        world.cleanup()


@pytest.fixture
def vg(lab):
    """A host-local VG with the VM's LV, as DRBD's backing volume."""
    name = lab.world.name("vg0")
    lab.world.create_vg("mk1", name, lab.world.add_pv("mk1-disk", "1G", ["mk1"]))
    lab.world.create_lv("mk1", name, "vm_shaolin", "64M")
    lab.world.create_lv("mk1", name, "other", "32M")
    return name


def test_lifecycle(lab, vg):
    params = {"vg": vg, "lvs": "vm_shaolin"}
    assert lab.call("mk1", "monitor", params) == (codes.NOT_RUNNING, None)
    assert lab.call("mk1", "start", params)[0] == codes.SUCCESS
    assert lab.active("mk1", vg, "vm_shaolin") and not lab.active("mk1", vg, "other")
    assert lab.call("mk1", "monitor", params, interval=10)[0] == codes.SUCCESS
    assert lab.call("mk1", "monitor", params)[0] == codes.SUCCESS
    assert lab.call("mk1", "monitor", params, interval=60, check_level=10)[0] == codes.SUCCESS
    assert lab.call("mk1", "start", params)[0] == codes.SUCCESS, "start is idempotent"
    assert lab.call("mk1", "stop", params)[0] == codes.SUCCESS
    assert not lab.active("mk1", vg, "vm_shaolin")
    assert lab.call("mk1", "monitor", params, interval=10)[0] == codes.NOT_RUNNING
    assert lab.call("mk1", "stop", params)[0] == codes.SUCCESS, "stop is idempotent"


def test_whole_volume_group(lab, vg):
    params = {"vg": vg}
    assert lab.call("mk1", "start", params)[0] == codes.SUCCESS
    assert lab.active("mk1", vg, "vm_shaolin") and lab.active("mk1", vg, "other")
    assert lab.call("mk1", "monitor", params, interval=10)[0] == codes.SUCCESS
    lab.world.check("mk1", ["lvchange", "-an", f"{vg}/other"])
    code, reason = lab.call("mk1", "monitor", params, interval=10)
    assert code == codes.ERR_GENERIC and "inactive: other" in reason
    assert lab.call("mk1", "stop", params)[0] == codes.SUCCESS


def test_stop_refuses_an_open_lv(lab, vg):
    params = {"vg": vg, "lvs": "vm_shaolin"}
    assert lab.call("mk1", "start", params)[0] == codes.SUCCESS
    lab.world.hold("mk1", f"/dev/{vg}/vm_shaolin", "drbd1")
    code, reason = lab.call("mk1", "stop", params)
    assert code == codes.ERR_GENERIC and "still open" in reason and "vm_shaolin" in reason
    assert lab.active("mk1", vg, "vm_shaolin")
    lab.world.release("mk1", f"/dev/{vg}/vm_shaolin")
    assert lab.call("mk1", "stop", params)[0] == codes.SUCCESS


def test_activation_filtered_by_volume_list_is_an_error(lab, vg):
    lab.world.set_config("mk1", 'activation { volume_list = ["@somebody_else"] }')
    code, reason = lab.call("mk1", "start", {"vg": vg, "lvs": "vm_shaolin"})
    assert code == codes.ERR_GENERIC and "stayed inactive" in reason and "volume_list" in reason


def test_missing_volume_group_and_lv(lab, vg):
    code, reason = lab.call("mk1", "start", {"vg": "nosuchvg", "lvs": "x"})
    assert code == codes.ERR_INSTALLED and "does not exist on this node" in reason
    assert lab.call("mk1", "monitor", {"vg": "nosuchvg", "lvs": "x"})[0] == codes.NOT_RUNNING
    code, reason = lab.call("mk1", "start", {"vg": vg, "lvs": "vm_shaolin nosuchlv"})
    assert code == codes.ERR_INSTALLED and "nosuchlv not found" in reason
    assert lab.call("mk1", "monitor", {"vg": vg, "lvs": "vm_shaolin"})[0] == codes.NOT_RUNNING


def test_missing_pv_is_degraded_at_depth_10(lab):
    world = lab.world
    name = world.name("vgm")
    world.create_vg("mk1", name, world.add_pv("pv-a", "256M", ["mk1"]), world.add_pv("pv-b", "256M", ["mk1"]))
    world.create_lv("mk1", name, "spread", "384M")   # needs both PVs... one segment per PV
    world.create_lv("mk1", name, "small", "32M")
    params = {"vg": name, "lvs": "small"}
    assert lab.call("mk1", "start", params)[0] == codes.SUCCESS
    world.fail_pv("pv-b")
    assert lab.call("mk1", "monitor", params, interval=10)[0] == codes.SUCCESS, "depth 0 asks device-mapper only"
    code, reason = lab.call("mk1", "monitor", params, interval=60, check_level=10)
    assert code == codes.DEGRADED and "missing 1 PV" in reason
    world.restore_pv("pv-b")
    assert lab.call("mk1", "monitor", params, interval=60, check_level=10)[0] == codes.SUCCESS
    assert lab.call("mk1", "stop", params)[0] == codes.SUCCESS


def test_partial_lv_is_refused_unless_asked(lab):
    world = lab.world
    name = world.name("vgp")
    world.create_vg("mk1", name, world.add_pv("pv-c", "256M", ["mk1"]), world.add_pv("pv-d", "256M", ["mk1"]))
    world.create_lv("mk1", name, "lv", "64M")          # allocated on the first PV
    world.fail_pv("pv-c")
    code, reason = lab.call("mk1", "start", {"vg": name, "lvs": "lv"})
    assert code == codes.ERR_GENERIC and "partial" in reason.lower()


def test_system_id_hand_over_on_shared_storage(lab):
    world = lab.world
    world.add_node("mk2")
    name = world.name("vgshared")
    world.create_vg("mk1", name, world.add_pv("san", "256M", ["mk1", "mk2"]))
    world.create_lv("mk1", name, "data", "32M")
    params = {"vg": name, "lvs": "data", "ownership": "system_id"}
    assert lab.call("mk2", "start", params)[0] == codes.SUCCESS, "mk2 takes the VG over from mk1"
    rows = world.report("mk2", "vgs", "vg_name,vg_systemid", name)
    assert rows[0]["vg_systemid"] == "mk2"
    assert lab.call("mk2", "monitor", params, interval=60, check_level=10)[0] == codes.SUCCESS
    assert lab.call("mk2", "stop", params)[0] == codes.SUCCESS
    code, reason, stderr = lab.call("mk1", "validate-all", params, check_level=10, with_stderr=True)
    assert code == codes.SUCCESS
    assert "risk: autoactivation is enabled" in stderr, "a shared VG activated at boot is a risk"


def test_tag_ownership(lab, vg):
    params = {"vg": vg, "lvs": "vm_shaolin", "ownership": "tag", "tag": "xenha_owner"}
    assert lab.call("mk1", "start", params)[0] == codes.SUCCESS
    assert "xenha_owner" in lab.world.report("mk1", "vgs", "vg_name,vg_tags", vg)[0]["vg_tags"]
    assert lab.call("mk1", "monitor", params, interval=60, check_level=10)[0] == codes.SUCCESS
    assert lab.call("mk1", "stop", params)[0] == codes.SUCCESS
    assert "xenha_owner" not in lab.world.report("mk1", "vgs", "vg_name,vg_tags", vg)[0]["vg_tags"]


def test_tools_missing(lab, vg, tmp_path):
    """No lvm, no device-mapper on this host (an empty host root, tools/host.py): nothing can
    be active. The depth-0 monitor needs no tool (it reads device-mapper's nodes);
    test_lvm_volume_invalid_environment.py has the other cases."""
    params = {"vg": vg, "lvs": "vm_shaolin"}
    no_tools = {"PATH": "/nonexistent", "XENHA_HOST_ROOT": str(tmp_path)}
    assert lab.call("mk1", "monitor", params, extra=no_tools)[0] == codes.NOT_RUNNING
    assert lab.call("mk1", "monitor", params, interval=10, extra=no_tools)[0] == codes.NOT_RUNNING
    assert lab.call("mk1", "monitor", params, interval=60, check_level=10, extra=no_tools)[0] == codes.ERR_GENERIC
    assert lab.call("mk1", "stop", params, extra=no_tools)[0] == codes.SUCCESS
    assert lab.call("mk1", "start", params, extra=no_tools)[0] == codes.ERR_INSTALLED


def test_bad_parameters(lab, vg):
    assert lab.call("mk1", "start", {"vg": vg, "ownership": "magic"})[0] == codes.ERR_CONFIGURED
    assert lab.call("mk1", "start", {})[0] == codes.ERR_CONFIGURED
    assert lab.call("mk1", "monitor", {})[0] == codes.NOT_RUNNING
    assert lab.call("mk1", "stop", {})[0] == codes.SUCCESS, "vg unset: nothing was ever activated (issue 9 §1)"
    assert lab.call("mk1", "stop", {"vg": vg, "ownership": "magic"})[0] == codes.SUCCESS
