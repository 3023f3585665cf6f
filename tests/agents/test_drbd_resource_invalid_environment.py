"""ocf:xenha:drbd-resource: every action × every way the environment can be broken or
hostile (issue 9): a tool missing from PATH while the DRBD module is loaded leaves the
state unknown (never probe 7 or stop 0 unless drbdsetup proves the resource down), an
unusable configuration file never hangs the agent nor makes a monitor say "stopped",
odd bytes and unreadable records change nothing.

One simulated world for the module (its netns and loop devices cost seconds); each case
leaves r0 down on mk1.
"""

import os
import time

import pytest

from conftest import need_tool
from hostile import NO_TOOLS, assert_outcome, assert_table_complete, host_root, path_with_only
from test_drbd_resource import CLONE_META, NODES, Cluster
from xenha.ocf import codes

ACTIONS = ["start", "stop", "probe", "monitor", "promote", "demote", "notify", "validate-all", "validate-all-10"]
UNKNOWN = {"start": 1, "stop": 1, "probe": 1, "monitor": 1, "promote": 1, "demote": 1, "notify": 0,
           "validate-all": 0, "validate-all-10": 1}
ABSENT = {"start": 5, "stop": 0, "probe": 7, "monitor": 1, "promote": 5, "demote": 5, "notify": 0,
          "validate-all": 0, "validate-all-10": 5}
BAD_PARAMETER = {"start": 6, "stop": 0, "probe": 7, "monitor": 1, "promote": 6, "demote": 6, "notify": 0,
                 "validate-all": 6, "validate-all-10": 6}
UNUSABLE_CONFIG = {"start": 5, "stop": 0, "probe": 7, "monitor": 7, "promote": 5, "demote": 5, "notify": 0,
                   "validate-all": 0, "validate-all-10": 5}
HARMLESS = {"start": 0, "stop": 0, "probe": 7, "monitor": 7, "promote": 1, "demote": 7, "notify": 0,
            "validate-all": 0, "validate-all-10": 0}

# problem -> expected code per action (r0 is down on mk1)
EXPECTED = {
    "tools-missing": ABSENT,                        # and no DRBD module on the (empty) host root
    "tools-missing-module-present": UNKNOWN,         # /sys/module/drbd: state unknown
    # drbdadm missing, drbdsetup there and the module loaded: unknown, but stop proves
    # the resource down with drbdsetup
    "drbdadm-missing": dict(UNKNOWN, stop=0),
    "module-absent": ABSENT,
    "drbdconf-missing": UNUSABLE_CONFIG,
    "drbdconf-is-a-fifo": UNUSABLE_CONFIG,
    "drbdconf-is-a-directory": UNUSABLE_CONFIG,
    "resource-unset": BAD_PARAMETER,
    # names drbdadm could never have configured (issue 9 §2): nothing runs with them
    "resource-all": BAD_PARAMETER,
    "resource-an-option": BAD_PARAMETER,
    "resource-look-alike": BAD_PARAMETER,
    "resource-a-number": BAD_PARAMETER,
    "drbdconf-relative": BAD_PARAMETER,
    "bad-parameter": BAD_PARAMETER,
    "odd-bytes-in-a-parameter": BAD_PARAMETER,
    "record-binary": HARMLESS,
    "record-is-a-fifo": HARMLESS,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    need_tool("drbdadm")
    need_tool("cibadmin")
    from xenha_lab.sim.drbd.world import DrbdWorld
    tmp = tmp_path_factory.mktemp("drbd-hostile")
    world = DrbdWorld(tmp / "drbd", NODES, resync_rate_kib=64 * 1024)
    try:
        yield Cluster(world, tmp)
    finally:
        world.cleanup()


@pytest.fixture
def clean(cluster):
    os.makedirs(cluster.rsctmp["mk1"], exist_ok=True)
    yield cluster
    for entry in os.listdir(cluster.rsctmp["mk1"]):
        os.unlink(os.path.join(cluster.rsctmp["mk1"], entry))
    cluster.world.drbdadm("mk1", "down", "r0")


# problems made of parameter values alone
VALUES = {
    "resource-unset": {"drbd_resource": ""},
    "resource-all": {"drbd_resource": "all"},
    "resource-an-option": {"drbd_resource": "--force"},
    "resource-look-alike": {"drbd_resource": "r\u0660"},      # an Arabic-Indic zero
    "resource-a-number": {"drbd_resource": "0"},
    "drbdconf-relative": {"drbdconf": "r0.res"},
    "bad-parameter": {"wfc_timeout": "soon"},
    "odd-bytes-in-a-parameter": {"wfc_timeout": "\udcff"},
}


def arrange(cluster, tmp, problem):
    # Pacemaker's default log facility: syslog must take whatever a line holds
    params, extra = {"wfc_timeout": "0"}, {"HA_LOGFACILITY": "daemon", "XENHA_HOST_ROOT": host_root(tmp / "host")}
    record = os.path.join(cluster.rsctmp["mk1"], "xenha-drbd-resource-drbd_r0")
    if problem == "tools-missing":
        extra["PATH"] = NO_TOOLS
    elif problem == "tools-missing-module-present":
        extra.update(PATH=NO_TOOLS, XENHA_HOST_ROOT=host_root(tmp / "host", "sys/module/drbd"))
    elif problem == "drbdadm-missing":
        extra["PATH"] = path_with_only(tmp / "bin", cluster.world.env("mk1")["PATH"], "drbdsetup",
                                       "crm_attribute", "cibadmin")
    elif problem == "module-absent":
        extra["XENHA_SIM_DRBD_MODULE"] = "absent"
    elif problem in VALUES:
        params.update(VALUES[problem])
    elif problem == "drbdconf-missing":
        params["drbdconf"] = str(tmp / "gone.conf")
    elif problem == "drbdconf-is-a-fifo":
        os.mkfifo(tmp / "fifo.conf")
        params["drbdconf"] = str(tmp / "fifo.conf")
    elif problem == "drbdconf-is-a-directory":
        params["drbdconf"] = str(tmp)
    elif problem == "record-binary":
        with open(record, "wb") as handle:
            handle.write(b"version=\xff\nscore=\x00\n")
    elif problem == "record-is-a-fifo":
        os.mkfifo(record)
    else:
        raise AssertionError(f"no way to break the environment called {problem!r}")
    return params, extra


def call(cluster, action, params, extra):
    name = {"probe": "monitor", "validate-all-10": "validate-all"}.get(action, action)
    interval = 31 if action == "monitor" else None
    level = 10 if action == "validate-all-10" else None
    meta = dict(CLONE_META)
    if action == "notify":
        meta.update(notify_type="post", notify_operation="start")
    return cluster.call("mk1", name, interval=interval, params=params, extra=extra, check_level=level,
                        meta=meta, timeout=20)


def test_every_problem_expects_a_code_for_every_action_and_nothing_else():
    assert_table_complete(EXPECTED, ACTIONS)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("problem", sorted(EXPECTED))
def test_invalid_environment(clean, tmp_path, problem, action):
    params, extra = arrange(clean, tmp_path, problem)
    started = time.monotonic()
    rc, reason, stderr = call(clean, action, params, extra)
    assert_outcome(rc, reason, stderr, time.monotonic() - started, EXPECTED[problem][action])
    if rc == codes.ERR_GENERIC and problem in ("tools-missing-module-present", "drbdadm-missing"):
        assert "command not found, but" in reason
    if problem.startswith("drbdconf-is-") and rc == codes.ERR_INSTALLED:
        assert "not a regular file" in reason


def test_a_primary_is_never_reported_stopped_because_the_tools_are_not_on_path(clean, tmp_path):
    """issue 9 §1: drbdadm and drbdsetup missing from PATH while r0 is Primary: probe 7 and
    stop 0 would let Pacemaker promote the peer on its own."""
    params = {"wfc_timeout": "0"}
    assert call(clean, "start", params, {})[0] == codes.SUCCESS
    clean.world.drbdadm("mk1", "primary", "--force", "r0", check=True)
    root = host_root(tmp_path / "host", "sys/module/drbd")
    search = clean.world.env("mk1")["PATH"]
    for path in (NO_TOOLS, path_with_only(tmp_path / "bin1", search, "crm_attribute")):
        extra = {"PATH": path, "XENHA_HOST_ROOT": root}
        for action in ("probe", "monitor", "stop", "demote"):
            rc, reason, stderr = call(clean, action, params, extra)
            assert rc == codes.ERR_GENERIC, (action, stderr)
            assert "command not found" in reason
    assert clean.world.role("mk1", "r0") == "Primary"
    # drbdsetup alone can still take it down (it demotes an unused Primary): stop 0 is then true
    extra = {"PATH": path_with_only(tmp_path / "bin2", search, "drbdsetup"), "XENHA_HOST_ROOT": root}
    assert call(clean, "stop", params, extra)[0] == codes.SUCCESS
    assert "r0" not in str(clean.world.events("mk1", "r0"))


@pytest.mark.parametrize("problem", ["drbdconf-missing", "drbdconf-is-a-fifo"])
def test_stop_takes_the_resource_down_whatever_the_configuration_file(clean, tmp_path, problem):
    assert call(clean, "start", {"wfc_timeout": "0"}, {})[0] == codes.SUCCESS
    params, extra = arrange(clean, tmp_path, problem)
    rc, reason, stderr = call(clean, "stop", params, extra)
    assert rc == codes.SUCCESS, stderr
    assert "r0" not in str(clean.world.events("mk1", "r0"))
    # and the monitor never needed the file: a configured resource is not "stopped"
    assert call(clean, "start", {"wfc_timeout": "0"}, {})[0] == codes.SUCCESS
    assert call(clean, "probe", params, extra)[0] == codes.DEGRADED   # up, peer not connected


@pytest.mark.parametrize("name", ["all", "--force", "r0 r1"])
def test_a_name_drbdadm_reads_as_something_else_never_reaches_it(clean, name):
    """`drbdadm down all` would take every resource of the node down."""
    assert call(clean, "start", {"wfc_timeout": "0"}, {})[0] == codes.SUCCESS
    for action in ("stop", "probe", "demote"):
        rc, _reason, stderr = call(clean, action, {"drbd_resource": name}, {})
        assert rc == {"stop": 0, "probe": 7, "demote": 6}[action], stderr
    assert "r0" in str(clean.world.events("mk1", "r0")), "r0 is still up"
