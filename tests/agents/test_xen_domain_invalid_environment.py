"""Every action × every way the environment can be broken or hostile (resource-agents'
ocf-rarun rule: stop 0 when provably stopped, probe 7, recurring monitor 1, others their
real code; and issue 9: a missing tool on a host with Xen leaves the state unknown, odd
bytes, FIFOs and unreadable records never change an answer or hang the agent)."""

import os

import pytest

from hostile import assert_outcome, assert_table_complete, host_root
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


NO_XL = "/usr/sbin:/usr/bin:/sbin:/bin"
# problems made of parameter values alone (None: the parameter is unset)
VALUES = {
    "bad-parameter": {"shutdown_timeout": "ten seconds"},
    "odd-bytes-in-a-parameter": {"shutdown_timeout": "\udcff\udcfe"},
    "name-with-a-quote": {"name": 'shaolin" on_crash="preserve'},
    "name-look-alike": {"name": "sha\u043elin"},                  # a Cyrillic o
    "name-of-a-migration-copy": {"name": "shaolin--incoming"},
    "name-of-dom0": {"name": "Domain-0"},
    "name-a-domain-id": {"name": "0"},
    "odd-bytes-in-the-name": {"name": "shaolin\udcff"},
    "transport-shell-fragment": {"migration_transport": "xenha-sim-ssh $(touch /tmp/xenha-pwned)"},
    "config-unset": {"config": None},
    "config-relative": {"config": "shaolin.cfg"},
}
# problems of the host: what it has (a host root, tools/host.py) and the PATH
HOSTS = {
    "xl-missing": (),
    "xl-missing-xen-present": ("proc/xen",),
    "xl-missing-xl-installed": ("usr/lib/xen-4.17/bin/xl",),
}


def arrange_files(problem, tmp_path, params, extra_env, record):
    """Problems of the files the agent reads: its config and its record in HA_RSCTMP."""
    config = tmp_path / "config.cfg"
    if problem == "config-file-missing":
        params["config"] = str(tmp_path / "gone.cfg")
    elif problem == "config-is-a-fifo":
        os.mkfifo(config)
    elif problem == "config-is-a-directory":
        params["config"] = str(tmp_path)
    elif problem == "config-malformed":
        config.write_text('name = "shaolin\n')
    elif problem == "config-binary":
        config.write_bytes(bytes(range(256)) * 4)
    elif problem == "record-binary":
        with open(record, "wb") as handle:
            handle.write(b"name=\xff\xfe\x00other\n\x80")
    elif problem == "record-is-a-fifo":
        os.mkfifo(record)
    elif problem == "rsctmp-is-a-file":
        (tmp_path / "rsctmp-file").write_text("not a directory\n")
        extra_env["HA_RSCTMP"] = str(tmp_path / "rsctmp-file")
    else:
        raise AssertionError(f"no way to break the environment called {problem!r}")
    if config.exists():
        params["config"] = str(config)


def run(sim_hosts, shaolin_config, tmp_path, problem, action):
    params = {"config": shaolin_config, "name": "shaolin", "migration_transport": "xenha-sim-ssh"}
    # Pacemaker's default log facility: syslog must take whatever a line holds
    extra_env = {"XENHA_HOST_ROOT": host_root(tmp_path / "host", *HOSTS.get(problem, ())),
                 "HA_LOGFACILITY": "daemon"}
    if problem in HOSTS:
        extra_env["PATH"] = NO_XL
    elif problem in VALUES:
        params.update(VALUES[problem])
        params = {key: value for key, value in params.items() if value is not None}
    else:
        arrange_files(problem, tmp_path, params, extra_env, os.path.join(sim_hosts.rsctmp("mk1"),
                                                                         "xenha-xen-domain-shaolin"))
    interval = 10 if action == "monitor" else None
    name = {"probe": "monitor", "validate-all-10": "validate-all"}.get(action, action)
    meta = {"migrate_source": "mk1", "migrate_target": "mk2"} if action.startswith("migrate") else None
    # migrate_from waits for an arrival until its deadline: a short one keeps the matrix cheap
    return sim_hosts.run_agent("mk1", name, params, meta, instance="shaolin", interval_s=interval,
                               check_level=10 if action == "validate-all-10" else None,
                               extra_env=extra_env, timeout_s=2 if action == "migrate_from" else 5)


def test_every_problem_expects_a_code_for_every_action_and_nothing_else():
    assert_table_complete(EXPECTED, ACTIONS)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("problem", sorted(EXPECTED))
def test_invalid_environment(sim_hosts, shaolin_config, tmp_path, problem, action):
    result = run(sim_hosts, shaolin_config, tmp_path, problem, action)
    # migrate_from waits for an arrival on purpose (until its short deadline)
    assert_outcome(result.rc, result.exit_reason, result.stderr, 0 if action == "migrate_from" else result.seconds,
                   EXPECTED[problem][action])
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
