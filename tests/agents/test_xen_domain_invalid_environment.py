"""Every action × every way the environment can be broken (resource-agents' ocf-rarun rule:
stop 0 when provably stopped, probe 7, recurring monitor 1, others their real code)."""

import pytest

from xenha.ocf import codes

ACTIONS = ["start", "stop", "probe", "monitor", "migrate_to", "migrate_from", "validate-all", "validate-all-10"]

# problem -> expected code per action (domain not running anywhere)
EXPECTED = {
    "xl-missing": dict(start=5, stop=0, probe=7, monitor=1, migrate_to=5, migrate_from=5,
                       **{"validate-all": 0, "validate-all-10": 5}),
    "bad-parameter": dict(start=6, stop=0, probe=7, monitor=1, migrate_to=6, migrate_from=6,
                          **{"validate-all": 6, "validate-all-10": 6}),
    "config-file-missing": dict(start=5, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                                **{"validate-all": 0, "validate-all-10": 5}),
    "config-unset": dict(start=6, stop=0, probe=7, monitor=1, migrate_to=6, migrate_from=6,
                         **{"validate-all": 6, "validate-all-10": 6}),
    "config-malformed": dict(start=6, stop=0, probe=7, monitor=7, migrate_to=1, migrate_from=1,
                             **{"validate-all": 0, "validate-all-10": 6}),
}


def run(sim_hosts, shaolin_config, tmp_path, problem, action):
    params = {"config": shaolin_config, "name": "shaolin",
              "migration_transport": "xenha-sim-ssh"}
    extra_env = {}
    if problem == "xl-missing":
        extra_env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    elif problem == "bad-parameter":
        params["shutdown_timeout"] = "ten seconds"
    elif problem == "config-file-missing":
        params["config"] = str(tmp_path / "gone.cfg")
    elif problem == "config-unset":
        del params["config"]
    elif problem == "config-malformed":
        bad = tmp_path / "bad.cfg"
        bad.write_text('name = "shaolin\n')
        params["config"] = str(bad)
    else:
        raise AssertionError(f"no way to break the environment called {problem!r}")
    interval = 10 if action == "monitor" else None
    name = {"probe": "monitor", "validate-all-10": "validate-all"}.get(action, action)
    meta = {"migrate_source": "mk1", "migrate_target": "mk2"} if action.startswith("migrate") else None
    return sim_hosts.run_agent("mk1", name, params, meta, instance="shaolin", interval_s=interval,
                               check_level=10 if action == "validate-all-10" else None,
                               extra_env=extra_env, timeout_s=5)


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
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("problem", ["bad-parameter", "config-file-missing", "config-unset"])
def test_stop_still_stops_a_running_domain_with_a_broken_environment(sim_hosts, shaolin_config, tmp_path,
                                                                      problem):
    started = sim_hosts.run_agent("mk1", "start", {"config": shaolin_config, "name": "shaolin"},
                                  instance="shaolin")
    assert started.rc == codes.SUCCESS
    result = run(sim_hosts, shaolin_config, tmp_path, problem, "stop")
    assert result.rc == codes.SUCCESS
    listing = sim_hosts.xl("mk1", "list").stdout
    assert "shaolin" not in listing, "stop with bad parameters must still stop the domain"
