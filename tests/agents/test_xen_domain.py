"""ocf:xenha:xen-domain against the simulated xl on two hosts, action by action.

Every call goes through the installed agent with the environment pacemaker-execd
gives it (xenha_lab.sim.xen.hosts.SimHosts.run_agent).
"""

import os
import time

import pytest

from xenha.ocf import codes

TRANSPORT = "xenha-sim-ssh -o BatchMode=yes"


@pytest.fixture
def vm(sim_hosts, shaolin_config):
    """Run the agent for resource `shaolin` (legacy howto config) on a host."""
    def call(node, action, timeout_s=20.0, interval_s=None, params=None, meta=None, **kw):
        merged = {"config": shaolin_config, "migration_transport": TRANSPORT}
        merged.update(params or {})
        return sim_hosts.run_agent(node, action, merged, meta, instance="shaolin", timeout_s=timeout_s,
                                   interval_s=interval_s, **kw)
    call.hosts = sim_hosts
    return call


def domains(hosts, node):
    from xenha.tools.xl import parse_list
    result = hosts.xl(node, "list")
    assert result.returncode == 0, result.stderr
    return {d.name: d for d in parse_list(result.stdout)}


def memory(hosts, node, name):
    record = hosts.host(node).find(name)
    return dict(line.split("=", 1) for line in open(record.path(".mem")).read().split())


def test_lifecycle_start_monitor_probe_stop(vm):
    assert vm("mk1", "monitor").rc == codes.NOT_RUNNING                 # probe, stopped
    assert vm("mk1", "start").rc == codes.SUCCESS
    assert domains(vm.hosts, "mk1")["shaolin"].active
    assert vm("mk1", "monitor", interval_s=10).rc == codes.SUCCESS
    assert vm("mk1", "monitor").rc == codes.SUCCESS                     # probe, running
    assert vm("mk1", "start").rc == codes.SUCCESS                       # idempotent
    assert len([d for d in domains(vm.hosts, "mk1") if d.startswith("shaolin")]) == 1
    stop = vm("mk1", "stop")
    assert stop.rc == codes.SUCCESS and stop.seconds < 5                # graceful, quick
    assert "shaolin" not in domains(vm.hosts, "mk1")
    assert vm("mk1", "stop").rc == codes.SUCCESS                        # idempotent
    assert vm("mk1", "monitor", interval_s=10).rc == codes.NOT_RUNNING


def test_modern_config_and_name_parameter(vm, shaolin_xl_config):
    params = {"config": shaolin_xl_config, "name": "web1"}
    assert vm("mk1", "start", params=params).rc == codes.SUCCESS
    assert "web1" in domains(vm.hosts, "mk1"), "the name parameter overrides name= in the file"
    assert vm("mk1", "monitor", interval_s=10, params=params).rc == codes.SUCCESS
    assert vm("mk1", "stop", params=params).rc == codes.SUCCESS


def test_monitor_does_not_need_the_config_file_after_start(vm, tmp_path):
    config = tmp_path / "moving.cfg"
    config.write_text("name = 'moving'\nkernel = '/k'\nmemory = 128\n")
    params = {"config": str(config)}
    assert vm("mk1", "start", params=params).rc == codes.SUCCESS
    config.unlink()   # shared storage gone (resource-agents#856)
    assert vm("mk1", "monitor", interval_s=10, params=params).rc == codes.SUCCESS
    assert vm("mk1", "stop", params=params).rc == codes.SUCCESS
    assert "moving" not in domains(vm.hosts, "mk1")


@pytest.mark.parametrize("setup,words", [
    ("pause", "paused"),
    ("crash-preserve", "crashed"),
])
def test_present_but_not_running_is_an_error_not_stopped(vm, setup, words, tmp_path):
    config = tmp_path / "p.cfg"
    config.write_text("name = 'shaolin'\nkernel = '/k'\non_crash = 'preserve'\n")
    assert vm("mk1", "start", params={"config": str(config)}).rc == codes.SUCCESS
    host = vm.hosts.host("mk1")
    if setup == "pause":
        assert vm.hosts.xl("mk1", "pause", "shaolin").returncode == 0
    else:
        host.kill_guest(host.find("shaolin"))
        time.sleep(0.2)
    for interval in (10, None):
        result = vm("mk1", "monitor", interval_s=interval)
        assert result.rc == codes.ERR_GENERIC, result
        assert words in result.exit_reason
    assert vm("mk1", "stop").rc == codes.SUCCESS
    assert "shaolin" not in domains(vm.hosts, "mk1")


def test_vanished_guest_is_reported_stopped(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    host = vm.hosts.host("mk1")
    host.kill_guest(host.find("shaolin"))   # on_crash default: destroy
    result = vm("mk1", "monitor", interval_s=10)
    assert result.rc == codes.NOT_RUNNING
    assert result.seconds >= 2.5, "a domain started here is looked for again before it is declared gone"


def test_rebooting_guest_is_not_declared_stopped(vm):
    vm.hosts.host("mk1").set_fault("reboot-gap", "1.2")
    assert vm("mk1", "start").rc == codes.SUCCESS
    time.sleep(0.3)
    assert vm.hosts.xl("mk1", "reboot", "shaolin").returncode == 0
    time.sleep(0.3)
    assert "shaolin" not in domains(vm.hosts, "mk1"), "the reboot window is open"
    assert vm("mk1", "monitor", interval_s=10).rc == codes.SUCCESS      # resource-agents#314


def test_toolstack_failure_is_an_error_never_not_running(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    vm.hosts.host("mk1").set_fault("toolstack", "down")
    for interval in (10, None):
        result = vm("mk1", "monitor", interval_s=interval)
        assert result.rc == codes.ERR_GENERIC
        assert "cannot list domains" in result.exit_reason
    stop = vm("mk1", "stop", timeout_s=6)
    assert stop.rc == codes.ERR_GENERIC, "stop must not claim success when it cannot see"
    vm.hosts.host("mk1").set_fault("toolstack", None)
    assert vm("mk1", "stop").rc == codes.SUCCESS


def test_hung_toolstack_is_bounded_by_the_operation_timeout(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    vm.hosts.host("mk1").set_fault("hang", "list")
    result = vm("mk1", "monitor", interval_s=10, timeout_s=4)
    assert result.rc == codes.ERR_GENERIC and result.seconds < 4
    assert result.exit_reason
    vm.hosts.host("mk1").set_fault("hang", None)


def test_create_failure_gives_xl_reason(vm):
    vm.hosts.host("mk1").set_fault("create", "fail")
    result = vm("mk1", "start")
    assert result.rc == codes.ERR_GENERIC
    assert result.exit_reason == ("xl create exited with 3: libxl: error: libxl_domain.c:1064:"
                                  "domain_destroy_cb: Domain 1:Destruction of domain failed")


def test_domain_that_dies_while_starting(vm, tmp_path):
    config = tmp_path / "c.cfg"
    config.write_text("name = 'shaolin'\nkernel = '/k'\non_crash = 'preserve'\n")
    vm.hosts.host("mk1").set_fault("create", "crash")
    result = vm("mk1", "start", params={"config": str(config)})
    assert result.rc == codes.ERR_GENERIC and "failed while starting" in result.exit_reason
    assert "shaolin" not in domains(vm.hosts, "mk1"), "a failed start leaves no domain behind"


def test_slow_create_is_bounded(vm):
    vm.hosts.host("mk1").set_fault("create", "slow:30")
    result = vm("mk1", "start", timeout_s=5)
    assert result.rc == codes.ERR_GENERIC and result.seconds < 5
    assert "timed out" in result.exit_reason


def test_start_refuses_a_leftover_copy(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    assert vm.hosts.xl("mk1", "pause", "shaolin").returncode == 0
    result = vm("mk1", "start")
    assert result.rc == codes.ERR_GENERIC and "present but not running" in result.exit_reason


def test_stop_destroys_a_guest_that_ignores_shutdown(vm):
    vm.hosts.host("mk1").set_fault("guest-shutdown", "ignore")
    assert vm("mk1", "start").rc == codes.SUCCESS
    result = vm("mk1", "stop", params={"shutdown_timeout": "1"})
    assert result.rc == codes.SUCCESS and 1.0 <= result.seconds < 5
    assert "did not shut down within 1s" in result.stderr
    assert "shaolin" not in domains(vm.hosts, "mk1")


def test_stop_without_explicit_shutdown_timeout_keeps_time_for_destroy(vm):
    vm.hosts.host("mk1").set_fault("guest-shutdown", "ignore")
    assert vm("mk1", "start").rc == codes.SUCCESS
    result = vm("mk1", "stop", timeout_s=9)
    assert result.rc == codes.SUCCESS and result.seconds < 9
    assert "shaolin" not in domains(vm.hosts, "mk1")


def test_shutdown_timeout_zero_destroys_at_once(vm):
    vm.hosts.host("mk1").set_fault("guest-shutdown", "slow:30")
    assert vm("mk1", "start").rc == codes.SUCCESS
    result = vm("mk1", "stop", params={"shutdown_timeout": "0"})
    assert result.rc == codes.SUCCESS and result.seconds < 3


def test_slow_guest_gets_its_graceful_shutdown(vm):
    vm.hosts.host("mk1").set_fault("guest-shutdown", "slow:1.5")
    assert vm("mk1", "start").rc == codes.SUCCESS
    result = vm("mk1", "stop")
    assert result.rc == codes.SUCCESS and result.seconds >= 1.4
    assert "destroying" not in result.stderr


def test_hung_shutdown_command_still_stops_within_timeout(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    vm.hosts.host("mk1").set_fault("hang", "shutdown")
    result = vm("mk1", "stop", timeout_s=8)   # the hung request may take 2/3 of it, less the destroy reserve
    assert result.rc == codes.SUCCESS and result.seconds < 8
    assert "shaolin" not in domains(vm.hosts, "mk1")


def test_destroy_failure_is_reported(vm):
    vm.hosts.host("mk1").set_fault("guest-shutdown", "ignore")
    assert vm("mk1", "start").rc == codes.SUCCESS
    vm.hosts.host("mk1").set_fault("destroy", "fail")
    result = vm("mk1", "stop", timeout_s=6, params={"shutdown_timeout": "0"})
    assert result.rc == codes.ERR_GENERIC and result.seconds < 6
    assert "still present after destroy" in result.exit_reason
    vm.hosts.host("mk1").set_fault("destroy", None)


def test_dying_domain_is_waited_for(vm):
    vm.hosts.host("mk1").set_fault("destroy", "slow:1")
    vm.hosts.host("mk1").set_fault("guest-shutdown", "ignore")
    assert vm("mk1", "start").rc == codes.SUCCESS
    result = vm("mk1", "stop", params={"shutdown_timeout": "0"})
    assert result.rc == codes.SUCCESS and result.seconds >= 0.9


@pytest.mark.parametrize("mode,expect_graceful", [("pv", False), ("pv-or-acpi", True), ("acpi", True)])
def test_shutdown_modes_for_hvm_without_pv_drivers(vm, tmp_path, mode, expect_graceful):
    config = tmp_path / "hvm.cfg"
    config.write_text("name = 'shaolin'\ntype = 'hvm'\nsim_pv_drivers = 0\n")
    params = {"config": str(config), "shutdown_mode": mode}
    assert vm("mk1", "start", params=params).rc == codes.SUCCESS
    result = vm("mk1", "stop", params=params)
    assert result.rc == codes.SUCCESS
    assert ("destroying instead" not in result.stderr) == expect_graceful, result.stderr
    assert "shaolin" not in domains(vm.hosts, "mk1")


def test_acpi_mode_on_a_pv_guest_ends_in_destroy(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    result = vm("mk1", "stop", params={"shutdown_mode": "acpi", "shutdown_timeout": "1"})
    assert result.rc == codes.SUCCESS and "did not shut down" in result.stderr


def test_live_migration_with_migrate_to_and_migrate_from(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    time.sleep(0.6)
    boot = memory(vm.hosts, "mk1", "shaolin")["boot_id"]
    meta = {"migrate_source": "mk1", "migrate_target": "mk2"}
    to = vm("mk1", "migrate_to", meta=meta)
    assert to.rc == codes.SUCCESS, to
    frm = vm("mk2", "migrate_from", meta=meta)
    assert frm.rc == codes.SUCCESS, frm
    assert vm("mk1", "stop").rc == codes.SUCCESS                 # Pacemaker's stop on the source
    assert "shaolin" not in domains(vm.hosts, "mk1")
    assert domains(vm.hosts, "mk2")["shaolin"].active
    assert memory(vm.hosts, "mk2", "shaolin")["boot_id"] == boot, "the same guest, not a restart"
    assert vm("mk2", "monitor", interval_s=10).rc == codes.SUCCESS
    assert vm("mk1", "monitor").rc == codes.NOT_RUNNING


def test_migration_address_from_a_node_attribute(vm, tmp_path):
    """The real crm_attribute reads the attribute from an offline CIB (CIB_file)."""
    import subprocess
    from conftest import need_tool
    need_tool("cibadmin")
    cib = tmp_path / "cib.xml"
    env = dict(os.environ, CIB_file=str(cib))
    cib.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
    for nodeid, name in ((1, "mk1"), (2, "mk2")):
        subprocess.run(["cibadmin", "-C", "-o", "nodes", "-X", f'<node id="{nodeid}" uname="{name}"/>'],
                       env=env, check=True)
    subprocess.run(["crm_attribute", "--type", "nodes", "--node", "mk2", "--name", "migration_ip",
                    "--update", "10.213.0.12"], env=env, check=True)
    vm.hosts.add_address("10.213.0.12", "mk2")
    assert vm("mk1", "start").rc == codes.SUCCESS
    meta = {"migrate_source": "mk1", "migrate_target": "mk2"}
    params = {"node_ip_attribute": "migration_ip"}   # the heartbeat agent's name still works
    result = vm("mk1", "migrate_to", meta=meta, params=params, extra_env={"CIB_file": str(cib)})
    assert result.rc == codes.SUCCESS, result
    assert "migrating shaolin to mk2 (10.213.0.12)" in result.stderr
    assert "deprecated" in result.stderr
    missing = vm("mk2", "migrate_to", meta={"migrate_source": "mk2", "migrate_target": "mk1"},
                 params=params, extra_env={"CIB_file": str(cib)})
    assert missing.rc == codes.ERR_GENERIC
    assert missing.exit_reason == "node attribute migration_ip is not set on mk1"


def test_failure_before_point_of_no_return_keeps_domain_on_source(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    meta = {"migrate_source": "mk1", "migrate_target": "mk2"}
    for fault in ("fail-transfer", "fail-start"):
        vm.hosts.host("mk2").set_fault("migrate-receive", fault)
        result = vm("mk1", "migrate_to", meta=meta)
        assert result.rc == codes.ERR_GENERIC
        assert "before the point of no return" in result.exit_reason and "still runs here" in result.exit_reason
        assert vm("mk1", "monitor", interval_s=10).rc == codes.SUCCESS
        assert vm("mk2", "monitor").rc == codes.NOT_RUNNING


@pytest.mark.parametrize("node,fault,source_probe,target_probe", [
    ("mk1", ("migrate", "lose-after-go"), codes.ERR_GENERIC, codes.SUCCESS),
    ("mk2", ("migrate-receive", "die-after-go"), codes.ERR_GENERIC, codes.ERR_GENERIC),
])
def test_failure_in_final_handshake_is_undefined_and_probes_tell_the_truth(vm, node, fault, source_probe,
                                                                           target_probe):
    assert vm("mk1", "start").rc == codes.SUCCESS
    vm.hosts.host(node).set_fault(*fault)
    meta = {"migrate_source": "mk1", "migrate_target": "mk2"}
    result = vm("mk1", "migrate_to", meta=meta)
    assert result.rc == codes.ERR_GENERIC
    assert "final handshake" in result.exit_reason and "undefined" in result.exit_reason
    source = vm("mk1", "monitor")
    target = vm("mk2", "monitor")
    assert (source.rc, target.rc) == (source_probe, target_probe)
    assert "shaolin--migratedaway" in source.exit_reason
    # Pacemaker now stops both sides (a failed migrate_to counts as active on both).
    assert vm("mk1", "stop").rc == codes.SUCCESS
    assert vm("mk2", "stop").rc == codes.SUCCESS
    assert not [d for d in domains(vm.hosts, "mk1") if d.startswith("shaolin")]
    assert not [d for d in domains(vm.hosts, "mk2") if d.startswith("shaolin")]


def test_preflight_refuses_when_target_already_has_the_domain(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    assert vm("mk2", "start").rc == codes.SUCCESS      # e.g. started by hand: must not migrate on top
    result = vm("mk1", "migrate_to", meta={"migrate_source": "mk1", "migrate_target": "mk2"})
    assert result.rc == codes.ERR_GENERIC
    assert result.exit_reason == "refusing to migrate: mk2 already has shaolin running"


def test_preflight_reports_transport_problems(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    vm.hosts.set_ssh_fault("mk2", "host-key")
    result = vm("mk1", "migrate_to", meta={"migrate_source": "mk1", "migrate_target": "mk2"})
    assert result.rc == codes.ERR_GENERIC
    assert result.exit_reason.startswith("preflight: cannot reach xl on mk2")
    assert "Host key verification failed." in result.exit_reason
    assert domains(vm.hosts, "mk1")["shaolin"].active


def test_migrate_to_without_preflight_reports_xl_failure(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    meta = {"migrate_source": "mk1", "migrate_target": "nowhere"}
    result = vm("mk1", "migrate_to", meta=meta, params={"migration_preflight": "false"})
    assert result.rc == codes.ERR_GENERIC
    assert "migration to nowhere failed" in result.exit_reason
    assert domains(vm.hosts, "mk1")["shaolin"].active


def test_migrate_to_checks_first(vm):
    no_target = vm("mk1", "migrate_to")
    assert no_target.rc == codes.ERR_GENERIC and "CRM_meta_migrate_target" in no_target.exit_reason
    not_here = vm("mk1", "migrate_to", meta={"migrate_source": "mk1", "migrate_target": "mk2"})
    assert not_here.rc == codes.ERR_GENERIC and "not running here" in not_here.exit_reason


def test_migrate_to_timeout_is_bounded_and_undefined(vm):
    assert vm("mk1", "start").rc == codes.SUCCESS
    vm.hosts.host("mk1").set_fault("migrate", "hang")
    result = vm("mk1", "migrate_to", meta={"migrate_source": "mk1", "migrate_target": "mk2"}, timeout_s=8)
    assert result.rc == codes.ERR_GENERIC and result.seconds < 8
    assert result.exit_reason.startswith("xl migrate to mk2 timed out, state undefined")


def test_migrate_from_without_arrival_fails(vm):
    result = vm("mk2", "migrate_from", meta={"migrate_source": "mk1", "migrate_target": "mk2"}, timeout_s=4)
    assert result.rc == codes.ERR_GENERIC and result.seconds < 4
    assert "not running here" in result.exit_reason


def test_migrate_from_refuses_a_paused_arrival(vm):
    assert vm("mk2", "start").rc == codes.SUCCESS
    assert vm.hosts.xl("mk2", "pause", "shaolin").returncode == 0
    result = vm("mk2", "migrate_from", meta={"migrate_source": "mk1", "migrate_target": "mk2"}, timeout_s=3)
    assert result.rc == codes.ERR_GENERIC and "paused" in result.exit_reason


def test_monitor_scripts_at_check_level_10(vm, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("#!/bin/sh\n[ \"$1\" = shaolin ]\n")
    bad.write_text("#!/bin/sh\necho 'http check failed' >&2\nexit 1\n")
    for script in (good, bad):
        script.chmod(0o755)
    assert vm("mk1", "start").rc == codes.SUCCESS
    assert vm("mk1", "monitor", interval_s=60, check_level=10, params={"monitor_scripts": str(good)}).rc == 0
    failing = vm("mk1", "monitor", interval_s=60, check_level=10, params={"monitor_scripts": f"{good} {bad}"})
    assert failing.rc == codes.ERR_GENERIC and "http check failed" in failing.exit_reason
    level0 = vm("mk1", "monitor", interval_s=10, params={"monitor_scripts": str(bad)})
    assert level0.rc == codes.SUCCESS, "scripts run only at level 10"
    missing = vm("mk1", "monitor", interval_s=60, check_level=10, params={"monitor_scripts": "/nonexistent"})
    assert missing.rc == codes.ERR_GENERIC and "not found" in missing.exit_reason


def test_validate_all_levels(vm, tmp_path):
    assert vm("mk1", "validate-all").rc == codes.SUCCESS
    missing = {"config": str(tmp_path / "nope.cfg")}
    assert vm("mk1", "validate-all", params=missing).rc == codes.SUCCESS, "level 0: parameters only"
    deep = vm("mk1", "validate-all", params=missing, check_level=10)
    assert deep.rc == codes.ERR_INSTALLED and "does not exist on this node" in deep.exit_reason
    bad_disk = tmp_path / "bad.cfg"
    bad_disk.write_text("name = 'x'\ndisk = [ 'vdev=xvda,access=sideways,target=/dev/x' ]\n")
    result = vm("mk1", "validate-all", params={"config": str(bad_disk)}, check_level=10)
    assert result.rc == codes.ERR_CONFIGURED
    assert "config parsing error in disk specification" in result.exit_reason
    assert vm("mk1", "validate-all", params={"shutdown_mode": "yank"}).rc == codes.ERR_CONFIGURED


def test_reload_agent_accepts_new_values(vm):
    assert vm("mk1", "reload-agent", params={"shutdown_timeout": "30"}).rc == codes.SUCCESS
    bad = vm("mk1", "reload-agent", params={"shutdown_timeout": "soon"})
    assert bad.rc == codes.ERR_CONFIGURED and "shutdown_timeout='soon'" in bad.exit_reason


def test_unknown_action(vm):
    assert vm("mk1", "promote").rc == codes.ERR_UNIMPLEMENTED


# --- issue 9 §3: no value reaches xl's config parser or a shell unescaped -----------------------
def test_a_quote_in_the_name_never_sets_other_xl_keys(vm):
    """`xl create FILE name="…"` with a `"` in the name set any key (here on_crash), the
    domain came up under another name, start failed and stop answered 0 with it running."""
    params = {"name": 'shaolin" on_crash="preserve'}
    result = vm("mk1", "start", params=params)
    assert result.rc == codes.ERR_CONFIGURED and "has characters xl refuses" in result.exit_reason
    assert list(domains(vm.hosts, "mk1")) == ["Domain-0"]
    assert vm("mk1", "stop", params=params).rc == codes.SUCCESS
    assert list(domains(vm.hosts, "mk1")) == ["Domain-0"]


def test_a_name_from_the_config_file_is_checked_too(vm, tmp_path):
    config = tmp_path / "q.cfg"
    config.write_text("name = 'shao\"lin'\nkernel = '/k'\n")
    result = vm("mk1", "start", params={"config": str(config)})
    assert result.rc == codes.ERR_CONFIGURED and f"name= in {config}" in result.exit_reason
    assert list(domains(vm.hosts, "mk1")) == ["Domain-0"]


@pytest.mark.parametrize("how", ["node-attribute", "target-name"])
def test_the_migration_address_never_reaches_a_shell(vm, tmp_path, how):
    """The preflight ran `sh -c "<transport> <address> xl list"`, and xl migrate hands the
    address to `sh -c` too: an address is one plain word or the migration is refused."""
    import subprocess
    from conftest import need_tool
    need_tool("cibadmin")
    witness = tmp_path / "pwned"
    hostile = f"mk2;touch {witness}"
    cib = tmp_path / "cib.xml"
    env = dict(os.environ, CIB_file=str(cib))
    cib.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
    subprocess.run(["cibadmin", "-C", "-o", "nodes", "-X", '<node id="2" uname="mk2"/>'], env=env, check=True)
    subprocess.run(["crm_attribute", "--type", "nodes", "--node", "mk2", "--name", "migration_ip",
                    "--update", hostile], env=env, check=True)
    assert vm("mk1", "start").rc == codes.SUCCESS
    if how == "node-attribute":
        meta, params = {"migrate_source": "mk1", "migrate_target": "mk2"}, {"migration_address_attribute": "migration_ip"}
    else:
        meta, params = {"migrate_source": "mk1", "migrate_target": hostile}, {}
    for preflight in ("true", "false"):
        result = vm("mk1", "migrate_to", meta=meta, params=dict(params, migration_preflight=preflight),
                    extra_env={"CIB_file": str(cib)})
        assert result.rc == codes.ERR_GENERIC
        what = "address" if how == "node-attribute" else "target"
        assert result.exit_reason.startswith(f"migration {what} has characters that are not part of an "
                                             "address: ' ', '/', ';'"), result.exit_reason
    assert not witness.exists(), "the address was run by a shell"
    assert domains(vm.hosts, "mk1")["shaolin"].active


def test_a_transport_that_is_a_shell_fragment_is_refused(vm, tmp_path):
    witness = tmp_path / "pwned"
    assert vm("mk1", "start").rc == codes.SUCCESS
    for transport in (f"xenha-sim-ssh; touch {witness}", f"xenha-sim-ssh $(touch {witness})",
                      "X=1 xenha-sim-ssh", "xenha-sim-ssh `id`"):
        result = vm("mk1", "migrate_to", meta={"migrate_source": "mk1", "migrate_target": "mk2"},
                    params={"migration_transport": transport})
        assert result.rc == codes.ERR_CONFIGURED, (transport, result.stderr)
        assert "migration_transport" in result.exit_reason
    assert not witness.exists()
    assert domains(vm.hosts, "mk1")["shaolin"].active
