"""The agents against any parameter values (issue 9 §2, §5), in-process and cheap.

On a host with neither the tools nor their kernel side (an empty host root, no PATH),
whatever bytes the parameters hold: stop answers 0 and a probe 7 (nothing can run
there), validate-all 0 or 6 with a reason, and nothing raises, hangs or logs its way
into an error; the names the agents accept are exactly those xenha.names accepts.
"""

import io

import pytest
from hypothesis import example, given, settings, strategies as st

from xenha import names
from xenha.agents import agent_class
from xenha.ocf import codes
from xenha.ocf.agent import main

# what Pacemaker can put in an OCF_RESKEY_ variable: any bytes but NUL, which
# process_environ decodes with surrogateescape
RAW = st.binary(max_size=24).map(lambda b: b.replace(b"\0", b"").decode("utf-8", "surrogateescape"))
TEXT = st.one_of(RAW, st.text(max_size=24), st.sampled_from(
    ["", "all", "Domain-0", "a--incoming", "b--migratedaway", "0", "-x", "../../etc", "snapshot1", "x_tmeta",
     "vg\u043e", 'a" b="c', "a\\", "a b", "r0", "vm_shaolin", "10.0.0.1;reboot", "$(id)"]))
PARAMETERS = {
    "xen-domain": ("name", "config", "migration_transport", "migration_address_attribute", "shutdown_timeout",
                   "shutdown_mode", "monitor_scripts", "xl"),
    "lvm-volume": ("vg", "lvs", "ownership", "tag", "activation_mode"),
    "drbd-resource": ("drbd_resource", "drbdconf", "promotion_scores", "wfc_timeout", "drbd_version", "drbdadm"),
}
SETTINGS = settings(max_examples=150, derandomize=True, deadline=None)


@pytest.fixture(scope="module")
def bare_host(tmp_path_factory):
    root = tmp_path_factory.mktemp("bare-host")
    (root / "rsctmp").mkdir()
    return root


def run(agent, action, params, root, interval=None):
    environ = {"PATH": str(root / "no-bin"), "XENHA_HOST_ROOT": str(root), "HA_RSCTMP": str(root / "rsctmp"),
               "HA_LOGFACILITY": "daemon", "OCF_RESOURCE_INSTANCE": "res", "OCF_RESKEY_CRM_meta_timeout": "5000"}
    if interval is not None:
        environ["OCF_RESKEY_CRM_meta_interval"] = str(interval)
    environ.update({f"OCF_RESKEY_{key}": value for key, value in params.items()})
    out, err = io.StringIO(), io.StringIO()
    rc = main(agent_class(agent), [agent, action], environ, out, err)
    return rc, err.getvalue()


def parameters(agent):
    return st.dictionaries(st.sampled_from(PARAMETERS[agent]), TEXT, max_size=4)


@pytest.mark.parametrize("agent", sorted(PARAMETERS))
def test_any_parameters_on_a_host_without_the_tools(bare_host, agent):
    @SETTINGS
    @given(parameters(agent))
    def check(params):
        for action, interval, allowed in (("stop", None, {codes.SUCCESS}), ("monitor", 0, {codes.NOT_RUNNING}),
                                          ("validate-all", None, {codes.SUCCESS, codes.ERR_CONFIGURED})):
            rc, err = run(agent, action, params, bare_host, interval)
            assert rc in allowed, (action, params, err)
            assert "internal error" not in err, err
            if rc not in (codes.SUCCESS, codes.NOT_RUNNING):
                assert "ocf-exit-reason:" in err
    check()


@SETTINGS
@given(TEXT)
@example("shaolin")
@example("web.example-1")
def test_xen_accepts_exactly_the_domain_names_xl_cannot_misread(bare_host, name):
    rc, err = run("xen-domain", "validate-all", {"name": name, "config": "/etc/xen/x.cfg"}, bare_host)
    assert (rc == codes.SUCCESS) == (name == "" or names.check_domain_name(name) is None), err   # "": unset
    if rc:
        assert "ocf-exit-reason:parameter name=" in err


@SETTINGS
@given(TEXT, st.lists(TEXT, max_size=3))
@example("vg0", ["vm_shaolin", "other"])
def test_lvm_accepts_exactly_the_names_lvm_accepts(bare_host, vg, lvs):
    spaced = [lv for lv in lvs if lv.split() == [lv] and "," not in lv]   # lvs is a list of words
    rc, err = run("lvm-volume", "validate-all", {"vg": vg, "lvs": " ".join(spaced)}, bare_host)
    good = bool(vg) and names.check_vg_name(vg) is None and all(names.check_lv_name(lv) is None for lv in spaced)
    assert (rc == codes.SUCCESS) == good, err


@SETTINGS
@given(TEXT)
@example("r0")
@example("all")
def test_drbd_accepts_exactly_the_resource_names_drbdadm_reads_as_one(bare_host, resource):
    rc, err = run("drbd-resource", "validate-all", {"drbd_resource": resource}, bare_host)
    assert (rc == codes.SUCCESS) == (bool(resource) and names.check_drbd_resource_name(resource) is None), err
