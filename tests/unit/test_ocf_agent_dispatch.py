"""The shared dispatch rules, with a toy agent run in-process."""

import io

import pytest

from xenha.ocf import codes
from xenha.ocf.agent import Action, ResourceAgent, StateUnknown, main
from xenha.ocf.codes import OcfError
from xenha.ocf.deadline import DeadlineExceeded
from xenha.ocf.parameters import INTEGER, Parameter


class Toy(ResourceAgent):
    NAME = "toy"
    SHORTDESC = "toy"
    LONGDESC = "toy agent"
    PARAMETERS = (Parameter("count", INTEGER, "count", "a count"),)
    ACTIONS = (Action("start", 20), Action("stop", 20), Action("monitor", 20, interval=10),
               Action("notify", 20), Action("validate-all", 5), Action("meta-data", 5))
    broken = None        # OcfError raised by check_environment
    outcome = codes.SUCCESS
    stopped = True

    def check_environment(self):
        self.params.raise_first_error() if self.env.action != "stop" else None
        if Toy.broken:
            raise Toy.broken

    def stop_when_invalid(self, problem):
        return codes.SUCCESS if Toy.stopped else super().stop_when_invalid(problem)

    def action_start(self):
        if isinstance(Toy.outcome, Exception):
            raise Toy.outcome
        return Toy.outcome

    action_stop = action_monitor = action_validate_all = action_notify = action_start


@pytest.fixture(autouse=True)
def reset():
    Toy.broken, Toy.outcome, Toy.stopped = None, codes.SUCCESS, True


def run(*argv, **environ):
    out, err = io.StringIO(), io.StringIO()
    rc = main(Toy, ["toy", *argv], environ, out, err)
    return rc, out.getvalue(), err.getvalue()


def test_unknown_action_is_3_with_usage():
    rc, _out, err = run("frobnicate")
    assert rc == codes.ERR_UNIMPLEMENTED and "usage: toy" in err


def test_missing_action_is_2():
    assert run()[0] == codes.ERR_ARGS


def test_extra_arguments_are_ignored():
    assert run("start", "extra", "args")[0] == codes.SUCCESS


def test_usage_and_help_exit_0():
    for action in ("usage", "help", "-h", "--help"):
        rc, out, _err = run(action)
        assert rc == 0 and "start|stop|monitor" in out


def test_meta_data_needs_no_environment():
    rc, out, err = run("meta-data")
    assert rc == 0 and out.startswith('<?xml version="1.0"?>') and err == ""


INVALID = OcfError(codes.ERR_INSTALLED, "tool missing")


@pytest.mark.parametrize("action,environ,expected", [
    ("monitor", {}, codes.NOT_RUNNING),                                        # probe
    ("monitor", {"OCF_RESKEY_CRM_meta_interval": "0"}, codes.NOT_RUNNING),     # probe
    ("monitor", {"OCF_RESKEY_CRM_meta_interval": "10000"}, codes.ERR_GENERIC),  # recurring
    ("start", {}, codes.ERR_INSTALLED),
    ("validate-all", {}, codes.ERR_INSTALLED),
    ("stop", {}, codes.SUCCESS),                                               # provably stopped
])
def test_invalid_environment_rule(action, environ, expected):
    Toy.broken = INVALID
    rc, _out, err = run(action, **environ)
    assert rc == expected
    if rc not in (codes.SUCCESS, codes.NOT_RUNNING):
        assert "ocf-exit-reason:tool missing" in err


UNKNOWN = StateUnknown("xl command not found, but /proc/xen exists: the resource may be active here")


@pytest.mark.parametrize("action,environ,expected", [
    ("monitor", {}, codes.ERR_GENERIC),                                        # probe: never 7
    ("monitor", {"OCF_RESKEY_CRM_meta_interval": "10000"}, codes.ERR_GENERIC),
    ("start", {}, codes.ERR_GENERIC),
    ("validate-all", {}, codes.ERR_GENERIC),
    ("notify", {}, codes.SUCCESS),
])
def test_a_state_the_environment_hides_is_an_error_for_every_action_even_the_probe(action, environ, expected):
    """issue 9 §1: a tool missing from PATH while its kernel side is present proves nothing."""
    Toy.broken = UNKNOWN
    rc, _out, err = run(action, **environ)
    assert rc == expected
    if rc:
        assert "ocf-exit-reason:xl command not found, but /proc/xen exists" in err


def test_stop_with_the_state_hidden_asks_the_agent_for_proof():
    Toy.broken, Toy.stopped = UNKNOWN, False
    rc, _out, err = run("stop")
    assert rc == codes.ERR_GENERIC and "cannot verify that the resource is stopped: xl command not found" in err
    Toy.stopped = True
    assert run("stop")[0] == codes.SUCCESS


def test_stop_that_cannot_prove_stopped_fails_with_reason():
    Toy.broken, Toy.stopped = INVALID, False
    rc, _out, err = run("stop")
    assert rc == codes.ERR_GENERIC and "cannot verify" in err


def test_bad_parameter_is_6_for_start_and_7_for_probe():
    assert run("start", OCF_RESKEY_count="many")[0] == codes.ERR_CONFIGURED
    assert run("monitor", OCF_RESKEY_count="many")[0] == codes.NOT_RUNNING
    assert run("stop", OCF_RESKEY_count="many")[0] == codes.SUCCESS


def test_ocf_error_from_an_action_gives_its_code_and_reason():
    Toy.outcome = OcfError(codes.ERR_PERM, "not allowed")
    rc, _out, err = run("start")
    assert rc == codes.ERR_PERM and err.splitlines()[-1] == "ocf-exit-reason:not allowed"


def test_deadline_and_unexpected_errors_give_1_with_reason():
    Toy.outcome = DeadlineExceeded("no time left")
    rc, _out, err = run("start")
    assert rc == codes.ERR_GENERIC and "did not finish within its timeout" in err
    Toy.outcome = KeyError("surprise")
    rc, _out, err = run("start")
    assert rc == codes.ERR_GENERIC and "internal error in start: KeyError" in err


def test_check_level_runs_next_lower_implemented_level():
    class Levels(Toy):
        CHECK_LEVELS = (0, 10)

    from xenha.ocf.deadline import Deadline
    from xenha.ocf.environment import OcfEnvironment
    from xenha.ocf.log import AgentLog

    def level(requested):
        env = OcfEnvironment("monitor", {"OCF_CHECK_LEVEL": requested})
        return Levels(env, AgentLog("t", {}, io.StringIO()), Deadline(5)).check_level

    assert (level("0"), level("10"), level("15"), level("20")) == (0, 10, 10, 10)
