"""Every action × every way the environment can be broken or hostile (resource-agents'
ocf-rarun rule: stop 0 when provably stopped, probe 7, recurring monitor 1, others their
real code; and issue 9: a missing tool on a host with Xen leaves the state unknown, odd
bytes, FIFOs and unreadable records never change an answer or hang the agent)."""

import os

import pytest

from xenha.ocf import codes

ACTIONS = ["start", "stop", "probe", "monitor", "migrate_to", "migrate_from", "validate-all", "validate-all-10"]
VALIDATE = {"validate-all": 0, "validate-all-10": 0}
BAD_PARAMETER = dict(start=6, stop=0, probe=7, monitor=1, migrate_to=6, migrate_from=6,
                     **{"validate-all": 6, "validate-all-10": 6})
# A hostile environment that must not change anything: the domain is not running.
HARMLESS = dict(start=0, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1, **VALIDATE)

# problem -> expected code per action (the domain is not running anywhere)
EXPECTED = {
    # no Xen on this host (an empty host root): nothing can run here
    "xl-missing": dict(start=5, stop=0, probe=7, monitor=1, migrate_to=5, migrate_from=5,
                       **{"validate-all": 0, "validate-all-10": 5}),
    # xl not on PATH, but the host runs Xen: the state is unknown, never 7 or stop 0
    "xl-missing-xen-present": dict(start=1, stop=1, probe=1, monitor=1, migrate_to=1, migrate_from=1,
                                   **{"validate-all": 0, "validate-all-10": 1}),
    "xl-missing-xl-installed": dict(start=1, stop=1, probe=1, monitor=1, migrate_to=1, migrate_from=1,
                                    **{"validate-all": 0, "validate-all-10": 1}),
    "bad-parameter": BAD_PARAMETER,
    "odd-bytes-in-a-parameter": BAD_PARAMETER,
    # a name xl's parser would read as more than a name: refused where a domain gets it;
    # monitor and stop look for the exact name (not there) and pass it after `--`
    "name-with-a-quote": dict(BAD_PARAMETER, probe=7, monitor=7),
    "name-look-alike": dict(BAD_PARAMETER, probe=7, monitor=7),
    # names xl reads as another domain: no action touches them, stop 0, probe 7
    "name-of-a-migration-copy": BAD_PARAMETER,
    "name-of-dom0": BAD_PARAMETER,
    "name-a-domain-id": BAD_PARAMETER,
    "odd-bytes-in-the-name": dict(BAD_PARAMETER, probe=7, monitor=7),
    "transport-shell-fragment": BAD_PARAMETER,
    "config-file-missing": dict(start=5, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                                **{"validate-all": 0, "validate-all-10": 5}),
    "config-is-a-fifo": dict(start=5, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                             **{"validate-all": 0, "validate-all-10": 5}),
    "config-is-a-directory": dict(start=5, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                                  **{"validate-all": 0, "validate-all-10": 5}),
    "config-unset": dict(start=6, stop=0, probe=7, monitor=1, migrate_to=6, migrate_from=6,
                         **{"validate-all": 6, "validate-all-10": 6}),
    "config-relative": dict(start=6, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                            **{"validate-all": 0, "validate-all-10": 6}),
    "config-malformed": dict(start=6, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                             **{"validate-all": 0, "validate-all-10": 6}),
    "config-binary": dict(start=6, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                          **{"validate-all": 0, "validate-all-10": 6}),
    "record-binary": HARMLESS,
    "record-is-a-fifo": HARMLESS,
    "rsctmp-is-a-file": HARMLESS,
}
SLOW_ENOUGH_TO_BE_A_HANG = 4.0


def host_root(tmp_path, *signs):
    """A host root (tools/host.py) holding only `signs` (directories, or files for names
    with a dot)."""
    root = tmp_path / "host"
    root.mkdir(exist_ok=True)
    for sign in signs:
        path = root / sign
        if "bin/" in sign:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
        else:
            path.mkdir(parents=True, exist_ok=True)
    return str(root)


def run(sim_hosts, shaolin_config, tmp_path, problem, action):
    params = {"config": shaolin_config, "name": "shaolin", "migration_transport": "xenha-sim-ssh"}
    extra_env = {"XENHA_HOST_ROOT": host_root(tmp_path)}
    rsctmp = sim_hosts.rsctmp("mk1")
    record = os.path.join(rsctmp, "xenha-xen-domain-shaolin")
    no_xl = "/usr/sbin:/usr/bin:/sbin:/bin"
    if problem == "xl-missing":
        extra_env["PATH"] = no_xl
    elif problem == "xl-missing-xen-present":
        extra_env.update(PATH=no_xl, XENHA_HOST_ROOT=host_root(tmp_path, "proc/xen"))
    elif problem == "xl-missing-xl-installed":
        extra_env.update(PATH=no_xl, XENHA_HOST_ROOT=host_root(tmp_path, "usr/lib/xen-4.17/bin/xl"))
    elif problem == "bad-parameter":
        params["shutdown_timeout"] = "ten seconds"
    elif problem == "odd-bytes-in-a-parameter":
        # Pacemaker's default log facility: syslog must take whatever the line holds
        params["shutdown_timeout"] = "\udcff\udcfe"
        extra_env["HA_LOGFACILITY"] = "daemon"
    elif problem == "name-with-a-quote":
        params["name"] = 'shaolin" on_crash="preserve'
    elif problem == "name-look-alike":
        params["name"] = "sha\u043elin"          # a Cyrillic o
    elif problem == "name-of-a-migration-copy":
        params["name"] = "shaolin--incoming"
    elif problem == "name-of-dom0":
        params["name"] = "Domain-0"
    elif problem == "name-a-domain-id":
        params["name"] = "0"
    elif problem == "odd-bytes-in-the-name":
        params["name"] = "shaolin\udcff"
        extra_env["HA_LOGFACILITY"] = "daemon"
    elif problem == "transport-shell-fragment":
        params["migration_transport"] = "xenha-sim-ssh $(touch /tmp/xenha-pwned)"
    elif problem == "config-file-missing":
        params["config"] = str(tmp_path / "gone.cfg")
    elif problem == "config-is-a-fifo":
        fifo = tmp_path / "fifo.cfg"
        os.mkfifo(fifo)
        params["config"] = str(fifo)
    elif problem == "config-is-a-directory":
        params["config"] = str(tmp_path)
    elif problem == "config-unset":
        del params["config"]
    elif problem == "config-relative":
        params["config"] = "shaolin.cfg"
    elif problem == "config-malformed":
        bad = tmp_path / "bad.cfg"
        bad.write_text('name = "shaolin\n')
        params["config"] = str(bad)
    elif problem == "config-binary":
        binary = tmp_path / "binary.cfg"
        binary.write_bytes(bytes(range(256)) * 4)
        params["config"] = str(binary)
    elif problem == "record-binary":
        with open(record, "wb") as handle:
            handle.write(b"name=\xff\xfe\x00other\n\x80")
    elif problem == "record-is-a-fifo":
        os.mkfifo(record)
    elif problem == "rsctmp-is-a-file":
        blocker = tmp_path / "rsctmp-file"
        blocker.write_text("not a directory\n")
        extra_env["HA_RSCTMP"] = str(blocker)
    else:
        raise AssertionError(f"no way to break the environment called {problem!r}")
    interval = 10 if action == "monitor" else None
    name = {"probe": "monitor", "validate-all-10": "validate-all"}.get(action, action)
    meta = {"migrate_source": "mk1", "migrate_target": "mk2"} if action.startswith("migrate") else None
    # migrate_from waits for an arrival until its deadline: a short one keeps the matrix cheap
    return sim_hosts.run_agent("mk1", name, params, meta, instance="shaolin", interval_s=interval,
                               check_level=10 if action == "validate-all-10" else None,
                               extra_env=extra_env, timeout_s=2 if action == "migrate_from" else 5)


def test_every_problem_expects_a_code_for_every_action_and_nothing_else():
    """A misspelt action in the table would never be checked."""
    for problem, codes_by_action in EXPECTED.items():
        assert sorted(codes_by_action) == sorted(ACTIONS), problem


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("problem", sorted(EXPECTED))
def test_invalid_environment(sim_hosts, shaolin_config, tmp_path, problem, action):
    result = run(sim_hosts, shaolin_config, tmp_path, problem, action)
    assert result.rc == EXPECTED[problem][action], result.stderr
    if result.rc not in (codes.SUCCESS, codes.NOT_RUNNING):
        assert result.exit_reason, "every failure carries an exit reason"
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    if action != "migrate_from":   # migrate_from waits for an arrival on purpose
        assert result.seconds < SLOW_ENOUGH_TO_BE_A_HANG, "nothing hostile may make the agent hang"
    assert not os.path.exists("/tmp/xenha-pwned"), "a parameter reached a shell"
    if problem.startswith("xl-missing-") and result.rc == codes.ERR_GENERIC:
        assert "xl command not found, but" in result.exit_reason
    if problem.startswith("config-is-a-") and result.rc == codes.ERR_INSTALLED:
        assert "not a regular file" in result.exit_reason
    listing = sim_hosts.xl("mk1", "list").stdout
    if EXPECTED[problem]["start"] != codes.SUCCESS:
        assert "shaolin" not in listing, "a refused start leaves no domain behind"


@pytest.mark.parametrize("problem", ["bad-parameter", "odd-bytes-in-a-parameter", "config-file-missing",
                                     "config-is-a-fifo", "config-unset", "record-binary",
                                     "odd-bytes-in-the-name", "transport-shell-fragment"])
def test_stop_still_stops_a_running_domain_with_a_broken_environment(sim_hosts, shaolin_config, tmp_path,
                                                                      problem):
    started = sim_hosts.run_agent("mk1", "start", {"config": shaolin_config, "name": "shaolin"},
                                  instance="shaolin")
    assert started.rc == codes.SUCCESS
    result = run(sim_hosts, shaolin_config, tmp_path, problem, "stop")
    listing = sim_hosts.xl("mk1", "list").stdout
    if problem == "odd-bytes-in-the-name":
        # another name is another domain: shaolin stays, and stop says so truthfully
        assert result.rc == codes.SUCCESS and "shaolin" in listing
        return
    assert result.rc == codes.SUCCESS, result.stderr
    assert "shaolin" not in listing, "stop with bad parameters must still stop the domain"


@pytest.mark.parametrize("problem", ["xl-missing-xen-present", "xl-missing-xl-installed"])
def test_a_running_domain_is_never_reported_stopped_because_xl_is_not_on_path(sim_hosts, shaolin_config,
                                                                               tmp_path, problem):
    """issue 9 §1: with xl missing from PATH, probe 7 and stop 0 while the domain runs would
    let Pacemaker start it on the peer."""
    assert sim_hosts.run_agent("mk1", "start", {"config": shaolin_config, "name": "shaolin"},
                               instance="shaolin").rc == codes.SUCCESS
    for action in ("probe", "monitor", "stop"):
        result = run(sim_hosts, shaolin_config, tmp_path, problem, action)
        assert result.rc == codes.ERR_GENERIC, (action, result.stderr)
        assert "xl command not found" in result.exit_reason
    assert "shaolin" in sim_hosts.xl("mk1", "list").stdout


@pytest.mark.parametrize("name", ["Domain-0", "domain-0", "0", "1", "shaolin--incoming", "shaolin--migratedaway"])
def test_a_name_xl_reads_as_another_domain_is_never_touched(sim_hosts, shaolin_config, name):
    """issue 9 §2: such a resource could never have started its domain, and every xl
    command with its name would act on another domain (dom0, domid 1, shaolin's copy)."""
    assert sim_hosts.run_agent("mk1", "start", {"config": shaolin_config, "name": "shaolin"},
                               instance="shaolin").rc == codes.SUCCESS
    params = {"config": shaolin_config, "name": name}
    assert sim_hosts.run_agent("mk1", "start", params, instance="other").rc == codes.ERR_CONFIGURED
    assert sim_hosts.run_agent("mk1", "monitor", params, instance="other").rc == codes.NOT_RUNNING
    stop = sim_hosts.run_agent("mk1", "stop", params, instance="other")
    assert stop.rc == codes.SUCCESS and "never started that domain" in stop.stderr
    listing = sim_hosts.xl("mk1", "list").stdout
    assert "Domain-0" in listing and "shaolin " in listing
