"""The drivers in xenha.tools against stand-in tools: the argv each typed method runs,
the timeout it keeps, and the typed answer or failure it makes of the tool's output
and exit code. The stand-ins print what the real tools print (tools.md §2, samples)."""

import pytest
from hypothesis import example, given, settings, strategies as st

from xenha.agents.drbd_resource import monitor_verdict, promotion_score
from xenha.ocf import codes
from xenha.ocf.agent import ResourceAgent, StateUnknown, ToolMissing
from xenha.tools.binaries import ToolNotFound
from xenha.tools.crm import Crm, CrmError, element_ids
from xenha.tools.dd import Dd, ReadError
from xenha.tools.hook import run_hook
from xenha.tools.drbd import (Drbd, DrbdError, DrbdRefused, allows_two_primaries,
                              connection_84, drbd_words, parse_events2, state_84)
from xenha.tools.lvm import Lvm, LvmError
from xenha.tools import xl_config
from xenha.tools.xl import Xl, XlError, address_problem, config_string_problem, transport_problem

WRAPPED_FAILURE = ("r0: State change failed: (-1) Multiple primaries not allowed by config\n"
                   "Command 'drbdsetup primary r0' terminated with exit code 11\n")


class Tools:
    """A directory of stand-in executables; each logs its argv, then runs its script."""

    def __init__(self, tmp_path):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "argv.log"
        # a host with nothing installed, whatever this machine has (tools/host.py)
        self.host = tmp_path / "host"
        self.host.mkdir()
        self.env = {"PATH": str(self.bin), "XENHA_HOST_ROOT": str(self.host)}

    def add(self, name, script):
        tool = self.bin / name
        # PATH holds only the stand-ins: the script finds its own helpers (cat, sleep)
        tool.write_text(f'#!/bin/sh\nPATH=/usr/bin:/bin\necho "${{0##*/}} $*" >> {self.log}\n{script}\n')
        tool.chmod(0o755)

    def calls(self):
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def tools(tmp_path):
    return Tools(tmp_path)


def drbd_tools(tools, drbdadm="", drbdsetup=""):
    tools.add("drbdadm", drbdadm)
    tools.add("drbdsetup", drbdsetup)
    return Drbd("r0", "/etc/drbd.d/r0.res", env=tools.env)


# --- DRBD 9 and 8.4 backends: the same typed state ------------------------------------
def test_drbd9_state_from_events2(tools, tmp_path):
    events = tmp_path / "events2"
    events.write_text("exists resource name:r0 role:Secondary suspended:no\n"
                      "exists device name:r0 volume:0 minor:1 disk:UpToDate client:no quorum:yes\n"
                      "exists connection name:r0 peer-node-id:1 conn-name:mk2 connection:Connected role:Secondary\n"
                      "exists peer-device name:r0 peer-node-id:1 conn-name:mk2 volume:0 replication:Established "
                      "peer-disk:UpToDate\nexists -\n")
    drbd_tools(tools, drbdsetup=f"cat {events}")
    state = Drbd("r0", env=tools.env, version="9").state(5)
    assert monitor_verdict(state) == (codes.SUCCESS, "healthy")
    assert tools.calls() == ["drbdsetup events2 --now r0"]


def test_drbd9_not_configured_is_certain_and_other_failures_are_errors(tools):
    drbd_tools(tools, drbdsetup='echo "r0: No such resource" >&2; exit 10')
    assert Drbd("r0", env=tools.env, version="9").state(5) is None
    drbd_tools(tools, drbdsetup='echo "Failed to modprobe drbd (No such file or directory)" >&2; exit 20')
    with pytest.raises(DrbdError, match="cannot read the state of r0"):
        Drbd("r0", env=tools.env, version="9").state(5)


def test_drbd84_state_from_drbdadm_role_cstate_dstate(tools):
    drbd_tools(tools, drbdadm='case "$3" in role) echo Primary/Secondary;; cstate) echo SyncSource;; '
                              'dstate) echo UpToDate/Inconsistent;; esac')
    state = Drbd("r0", "/etc/drbd.conf", env=tools.env, version="8.4").state(5)
    assert state.primary and state.connections[1].connected
    assert state.peer_devices[(1, 0)].resyncing and state.peer_devices[(1, 0)].peer_disk == "Inconsistent"
    assert monitor_verdict(state)[0] == codes.DEGRADED_PROMOTED
    assert tools.calls() == ["drbdadm -c /etc/drbd.conf role r0", "drbdadm -c /etc/drbd.conf cstate r0",
                             "drbdadm -c /etc/drbd.conf dstate r0"]


def test_drbd84_unconfigured(tools):
    drbd_tools(tools, drbdadm='echo "Unconfigured"')
    assert Drbd("r0", env=tools.env, version="8.4").state(5) is None


# what drbd-utils 9.22 said with the real 8.4.11 module (tests/sim/real_samples/drbd84_kernel.txt)
MINOR_GONE = ("1: Failure: (127) Device minor not allocated\nadditional info from kernel:\nunknown minor\n")


def test_drbd84_unallocated_minor_is_not_configured(tools):
    drbd_tools(tools, drbdadm=f"printf '{MINOR_GONE}' >&2; echo \"Command 'drbdsetup-84 $3 1' terminated with exit "
                              "code 10\" >&2; exit 10")
    assert Drbd("r0", env=tools.env, version="8.4").state(5) is None
    # taken down between `role` and `dstate`: drbdmeta meets the unallocated minor, exit 20
    drbd_tools(tools, drbdadm=f'case "$1" in role) echo Secondary/Unknown;; cstate) echo WFConnection;; '
                              f"dstate) printf '{MINOR_GONE}' >&2; exit 20;; esac")
    assert Drbd("r0", env=tools.env, version="8.4").state(5) is None
    drbd_tools(tools, drbdadm='echo "open(/dev/vg0/vm_guest1) failed: No such file or directory" >&2; exit 20')
    with pytest.raises(DrbdError, match="cannot read the state of r0"):
        Drbd("r0", env=tools.env, version="8.4").state(5)


def events2(role="Secondary", disk="UpToDate", connection="Connected", peer_role="Secondary",
            replication="Established", peer_disk="UpToDate"):
    return parse_events2(
        f"exists resource name:r role:{role} suspended:no\n"
        f"exists device name:r volume:0 minor:1 disk:{disk} client:no quorum:yes\n"
        f"exists connection name:r peer-node-id:1 conn-name:peer connection:{connection} role:{peer_role}\n"
        f"exists peer-device name:r peer-node-id:1 conn-name:peer volume:0 replication:{replication} "
        f"peer-disk:{peer_disk}\n")["r"]


# (8.4 words: roles, cstate, disks) and what DRBD 9 reports in the same situation
EQUIVALENTS = [
    (("Secondary/Secondary", "Connected", "UpToDate/UpToDate"), {}),
    (("Primary/Primary", "Connected", "UpToDate/UpToDate"), {"role": "Primary", "peer_role": "Primary"}),
    (("Secondary/Unknown", "WFConnection", "UpToDate/DUnknown"),
     {"connection": "Connecting", "peer_role": "Unknown", "replication": "Off", "peer_disk": "DUnknown"}),
    (("Secondary/Unknown", "Unconnected", "UpToDate/DUnknown"),
     {"connection": "Unconnected", "peer_role": "Unknown", "replication": "Off", "peer_disk": "DUnknown"}),
    (("Secondary/Unknown", "StandAlone", "Outdated/DUnknown"),
     {"connection": "StandAlone", "peer_role": "Unknown", "replication": "Off", "disk": "Outdated",
      "peer_disk": "DUnknown"}),
    (("Secondary/Primary", "SyncTarget", "Inconsistent/UpToDate"),
     {"peer_role": "Primary", "replication": "SyncTarget", "disk": "Inconsistent"}),
    (("Secondary/Secondary", "VerifyS", "UpToDate/UpToDate"), {"replication": "VerifyS"}),
]


@pytest.mark.parametrize("words,nine", EQUIVALENTS, ids=[w[0][1] for w in EQUIVALENTS])
def test_both_backends_give_the_same_verdict(words, nine):
    old, new = state_84("r", *words), events2(**nine)
    assert monitor_verdict(old) == monitor_verdict(new)
    assert promotion_score(old, (1000, 10000)) == promotion_score(new, (1000, 10000))


def test_84_connection_states_map_onto_drbd9():
    assert connection_84("Connected") == ("Connected", "Established")
    assert connection_84("PausedSyncS") == ("Connected", "PausedSyncS")
    assert connection_84("Ahead") == ("Connected", "Ahead")
    assert connection_84("WFConnection") == ("Connecting", "Off")
    assert connection_84("WFReportParams") == ("Connecting", "Off")
    # same name and meaning in DRBD 9: the short state before a connection attempt
    assert connection_84("Unconnected") == ("Unconnected", "Off")
    assert connection_84("NetworkFailure") == ("NetworkFailure", "Off")


# --- version detection --------------------------------------------------------------------
def test_version_from_drbd_utils_override_without_asking_the_module(tools):
    drbd = drbd_tools(tools)
    drbd.env = dict(tools.env, DRBD_DRIVER_VERSION_OVERRIDE="8.4.11")
    assert drbd.detect_version(5) == "8.4" and drbd.version == "8.4"
    assert Drbd("r0", env=tools.env, version="7").version is None, "an unknown version is detected"
    assert tools.calls() == []


@pytest.mark.parametrize("code,version", [("0x090200", "9"), ("0x08040b", "8.4"), ("0x000000", None)])
def test_version_from_drbdsetup(tools, code, version, monkeypatch):
    drbd = drbd_tools(tools, drbdsetup=f'echo DRBDADM_VERSION=9.22.0; echo DRBD_KERNEL_VERSION_CODE={code}')
    monkeypatch.setattr("builtins.open", _no_proc_drbd(open))
    assert drbd.detect_version(5) == version
    assert tools.calls() == ["drbdsetup --version"]


def _no_proc_drbd(real_open):
    def fake(path, *args, **kwargs):
        if path == "/proc/drbd":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)
    return fake


def test_no_version_without_drbdsetup(tmp_path, monkeypatch):
    monkeypatch.setattr("builtins.open", _no_proc_drbd(open))
    assert Drbd("r0", env={"PATH": str(tmp_path)}).detect_version(5) is None


# --- changes: argv, typed failures ---------------------------------------------------------
def test_changes_run_drbdadm_with_the_configuration(tools):
    drbd = drbd_tools(tools)
    drbd.up(5)
    drbd.adjust(5)
    drbd.primary(5)
    drbd.secondary(5)
    drbd.down(5)
    assert tools.calls() == [f"drbdadm -c /etc/drbd.d/r0.res {verb} r0"
                             for verb in ("up", "adjust", "primary", "secondary", "down")]


def test_skip_initial_sync_argv_and_its_refusal(tools):
    drbd = drbd_tools(tools)
    drbd.skip_initial_sync(5)
    assert tools.calls() == ["drbdadm -c /etc/drbd.d/r0.res new-current-uuid --clear-bitmap r0"]
    said = "1: Failure: (151) Need to be StandAlone"
    refusing = drbd_tools(tools, drbdadm=f"cat >&2 <<'EOF'\n{said}\nCommand 'drbdsetup new-current-uuid 1 "
                                         f"--clear-bitmap' terminated with exit code 10\nEOF\nexit 10")
    with pytest.raises(DrbdError) as failed:
        refusing.skip_initial_sync(5)
    assert failed.value.drbd_said == said and failed.value.returncode == 10


def test_a_failure_carries_drbds_own_words_apart_from_drbdadms_wrapper(tools):
    not_outdated = ("r0: State change failed: (-7) Refusing to be Primary while peer is not outdated\n"
                    "Command 'drbdsetup primary r0' terminated with exit code 11\n")
    drbd = drbd_tools(tools, drbdadm=f"cat >&2 <<'EOF'\n{not_outdated}EOF\nexit 11")
    with pytest.raises(DrbdError) as failed:
        drbd.primary(5)
    assert not isinstance(failed.value, DrbdRefused), "the peer may be outdated in a moment: the caller may retry"
    assert str(failed.value) == "r0: State change failed: (-7) Refusing to be Primary while peer is not outdated"
    assert failed.value.drbd_said == str(failed.value)
    assert failed.value.returncode == 11


@pytest.mark.parametrize("number,text,rc", [
    (-1, "Multiple primaries not allowed by config", 11),
    (-2, "Need access to UpToDate data", 17),
    (-11, "Device is diskless, the requested operation requires a disk", 11),
    (-16, "Disk state is lower than outdated", 5),
    (-17, "Peer does not support protocol", 11),
    (-20, "Other vol primary on peer not allowed by config", 11),
])
def test_refusals_no_retry_can_change_end_at_once_with_drbds_words(tools, number, text, rc):
    """issue 9 §9: a promote refused by the configuration or the data is not retried."""
    said = f"r0: State change failed: ({number}) {text}"
    drbd = drbd_tools(tools, drbdadm=f"cat >&2 <<'EOF'\n{said}\nCommand 'drbdsetup primary r0' terminated "
                                     f"with exit code {rc}\nEOF\nexit {rc}")
    with pytest.raises(DrbdRefused) as refused:
        drbd.primary(5)
    assert str(refused.value) == said


@pytest.mark.parametrize("number", [-7, -10, -12, -18, -19, -21, -22, -23, -24, -25])
def test_refusals_that_may_change_are_left_to_the_caller_to_retry(tools, number):
    drbd = drbd_tools(tools, drbdadm=f"echo 'r0: State change failed: ({number}) x' >&2; "
                                     "echo \"Command 'drbdsetup primary r0' terminated with exit code 11\" >&2; exit 11")
    with pytest.raises(DrbdError) as failed:
        drbd.primary(5)
    assert not isinstance(failed.value, DrbdRefused)


def test_drbdadm_refusing_on_its_own_is_its_configuration_no_retry_changes(tools):
    drbd = drbd_tools(tools, drbdadm="echo \"'r0' not defined in your config (for this host).\" >&2; exit 1")
    with pytest.raises(DrbdRefused) as refused:
        drbd.secondary(5)
    assert str(refused.value) == "'r0' not defined in your config (for this host)."
    tools.add("drbdsetup", "sleep 5")
    with pytest.raises(DrbdError) as slow:
        Drbd("r0", env=tools.env).teardown(0.2)
    assert not isinstance(slow.value, DrbdRefused) and "timed out" in str(slow.value)


def test_no_up_to_date_data_is_a_refusal_no_retry_changes(tools):
    drbd = drbd_tools(tools, drbdadm="echo 'r0: State change failed: (-2) Need access to UpToDate data' >&2; exit 17")
    with pytest.raises(DrbdRefused) as refused:
        drbd.primary(5)
    assert refused.value.drbd_said.endswith("Need access to UpToDate data")


def test_drbd_words():
    assert drbd_words(WRAPPED_FAILURE) == "r0: State change failed: (-1) Multiple primaries not allowed by config"
    assert drbd_words("Command 'drbdsetup down r0' terminated with exit code 20\n") == ""
    assert drbd_words("'r9' not defined in your config (for this host).\n") == \
        "'r9' not defined in your config (for this host)."
    # the failure line wins over what follows it, and the kernel's words are kept
    assert drbd_words("r0: Failure: (162) Invalid configuration request\nadditional info from kernel:\n"
                      "peer connection already exists\nCommand 'drbdsetup connect r0 1' terminated with exit "
                      "code 10\n") == ("r0: Failure: (162) Invalid configuration request "
                                        "(peer connection already exists)")


def test_teardown_without_drbdadm_and_of_a_resource_that_is_not_there(tools):
    tools.add("drbdsetup", 'echo "r0: No such resource" >&2; exit 10')
    Drbd("r0", env=tools.env).teardown(5)
    assert tools.calls() == ["drbdsetup down r0"]
    tools.add("drbdsetup", 'echo "r0: State change failed: (-12) Device is held open by someone" >&2; exit 11')
    with pytest.raises(DrbdError, match="held open"):
        Drbd("r0", env=tools.env).teardown(5)


def test_configuration_and_allow_two_primaries(tools):
    drbd = drbd_tools(tools, drbdadm="echo 'resource r0 { net { allow-two-primaries   yes; } }'")
    assert allows_two_primaries(drbd.dump(5))
    assert not allows_two_primaries("resource r0 { net { protocol C; } }")
    drbd = drbd_tools(tools, drbdadm="echo \"'r0' not defined in your config (for this host).\" >&2; exit 1")
    with pytest.raises(DrbdError, match="not defined"):
        drbd.dump(5)


def test_backing_device(tools):
    drbd = drbd_tools(tools, drbdadm="echo /dev/vg0/vm_r0")
    assert drbd.backing_device("0", 5) == "/dev/vg0/vm_r0"
    assert tools.calls()[-1:] == ["drbdadm -c /etc/drbd.d/r0.res sh-ll-dev r0/0"]


def test_timeouts_are_the_drivers(tools):
    drbd = drbd_tools(tools, drbdadm="sleep 5")
    with pytest.raises(DrbdError, match="drbdadm timed out after"):
        drbd.up(0.2)


# --- LVM ----------------------------------------------------------------------------------
def test_lvm_changes(tools):
    for name in ("lvchange", "vgchange", "lvcreate", "lvremove", "lvconvert"):
        tools.add(name, "")
    lvm = Lvm(env=tools.env)
    lvm.activate("vg0", ["a", "b"], "complete", 5)
    lvm.activate("vg0", ["a"], "degraded", 5, only_tagged="pacemaker")
    lvm.deactivate("vg0", ["a"], 5)
    lvm.set_system_id("vg0", "mk2", 5, previous="mk1")
    lvm.add_tag("vg0", "pacemaker", 5)
    lvm.remove_tag("vg0", "pacemaker", 5)
    lvm.remove_volume("vg0", "a-before-resync", 5)
    lvm.merge_snapshot("vg0", "a-before-resync", 5)
    assert tools.calls() == [
        "lvchange -ay --activationmode complete vg0/a vg0/b",
        'lvchange -ay --activationmode degraded --config activation{volume_list=["@pacemaker"]} vg0/a',
        "lvchange -an vg0/a",
        'vgchange --config local/extra_system_ids=["mk1"] -y --systemid mk2 vg0',
        "vgchange --addtag pacemaker vg0",
        "vgchange --deltag pacemaker vg0",
        "lvremove -f vg0/a-before-resync",
        "lvconvert --merge vg0/a-before-resync",
    ]


def test_lvm_failure_carries_lvms_words(tools):
    tools.add("lvchange", 'echo "  Volume group \\"vg0\\" not found" >&2; exit 5')
    with pytest.raises(LvmError, match='Volume group "vg0" not found'):
        Lvm(env=tools.env).activate("vg0", ["a"], "complete", 5)


def test_an_unreadable_report_is_an_lvm_error(tools):
    tools.add("vgs", 'echo "  WARNING: something"; echo "{ not json"')
    with pytest.raises(LvmError, match="unreadable JSON"):
        Lvm(env=tools.env).volume_group("vg0", 5)


def test_lv_at_a_device_that_is_no_lv(tools):
    tools.add("lvs", 'echo "  Failed to find physical volume \\"/dev/loop9\\"." >&2; exit 5')
    assert Lvm(env=tools.env).logical_volume_at("/dev/loop9", 5) is None


def test_dd_read_failure(tools):
    tools.add("dd", "echo \"dd: error reading '/dev/vg0/a': Input/output error\" >&2; exit 1")
    with pytest.raises(ReadError, match="Input/output error"):
        Dd(env=tools.env).read_first_block("/dev/vg0/a", 4096, 5)
    assert tools.calls() == ["dd if=/dev/vg0/a of=/dev/null bs=4096 count=1 iflag=direct"]


# --- Pacemaker ----------------------------------------------------------------------------
def test_promotion_score_argv(tools):
    tools.add("crm_attribute", "")
    crm = Crm(env=tools.env)
    crm.set_promotion_score(10000, "mk1", 5)
    crm.set_promotion_score(None, None, 5)
    assert tools.calls() == ["crm_attribute --promotion --lifetime reboot --node mk1 --update 10000",
                             "crm_attribute --promotion --lifetime reboot --delete"]


def test_node_attribute(tools):
    tools.add("crm_attribute", 'case "$4" in mk2) echo 10.0.0.2;; mk3) echo "(null)";; '
                               '*) echo "Error performing operation: No such device or address" >&2; exit 105;; esac')
    crm = Crm(env=tools.env)
    assert crm.node_attribute("mk2", "migration_ip", 5) == "10.0.0.2"
    assert crm.node_attribute("mk3", "migration_ip", 5) is None
    assert crm.node_attribute("mk9", "migration_ip", 5) is None
    assert tools.calls()[0] == "crm_attribute --type nodes --node mk2 --name migration_ip --query --quiet"
    tools.add("crm_attribute", 'echo "Could not connect to the CIB" >&2; exit 102')
    with pytest.raises(CrmError, match="Could not connect"):
        crm.node_attribute("mk2", "migration_ip", 5)


def test_a_missing_pacemaker_tool_is_a_crm_error(tmp_path):
    with pytest.raises(CrmError, match="crm_attribute: command not found"):
        Crm(env={"PATH": str(tmp_path)}).set_promotion_score(1, None, 5)


FENCE = ('<rsc_location rsc="drbd_r0-clone" id="drbd-fence-by-handler-r0-drbd_r0-clone">\n'
         '  <rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-r0-rule"/>\n</rsc_location>\n')


def test_fencing_constraints(tools):
    tools.add("cibadmin", f"cat <<'EOF'\n{FENCE}EOF")
    assert Crm(env=tools.env).fencing_constraints("r0", 5) == ["drbd-fence-by-handler-r0-drbd_r0-clone"]
    assert tools.calls() == ["cibadmin --query --xpath "
                             "//rsc_location[starts-with(@id,'drbd-fence-by-handler-r0-')]"]
    tools.add("cibadmin", 'echo "Call cib_query failed (-6): No such device or address" >&2; exit 105')
    assert Crm(env=tools.env).fencing_constraints("r0", 5) == []
    tools.add("cibadmin", 'echo "Could not connect to the CIB: Transport endpoint is not connected" >&2; exit 102')
    with pytest.raises(CrmError):
        Crm(env=tools.env).fencing_constraints("r0", 5)


def test_element_ids():
    assert element_ids(FENCE, "rsc_location") == ["drbd-fence-by-handler-r0-drbd_r0-clone"]
    assert element_ids('<rsc_location_x id="a"/><rsc_location rsc="x"/>', "rsc_location") == ["?"]


# --- the binaries an agent needs: one check ------------------------------------------------
def test_require_names_the_missing_binary_and_its_driver(tools):
    tools.add("drbdadm", "")
    drbd = Drbd("r0", env=tools.env)

    class Probe(ResourceAgent):
        def __init__(self):
            pass

    with pytest.raises(ToolMissing) as missing:
        Probe().require(Lvm(env=tools.env), drbd)
    assert missing.value.code == codes.ERR_INSTALLED and missing.value.tool == "lvm"
    tools.add("lvm", "")
    with pytest.raises(ToolMissing) as missing:
        Probe().require(Lvm(env=tools.env), drbd)
    assert missing.value.reason == "drbdsetup command not found" and missing.value.driver is drbd
    tools.add("drbdsetup", "")
    Probe().require(Lvm(env=tools.env), Drbd("r0", env=tools.env))


@pytest.mark.parametrize("driver,sign,phrase", [
    ("xl", "proc/xen/", "/proc/xen exists"),
    ("xl", "usr/lib/xen-4.17/bin/xl", "xl is installed at /usr/lib/xen-4.17/bin/xl"),
    ("drbd", "sys/module/drbd/", "/sys/module/drbd exists"),
    ("drbd", "proc/drbd", "/proc/drbd exists"),
    ("lvm", "sys/class/misc/device-mapper/", "/sys/class/misc/device-mapper exists"),
    ("lvm", "dev/mapper/vg0-lv", "/dev/mapper/vg0-lv exists"),
])
def test_a_missing_tool_with_its_kernel_side_present_leaves_the_state_unknown(tools, driver, sign, phrase):
    """issue 9 §1: "not installed" only when the host has no trace of the tool's kernel side."""
    make = {"xl": lambda: Xl(env=tools.env), "drbd": lambda: Drbd("r0", env=tools.env),
            "lvm": lambda: Lvm(env=tools.env)}[driver]

    class Probe(ResourceAgent):
        def __init__(self):
            pass

    with pytest.raises(ToolMissing):
        Probe().require(make())
    path = tools.host / sign
    if sign.endswith("/"):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    with pytest.raises(StateUnknown) as unknown:
        Probe().require(make())
    assert unknown.value.code == codes.ERR_GENERIC and phrase in unknown.value.reason


def test_the_control_node_alone_is_no_sign_of_device_mapper(tools):
    (tools.host / "dev/mapper").mkdir(parents=True)
    (tools.host / "dev/mapper/control").write_text("")
    assert Lvm(env=tools.env).system_sign() is None
    (tools.host / "sys/block/dm-0").mkdir(parents=True)
    assert Lvm(env=tools.env).system_sign() == "/sys/block/dm-0 exists"


def test_a_loaded_module_is_also_what_an_installed_drbdsetup_says(tools):
    tools.add("drbdsetup", "echo DRBD_KERNEL_VERSION_CODE=0x090200")
    assert Drbd("r0", env=tools.env).system_sign() == "drbdsetup --version reports a loaded DRBD module"
    tools.add("drbdsetup", "echo DRBD_KERNEL_VERSION_CODE=0x000000")
    assert Drbd("r0", env=tools.env).system_sign() is None
    tools.add("drbdsetup", "echo DRBD_KERNEL_VERSION_CODE=0xnonsense")
    assert Drbd("r0", env=tools.env).system_sign() is None


def test_a_tool_that_is_not_installed(tmp_path):
    with pytest.raises(ToolNotFound):
        Drbd("r0", env={"PATH": str(tmp_path)}, version="9").state(5)


# --- programs the operator names ----------------------------------------------------------
def test_hook_outcome(tools):
    tools.add("unfence", 'echo "out"; echo "unfenced r0" >&2; exit 3')
    result = run_hook(["unfence", "r0"], 5, env=tools.env)
    assert (result.ok, result.returncode, result.last_words) == (False, 3, "unfenced r0")
    assert tools.calls() == ["unfence r0"]
    tools.add("quiet", "echo done")
    assert run_hook(["quiet"], 5, env=tools.env).last_words == "done"
    tools.add("slow", "sleep 5")
    slow = run_hook(["slow"], 0.2, env=tools.env)
    assert slow.timed_out and not slow.ok and "timed out" in slow.summary
    with pytest.raises(ToolNotFound):
        run_hook(["no-such-program"], 5, env=tools.env)


# --- xl: no value reaches xl's config parser or a shell as anything but itself (issue 9 §3) -------
def test_xl_commands_put_the_domain_name_after_double_dash(tools):
    tools.add("xl", "")
    xl = Xl(env=tools.env)
    xl.create("/etc/xen/shaolin.cfg", "shaolin", 5)
    xl.shutdown("-x", 5, acpi_fallback=True)
    xl.destroy("-x", 5)
    xl.trigger_power("-x", 5)
    xl.unpause("-x", 5)
    assert tools.calls() == ['xl create -- /etc/xen/shaolin.cfg name="shaolin"', "xl shutdown -F -- -x",
                             "xl destroy -- -x", "xl trigger -- -x power", "xl unpause -- -x"]


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.text(max_size=40))
@example('shaolin" on_crash="preserve')
@example("a\\")
@example("a'b")
@example("a\nname='b'")
def test_a_name_xl_create_passes_is_read_back_as_exactly_that_name(name):
    """xl appends `name="NAME"` to the config text: whatever the driver passes, xl's
    parser (libxlutil's grammar, xenha.tools.xl_config) reads one setting, this name."""
    if config_string_problem(name) is None:
        settings_ = xl_config.parse(f'memory = 512\nname="{name}"\n').settings
        assert settings_ == {"memory": 512, "name": name}
    else:
        with pytest.raises(XlError):
            Xl(env={"PATH": "/nonexistent"}).create("/etc/xen/x.cfg", name, 5)   # refused before running


def test_xl_create_refuses_a_config_path_xl_would_read_as_a_setting():
    with pytest.raises(XlError, match="reads as a setting"):
        Xl(env={"PATH": "/nonexistent"}).create("/etc/xen/memory=64.cfg", "vm", 5)


def test_the_preflight_is_argv_without_a_shell(tools, tmp_path):
    tools.add("ssh", 'printf "Name ID Mem VCPUs State Time(s)\\n"')
    xl = Xl(env=tools.env)
    presence = xl.remote_presence("shaolin", "ssh -o BatchMode=yes", "10.0.0.2", 5)
    assert presence.absent
    assert tools.calls() == ["ssh -o BatchMode=yes 10.0.0.2 xl list"]
    witness = tmp_path / "pwned"
    for transport, address in ((f"ssh; touch {witness}", "10.0.0.2"), ("ssh", f"10.0.0.2;touch {witness}"),
                               ("ssh", "$(reboot)"), ("ssh", "-oProxyCommand=x"), ("A=1 ssh", "h")):
        with pytest.raises(XlError, match="refusing to run the preflight"):
            xl.remote_presence("shaolin", transport, address, 5)
        with pytest.raises(XlError, match="refusing to run xl migrate"):
            xl.migrate("shaolin", address, transport, 5)
    assert not witness.exists() and len(tools.calls()) == 1
    with pytest.raises(XlError, match="transport command nossh not found"):
        xl.remote_presence("shaolin", "nossh", "10.0.0.2", 5)


# a word of plain characters with, half of the time, one a shell reads specially
SPECIAL = list(" ;$`'\"*?~#&|<>(){}[]!^\\\t\n")
PLAIN = st.text(alphabet="ab-=.:/%@,+_1", max_size=6)
ODD = st.sampled_from([""] * len(SPECIAL) + SPECIAL)
SHELL_WORD = st.builds(lambda head, odd, tail: head + odd + tail or "a", PLAIN, ODD, PLAIN)
ADDRESS = st.builds(lambda head, odd, tail: head + odd + tail or "a",
                    st.text(alphabet="ab.:-1%@", max_size=6), ODD, st.text(alphabet="ab.:1", max_size=6))


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(SHELL_WORD, min_size=1, max_size=4), ADDRESS)
@example(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"], "10.0.0.2")
@example(["ssh", "-l", "root@x"], "fd00::1%eth0")
def test_what_passes_reads_the_same_to_sh_and_as_argv(words, address):
    """A transport and an address the driver lets through are split by `sh -c` (how xl
    runs them) into exactly the words argv has: no expansion, no second command."""
    import subprocess
    transport = " ".join(words)
    if transport_problem(transport) or address_problem(address):
        return
    argv = transport.split() + [address, "xl", "list"]
    said = subprocess.run(["sh", "-c", "printf '%s\\0' " + " ".join(argv)], capture_output=True, text=True)
    assert said.returncode == 0 and said.stdout.split("\0")[:-1] == argv
