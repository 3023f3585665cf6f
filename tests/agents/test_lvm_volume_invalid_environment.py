"""ocf:xenha:lvm-volume: every action × every way the environment can be broken or hostile
(issue 9): a missing tool never makes "not active" up, device-mapper's own nodes tell
the truth without any tool, stop with parameters that could never have activated
anything is 0, odd bytes and unreadable records change nothing, nothing hangs."""

import os

import pytest

from conftest import installed, need_tool
from hostile import NO_TOOLS, assert_outcome, assert_table_complete, host_root
from xenha.ocf import codes
from xenha_lab.harness import run_agent
from xenha_lab.paths import default_agent

ACTIONS = ["start", "stop", "probe", "monitor", "monitor-10", "validate-all", "validate-all-10"]
BAD_PARAMETER = {"start": 6, "stop": 0, "probe": 7, "monitor": 1, "monitor-10": 1, "validate-all": 6,
                 "validate-all-10": 6}
HARMLESS = {"start": 0, "stop": 0, "probe": 7, "monitor": 7, "monitor-10": 7, "validate-all": 0,
            "validate-all-10": 0}

# problem -> expected code per action (nothing of the VG is active at first)
EXPECTED = {
    # no device-mapper on this host (an empty host root) and no lvm: nothing can be active
    "tools-missing": {"start": 5, "stop": 0, "probe": 7, "monitor": 7, "monitor-10": 1, "validate-all": 0,
                      "validate-all-10": 5},
    # device-mapper present: the depth-0 monitor still reads its nodes (no tool needed),
    # everything that needs lvm cannot tell
    "tools-missing-dm-present": {"start": 1, "stop": 0, "probe": 7, "monitor": 7, "monitor-10": 1,
                                 "validate-all": 0, "validate-all-10": 1},
    "vg-unset": {"start": 6, "stop": 0, "probe": 7, "monitor": 1, "monitor-10": 1, "validate-all": 6,
                 "validate-all-10": 6},
    "bad-parameter": BAD_PARAMETER,
    "odd-bytes-in-a-parameter": BAD_PARAMETER,
    # names LVM refuses or keeps for itself (issue 9 §2): no such volume can exist
    "vg-a-path": BAD_PARAMETER,
    "vg-look-alike": BAD_PARAMETER,
    "vg-odd-bytes": BAD_PARAMETER,
    "lv-reserved-by-lvm": BAD_PARAMETER,
    "lv-an-option": BAD_PARAMETER,
    "tag-ends-the-config-string": BAD_PARAMETER,
    "record-binary": HARMLESS,
    "record-is-a-fifo": HARMLESS,
    "rsctmp-is-a-file": HARMLESS,
}


class Lab:
    def __init__(self, world, vg, tmp_path):
        self.world, self.vg, self.tmp = world, vg, tmp_path
        self.agent = installed(default_agent("lvm-volume"))
        self.rsctmp = str(tmp_path / "rsctmp")

    def call(self, action, params, extra=None):
        name = {"probe": "monitor", "monitor-10": "monitor", "validate-all-10": "validate-all"}.get(action, action)
        interval = {"monitor": 10, "monitor-10": 60}.get(action)
        level = 10 if action.endswith("-10") else None
        return run_agent(self.world.env("mk1"), "mk1", "lvm-volume", name, instance="lv_shaolin",
                         rsctmp=self.rsctmp, params=params, timeout_s=20, interval_s=interval,
                         check_level=level, extra=extra, agent_path=self.agent)

    def active(self):
        rows = self.world.report("mk1", "lvs", "lv_name,lv_attr", f"{self.vg}/vm_shaolin")
        return rows[0]["lv_attr"][4] == "a"

    def deactivate(self):
        self.world.check("mk1", ["lvchange", "-an", f"{self.vg}/vm_shaolin"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    need_tool("losetup")
    from xenha_lab.sim.lvm.world import LvmWorld
    tmp = tmp_path_factory.mktemp("lvm-hostile")
    world = LvmWorld(tmp / "lvm")
    try:
        world.add_node("mk1")
        vg = world.name("vg0")
        world.create_vg("mk1", vg, world.add_pv("mk1-disk", "256M", ["mk1"]))
        world.create_lv("mk1", vg, "vm_shaolin", "16M")
        yield Lab(world, vg, tmp)
    finally:
        world.cleanup()


@pytest.fixture
def clean(lab):
    """Each case starts with nothing active and no record, and leaves it so."""
    os.makedirs(lab.rsctmp, exist_ok=True)
    yield lab
    for entry in os.listdir(lab.rsctmp):
        os.unlink(os.path.join(lab.rsctmp, entry))
    if lab.active():
        lab.deactivate()


# problems made of parameter values alone (None: the parameter is unset; a callable
# makes the value from the VG's name)
VALUES = {
    "vg-unset": {"vg": None},
    "bad-parameter": {"ownership": "magic"},
    "odd-bytes-in-a-parameter": {"activation_mode": "\udcffcomplete"},
    "vg-a-path": {"vg": "../../etc"},
    "vg-look-alike": {"vg": lambda vg: vg.replace("v", "\u03bd", 1)},      # a Greek nu
    "vg-odd-bytes": {"vg": lambda vg: vg + "\udcff"},
    "lv-reserved-by-lvm": {"lvs": "vm_shaolin_tmeta"},
    "lv-an-option": {"lvs": "vm_shaolin -an"},
    "tag-ends-the-config-string": {"ownership": "tag", "tag": 'x"]} global {locking_type=0'},
}
# problems of the host (a host root, tools/host.py), with no tool on PATH
HOSTS = {"tools-missing": (), "tools-missing-dm-present": ("sys/module/dm_mod",)}


def arrange(lab, problem):
    params = {"vg": lab.vg, "lvs": "vm_shaolin"}
    # Pacemaker's default log facility: syslog must take whatever a line holds
    extra = {"HA_LOGFACILITY": "daemon"}
    record = os.path.join(lab.rsctmp, "xenha-lvm-volume-lv_shaolin")
    if problem in HOSTS:
        extra.update(PATH=NO_TOOLS, XENHA_HOST_ROOT=host_root(lab.tmp / problem, *HOSTS[problem]))
    elif problem in VALUES:
        for key, value in VALUES[problem].items():
            params[key] = value(lab.vg) if callable(value) else value
        params = {key: value for key, value in params.items() if value is not None}
    elif problem.startswith("record-"):
        del params["lvs"]   # "every LV of the VG": the record is what the monitor reads
        if problem == "record-binary":
            with open(record, "wb") as handle:
                handle.write(b"lvs=\xff\x00 vm_shaolin other\n")
        else:
            os.mkfifo(record)
    elif problem == "rsctmp-is-a-file":
        blocker = lab.tmp / "rsctmp-file"
        blocker.write_text("")
        extra["HA_RSCTMP"] = str(blocker)
    else:
        raise AssertionError(f"no way to break the environment called {problem!r}")
    return params, extra


def test_every_problem_expects_a_code_for_every_action_and_nothing_else():
    assert_table_complete(EXPECTED, ACTIONS)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("problem", sorted(EXPECTED))
def test_invalid_environment(clean, problem, action):
    params, extra = arrange(clean, problem)
    result = clean.call(action, params, extra)
    assert_outcome(result.rc, result.exit_reason, result.stderr, result.seconds, EXPECTED[problem][action])
    assert clean.active() == (result.rc == codes.SUCCESS and action == "start")


def test_tools_missing_while_the_lv_is_active_never_says_inactive(clean):
    """issue 9 §1: lvm missing from PATH while the LV is open must not give probe 7 or
    stop 0: device-mapper's nodes say it is active, and without lvm it cannot be
    deactivated."""
    params = {"vg": clean.vg, "lvs": "vm_shaolin"}
    assert clean.call("start", params).rc == codes.SUCCESS
    no_tools = {"PATH": NO_TOOLS}
    assert clean.call("probe", params, no_tools).rc == codes.SUCCESS
    assert clean.call("monitor", params, no_tools).rc == codes.SUCCESS
    stop = clean.call("stop", params, no_tools)
    assert stop.rc == codes.ERR_GENERIC and "cannot deactivate vm_shaolin" in stop.exit_reason
    assert "command not found" in stop.exit_reason
    start = clean.call("start", params, no_tools)
    assert start.rc == codes.ERR_GENERIC and "command not found, but" in start.exit_reason
    assert clean.active()
    assert clean.call("stop", params).rc == codes.SUCCESS
    assert not clean.active()


@pytest.mark.parametrize("problem", ["vg-unset", "bad-parameter", "odd-bytes-in-a-parameter"])
def test_stop_with_bad_parameters_while_active(clean, problem):
    """vg unset: this resource could never have activated anything (0); another bad
    value: stop carries on and deactivates."""
    good = {"vg": clean.vg, "lvs": "vm_shaolin"}
    assert clean.call("start", good).rc == codes.SUCCESS
    params, extra = arrange(clean, problem)
    assert clean.call("stop", params, extra).rc == codes.SUCCESS
    assert clean.active() == (problem == "vg-unset")
