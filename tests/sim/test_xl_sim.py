"""The simulated xl answers like xl 4.17: formats, messages, exit codes, migration."""

import subprocess
import time

import pytest

from conftest import sample
from xenha.hypervisor import domain as dom
from xenha.tools.xl import parse_list

HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"


@pytest.fixture
def hosts(sim_hosts):
    return sim_hosts


def states(hosts, node):
    result = hosts.xl(node, "list")
    assert result.returncode == 0, result.stderr
    return {d.name: d for d in parse_list(result.stdout)}


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def create(hosts, node, config, *extra):
    result = hosts.xl(node, "create", config, *extra)
    assert result.returncode == 0, result.stderr
    return result


def test_list_format(hosts, shaolin_config):
    empty = hosts.xl("mk1", "list")
    lines = empty.stdout.splitlines()
    assert lines[0] == HEADER and lines[1].startswith("Domain-0  ") and len(lines) == 2
    create(hosts, "mk1", shaolin_config)
    row = hosts.xl("mk1", "list").stdout.splitlines()[2]
    # printf("%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f")
    assert row[:40] == "shaolin".ljust(40) and row[40] == " "
    assert row[41:46] == "    1" and row[47:52] == "  512" and row[53:58] == "    1"
    assert row[58:63] == "     " and row[69:71] == "  " and len(row) == 79
    assert dom.state_from_letters(row[63:69]) in dom.ACTIVE_STATES


def test_create_messages_and_errors(hosts, shaolin_config, tmp_path):
    created = create(hosts, "mk1", shaolin_config)
    assert created.stderr == f"Parsing config from {shaolin_config}\n" and created.stdout == ""
    again = hosts.xl("mk1", "create", shaolin_config)
    assert again.returncode == 3 and 'Domain with name "shaolin" already exists.' in again.stderr
    missing = hosts.xl("mk1", "create", str(tmp_path / "nope.cfg"))
    assert missing.returncode == 3
    assert missing.stderr == f"Failed to read config file: {tmp_path / 'nope.cfg'}: No such file or directory\n"
    (tmp_path / "noname.cfg").write_text("memory = 64\nkernel = '/k'\n")
    noname = hosts.xl("mk1", "create", str(tmp_path / "noname.cfg"))
    assert noname.returncode == 1 and "Domain name must be specified." in noname.stderr
    (tmp_path / "nokernel.cfg").write_text("name = 'x'\n")
    nokernel = hosts.xl("mk1", "create", str(tmp_path / "nokernel.cfg"))
    assert nokernel.returncode == 1 and "Neither kernel nor bootloader specified" in nokernel.stderr
    (tmp_path / "broken.cfg").write_text('name = "broken\nmemory = 512\n')
    broken = hosts.xl("mk1", "create", str(tmp_path / "broken.cfg"))
    assert broken.returncode == 1
    assert "config parsing error near `\"broken': lexical error" in broken.stderr
    assert "Failed to parse config: Invalid argument" in broken.stderr


def test_create_name_override_and_paused(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config, 'name="other"', "-p")
    domains = states(hosts, "mk1")
    assert "other" in domains and "shaolin" not in domains
    assert domains["other"].state == dom.PAUSED
    assert hosts.xl("mk1", "unpause", "other").returncode == 0
    assert states(hosts, "mk1")["other"].active
    assert hosts.xl("mk1", "pause", "other").returncode == 0
    assert states(hosts, "mk1")["other"].state == dom.PAUSED


def test_name_lookup_errors(hosts):
    unknown = hosts.xl("mk1", "list", "nosuch")
    assert (unknown.returncode, unknown.stderr) == (1, "nosuch is an invalid domain identifier (rc=-6)\n")
    numeric = hosts.xl("mk1", "list", "99")
    assert (numeric.returncode, numeric.stderr) == (1, "Error: Domain '99' does not exist.\n")
    destroy = hosts.xl("mk1", "destroy", "99")
    assert destroy.returncode == 1 and destroy.stderr.endswith("destroy failed (rc=-21)\n")


def test_command_line_errors(hosts):
    bad = hosts.xl("mk1", "list", "-z")
    assert (bad.returncode, bad.stderr) == (2, "option `z' not supported.\n")
    few = hosts.xl("mk1", "destroy")
    assert few.returncode == 2 and few.stderr.startswith("'xl destroy' requires at least 1 argument.")
    unknown = hosts.xl("mk1", "frobnicate")
    assert (unknown.returncode, unknown.stderr) == (1, "command not implemented\n")


def test_toolstack_down_prints_what_xl_prints_without_a_hypervisor(hosts):
    hosts.host("mk1").set_fault("toolstack", "down")
    result = hosts.xl("mk1", "list")
    assert result.returncode == 1 and result.stdout == ""
    real = sample("xen_01_xl_nohv.txt").split("$ /usr/lib/xen-4.17/bin/xl list\n", 1)[1].split("[rc=1]")[0]
    assert result.stderr == real


def test_hang_fault_hangs_until_killed(hosts):
    hosts.host("mk1").set_fault("hang", "list")
    with pytest.raises(subprocess.TimeoutExpired):
        hosts.xl("mk1", "list", timeout=1.0)


def test_guest_crash_follows_on_crash(hosts, shaolin_config, shaolin_xl_config):
    create(hosts, "mk1", shaolin_config)            # on_crash default: destroy
    create(hosts, "mk1", shaolin_xl_config, 'name="keeper"')   # on_crash = "preserve"
    host = hosts.host("mk1")
    for record in host.domains():
        host.kill_guest(record)
    domains = wait_for(lambda: (lambda d: "shaolin" not in d and d or None)(states(hosts, "mk1")))
    assert "shaolin" not in domains
    assert domains["keeper"].letters == "--psc-" and domains["keeper"].state == dom.CRASHED


def test_guest_crash_with_restart_comes_back_as_new_domain(hosts, tmp_path):
    config = tmp_path / "r.cfg"
    config.write_text("name = 'r'\nkernel = '/k'\non_crash = 'restart'\n")
    create(hosts, "mk1", str(config))
    first = states(hosts, "mk1")["r"].domid
    hosts.host("mk1").kill_guest(hosts.host("mk1").find("r"))
    again = wait_for(lambda: (lambda d: d.get("r") if d.get("r") and d["r"].domid != first else None)(
        states(hosts, "mk1")))
    assert again is not None and again.active


def test_shutdown_and_wait(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    result = hosts.xl("mk1", "shutdown", "-w", "shaolin")
    assert result.returncode == 0
    assert result.stderr == "Shutting down domain 1\nWaiting for 1 domains\nDomain 1 has been destroyed\n"
    assert "shaolin" not in states(hosts, "mk1")


def test_hvm_without_pv_drivers_needs_acpi_fallback(hosts, tmp_path):
    config = tmp_path / "hvm.cfg"
    config.write_text("name = 'win'\ntype = 'hvm'\nsim_pv_drivers = 0\n")
    create(hosts, "mk1", str(config))
    plain = hosts.xl("mk1", "shutdown", "win")
    assert plain.returncode == 1
    assert plain.stderr == ("Shutting down domain 1\n"
                            "PV control interface not available: external graceful shutdown not possible.\n"
                            "Use \"-F\" to fallback to ACPI power event.\n"
                            "shutdown failed (rc=-10)\n")
    forced = hosts.xl("mk1", "shutdown", "-F", "win")
    assert forced.returncode == 0
    assert "PV control interface not available: sending ACPI power button event." in forced.stderr
    assert wait_for(lambda: "win" not in states(hosts, "mk1"))


def test_trigger_power_only_reaches_hvm_guests(hosts, shaolin_config, tmp_path):
    create(hosts, "mk1", shaolin_config)
    assert hosts.xl("mk1", "trigger", "shaolin", "power").returncode == 0
    time.sleep(0.3)
    assert "shaolin" in states(hosts, "mk1"), "a PV guest has no ACPI button"
    bad = hosts.xl("mk1", "trigger", "shaolin", "explode")
    assert (bad.returncode, bad.stderr) == (1, 'Invalid trigger "explode"\n')


def test_guest_that_ignores_shutdown_and_destroy(hosts, shaolin_config):
    hosts.host("mk1").set_fault("guest-shutdown", "ignore")
    create(hosts, "mk1", shaolin_config)
    assert hosts.xl("mk1", "shutdown", "shaolin").returncode == 0
    time.sleep(0.5)
    assert states(hosts, "mk1")["shaolin"].active
    hosts.host("mk1").set_fault("destroy", "fail")
    failed = hosts.xl("mk1", "destroy", "shaolin")
    assert failed.returncode == 1 and failed.stderr.endswith("destroy failed (rc=-3)\n")
    hosts.host("mk1").set_fault("destroy", None)
    assert hosts.xl("mk1", "destroy", "shaolin").returncode == 0
    assert "shaolin" not in states(hosts, "mk1")


def test_slow_destroy_shows_dying(hosts, shaolin_config):
    hosts.host("mk1").set_fault("destroy", "slow:1")
    create(hosts, "mk1", shaolin_config)
    assert hosts.xl("mk1", "destroy", "shaolin").returncode == 0
    assert states(hosts, "mk1")["shaolin"].state == dom.DYING
    assert wait_for(lambda: "shaolin" not in states(hosts, "mk1"))


def test_info_format(hosts):
    lines = hosts.xl("mk1", "info").stdout.splitlines()
    assert lines[0].startswith("host                   : ")
    assert any(line.startswith("xen_version            : 4.17") for line in lines)
    assert hosts.xl("mk1", "info", "total_memory").stdout.strip().isdigit()


def memory(hosts, node, name):
    record = hosts.host(node).find(name)
    return dict(line.split("=", 1) for line in open(record.path(".mem")).read().split())


MIGRATE = ["migrate", "-s", "xenha-sim-ssh -o BatchMode=yes", "shaolin", "mk2"]


def test_live_migration_moves_the_running_guest(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    time.sleep(0.6)
    before = memory(hosts, "mk1", "shaolin")
    result = hosts.xl("mk1", *MIGRATE)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    for expected in ("migration target: Ready to receive domain.",
                     "migration target: Transfer complete, requesting permission to start domain.",
                     "migration sender: Target has acknowledged transfer.",
                     "migration sender: Giving target permission to start.",
                     "migration target: Got permission, starting domain.",
                     "migration target: Domain started successsfully.",
                     "migration sender: Target reports successful startup.",
                     "Migration successful."):
        assert expected in lines
    assert lines[-1] == "Migration successful."
    assert "shaolin" not in states(hosts, "mk1")
    assert states(hosts, "mk2")["shaolin"].active
    after = memory(hosts, "mk2", "shaolin")
    assert after["boot_id"] == before["boot_id"], "live migration keeps the guest's memory"
    assert int(after["ticks"]) >= int(before["ticks"])


def test_receiver_fails_during_transfer_source_resumes(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    hosts.host("mk2").set_fault("migrate-receive", "fail-transfer")
    result = hosts.xl("mk1", *MIGRATE)
    assert result.returncode == 1
    assert "Migration failed, resuming at sender." in result.stderr
    assert states(hosts, "mk1")["shaolin"].active
    assert set(states(hosts, "mk2")) == {"Domain-0"}


def test_target_startup_failure_resumes_source(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    hosts.host("mk2").set_fault("migrate-receive", "fail-start")
    result = hosts.xl("mk1", *MIGRATE)
    assert result.returncode == 1
    for expected in ("migration sender: Target reports startup failure (status code 3).",
                     "migration sender: Trying to resume at our end.",
                     "migration target: Failure, destroying our copy.",
                     "Migration failed due to problems at target."):
        assert expected in result.stderr
    assert states(hosts, "mk1")["shaolin"].active
    assert set(states(hosts, "mk2")) == {"Domain-0"}


def test_sender_suspend_failure(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    hosts.host("mk1").set_fault("migrate", "fail-suspend")
    result = hosts.xl("mk1", *MIGRATE)
    assert result.returncode == 1
    assert "Migration failed, failed to suspend at sender." in result.stderr.splitlines()
    assert states(hosts, "mk1")["shaolin"].active


def test_connection_lost_after_go_leaves_state_undefined(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    hosts.host("mk1").set_fault("migrate", "lose-after-go")
    result = hosts.xl("mk1", *MIGRATE)
    assert result.returncode == 1
    assert "** Migration failed during final handshake **\nDomain state is now undefined !\n" in result.stderr
    source = states(hosts, "mk1")
    assert "shaolin--migratedaway" in source and source["shaolin--migratedaway"].letters == "---ss-"
    assert wait_for(lambda: states(hosts, "mk2").get("shaolin"))


def test_receiver_dies_after_go(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    hosts.host("mk2").set_fault("migrate-receive", "die-after-go")
    result = hosts.xl("mk1", *MIGRATE)
    assert result.returncode == 1 and "final handshake" in result.stderr
    assert "shaolin--migratedaway" in states(hosts, "mk1")
    target = states(hosts, "mk2")
    assert target["shaolin--incoming"].state == dom.PAUSED


def test_migration_to_unknown_host_fails_before_anything_moves(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    result = hosts.xl("mk1", "migrate", "-s", "xenha-sim-ssh", "shaolin", "nowhere")
    assert result.returncode == 1
    assert "ssh: Could not resolve hostname nowhere: Name or service not known" in result.stderr
    assert "truncated reading banner from migration receiver stream" in result.stderr
    assert states(hosts, "mk1")["shaolin"].active


def test_target_already_running_the_domain_refuses(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    create(hosts, "mk2", shaolin_config)
    result = hosts.xl("mk1", *MIGRATE)
    assert result.returncode == 1 and "Migration failed, resuming at sender." in result.stderr
    assert states(hosts, "mk1")["shaolin"].active


def test_reboot_gap_makes_the_domain_vanish_briefly(hosts, tmp_path):
    config = tmp_path / "rb.cfg"
    config.write_text("name = 'rb'\nkernel = '/k'\n")
    hosts.host("mk1").set_fault("reboot-gap", "1.0")
    create(hosts, "mk1", str(config))
    assert hosts.xl("mk1", "reboot", "rb").returncode == 0
    assert wait_for(lambda: "rb" not in states(hosts, "mk1"), 3)
    assert wait_for(lambda: "rb" in states(hosts, "mk1"), 4)


def test_list_long_is_a_json_array_of_domain_configs(hosts, shaolin_config):
    import json
    create(hosts, "mk1", shaolin_config)
    entries = json.loads(hosts.xl("mk1", "list", "-l").stdout)
    assert [e["domid"] for e in entries] == [1]
    config = entries[0]["config"]
    assert config["c_info"]["name"] == "shaolin" and config["c_info"]["type"] == "pv"
    assert config["b_info"]["max_memkb"] == 512 * 1024
    assert config["disks"] == [{"pdev_path": "vm_shaolin", "vdev": "hda1", "format": "raw", "readwrite": 1,
                                "script": "block-drbd"}]


def test_mem_set_units(hosts, shaolin_config):
    create(hosts, "mk1", shaolin_config)
    assert hosts.xl("mk1", "mem-set", "shaolin", "256").returncode == 0
    assert states(hosts, "mk1")["shaolin"].memory_mib == 256
    assert hosts.xl("mk1", "mem-set", "shaolin", "1g").returncode == 0
    assert states(hosts, "mk1")["shaolin"].memory_mib == 1024
    bad = hosts.xl("mk1", "mem-set", "shaolin", "lots")
    assert (bad.returncode, bad.stderr) == (1, "invalid memory size: lots\n")


def test_migrate_with_overridden_config(hosts, shaolin_config, tmp_path):
    create(hosts, "mk1", shaolin_config)
    other = tmp_path / "other.cfg"
    other.write_text("name = 'shaolin'\nkernel = '/k'\nmemory = 256\n")
    result = hosts.xl("mk1", "migrate", "-C", str(other), "-s", "xenha-sim-ssh", "shaolin", "mk2")
    assert result.returncode == 0, result.stderr
    assert states(hosts, "mk2")["shaolin"].memory_mib == 256
    missing = hosts.xl("mk2", "migrate", "-C", str(tmp_path / "none"), "-s", "xenha-sim-ssh", "shaolin", "mk1")
    assert missing.returncode == 1 and "unable to read overridden config file" in missing.stderr
    assert states(hosts, "mk2")["shaolin"].active


def test_destroying_a_paused_guest_never_lets_it_run_again(hosts, shaolin_config, monkeypatch):
    # A paused guest let run for an instant before it dies would acknowledge its write in
    # flight after its memory left in a live migration: the same write acknowledged twice.
    from xenha_lab.sim.xen import state as st

    create(hosts, "mk1", shaolin_config)
    assert hosts.xl("mk1", "pause", "shaolin").returncode == 0
    host = hosts.host("mk1")
    record = host.find("shaolin")
    pid = record.pid
    sent = []
    real_signal = st.DomainRecord.signal
    monkeypatch.setattr(st.DomainRecord, "signal", lambda self, signum: sent.append(signum) or real_signal(self, signum))
    host.destroy(record)
    assert sent == [st.SIGKILL]
    assert record.process() is None, f"guest {pid} still alive after destroy"
