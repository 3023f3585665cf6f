"""The harness builds the environment Pacemaker gives an agent (captured live in
samples/pcmk_09_agent_env_from_crm_resource.txt), and nothing of the caller's."""

from conftest import sample
from xenha_lab.harness import agent_env, exit_reason

# set by the crm_resource command line only, not by pacemaker-execd (reference §3)
CLI_ONLY = {"OCF_OUTPUT_FORMAT", "OCF_TRACE_FILE", "PCMK_service", "PATH"}


def captured_environments() -> list[dict]:
    blocks, current = [], None
    for line in sample("pcmk_09_agent_env_from_crm_resource.txt").splitlines():
        if line.startswith("# environment"):
            current = {}
            blocks.append(current)
        elif current is not None and "=" in line and not line.startswith(("#", "argv:")):
            key, value = line.split("=", 1)
            current[key] = value
    return blocks


def test_the_environment_is_what_pacemaker_passes(monkeypatch):
    monkeypatch.setenv("XENHA_CALLER_ONLY", "1")
    plain, with_meta = captured_environments()
    assert len(plain) > 10 and "OCF_RESKEY_CRM_meta_allow_migrate" in with_meta
    ours = agent_env({"PATH": "/node/path"}, agent="envdump", provider="tftest", instance="test", rsctmp="/run/x",
                     timeout_s=10, params={"foo": "bar"})
    assert {k: ours.get(k) for k in plain if k not in CLI_ONLY} == {k: v for k, v in plain.items()
                                                                     if k not in CLI_ONLY}
    assert ours["PATH"] == "/node/path" and "XENHA_CALLER_ONLY" not in ours
    meta = agent_env({}, agent="envdump", provider="tftest", instance="e1", rsctmp="/run/x", timeout_s=20,
                     params={"foo": "bar"}, meta={"allow-migrate": "true", "class": "ocf", "id": "e1",
                                                  "provider": "tftest", "type": "envdump"})
    assert {k: meta.get(k) for k in with_meta if k not in CLI_ONLY} == {k: v for k, v in with_meta.items()
                                                                        if k not in CLI_ONLY}


def test_operation_variables():
    env = agent_env({}, agent="lvm-volume", instance="lv", rsctmp="/run/x", node="mk1", timeout_s=30,
                    interval_s=10, check_level=10)
    assert env["OCF_RESKEY_CRM_meta_interval"] == "10000" and env["OCF_RESKEY_CRM_meta_timeout"] == "30000"
    assert env["OCF_RESKEY_CRM_meta_on_node"] == "mk1" and env["HA_RSCTMP"] == "/run/x"
    # the depth is an op attribute: execd passes it as a parameter, never as OCF_CHECK_LEVEL
    assert env["OCF_RESKEY_OCF_CHECK_LEVEL"] == "10" and "OCF_CHECK_LEVEL" not in env
    assert agent_env({}, agent="a", instance="i", rsctmp="/r", interval_s=0)["OCF_RESKEY_CRM_meta_interval"] == "0"
    assert "OCF_RESKEY_CRM_meta_interval" not in agent_env({}, agent="a", instance="i", rsctmp="/r")


def test_exit_reason_is_the_last_one_printed():
    assert exit_reason("ocf-exit-reason:first\nnoise\nocf-exit-reason:second\n") == "second"
    assert exit_reason("ERROR: no prefix here\n") is None
