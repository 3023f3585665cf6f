"""Pacemaker's and pcs' own tools accept and run the installed agents."""

import subprocess
import xml.etree.ElementTree as ET

import pytest


from conftest import need_tool
from xenha.ocf import codes

AGENT = "ocf:xenha:xen-domain"


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def test_crm_resource_lists_and_shows_the_agent(xen_agent):
    need_tool("crm_resource")
    assert "xenha" in run(["crm_resource", "--list-ocf-providers"]).stdout.split()
    assert "xen-domain" in run(["crm_resource", "--list-agents", "ocf:xenha"]).stdout.split()
    shown = run(["crm_resource", "--show-metadata", AGENT])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == run([xen_agent, "meta-data"]).stdout


@pytest.mark.parametrize("agent,words", [
    ("xen-domain", ("config (required)", "shutdown_mode", "migration_transport", "migrate_to")),
    ("drbd-resource", ("drbd_resource (required)", "promotion_scores", "promote", "Promoted")),
    ("lvm-volume", ("vg (required)", "ownership", "activation_mode")),
])
def test_pcs_and_crm_resource_read_every_agent(agent, words):
    from xenha_lab.paths import default_agent
    from conftest import installed
    need_tool("pcs")
    path = installed(default_agent(agent))
    described = run(["pcs", "resource", "describe", f"ocf:xenha:{agent}"])
    assert described.returncode == 0, described.stderr
    for word in words:
        assert word in described.stdout, word
    shown = run(["crm_resource", "--show-metadata", f"ocf:xenha:{agent}"])
    assert shown.returncode == 0 and shown.stdout == run([path, "meta-data"]).stdout


def test_pcs_creates_the_resource_with_advertised_timeouts(xen_agent, tmp_path, shaolin_config):
    need_tool("pcs")
    cib = tmp_path / "cib.xml"
    cib.write_text(run(["cibadmin", "--empty"]).stdout)
    created = run(["pcs", "-f", str(cib), "resource", "create", "shaolin", AGENT, f"config={shaolin_config}",
                   "name=shaolin", "meta", "allow-migrate=true"])
    assert created.returncode == 0, created.stderr
    primitive = ET.parse(cib).find(".//primitive[@id='shaolin']")
    ops = {(op.get("name"), op.get("interval")): op.get("timeout") for op in primitive.iter("op")}
    assert ops[("migrate_to", "0s")] == "300s"
    assert ops[("stop", "0s")] == "120s"
    assert ("monitor", "10s") in ops


def test_pcs_checks_parameters_from_the_meta_data(xen_agent, tmp_path, shaolin_config):
    need_tool("pcs")
    cib = tmp_path / "cib.xml"
    cib.write_text(run(["cibadmin", "--empty"]).stdout)

    def create(*args):
        return run(["pcs", "-f", str(cib), "resource", "create", "r", AGENT, *args])

    # pcs knows the deprecated alias from the OCF 1.1 <deprecated> element
    missing = create("name=x")
    assert missing.returncode != 0
    assert "'config' or 'xmfile' (deprecated) has to be specified" in missing.stderr
    unknown = create(f"config={shaolin_config}", "bogus=1")
    assert unknown.returncode != 0 and "invalid resource option 'bogus'" in unknown.stderr
    # with --agent-validation pcs runs validate-all and shows our exit reason
    bad = create(f"config={shaolin_config}", "shutdown_mode=yank", "--agent-validation")
    assert bad.returncode != 0
    assert "parameter shutdown_mode='yank': must be one of pv, pv-or-acpi, acpi" in bad.stderr


def test_crm_resource_validate(xen_agent, shaolin_config):
    need_tool("crm_resource")
    base = ["crm_resource", "--validate", "--class", "ocf", "--provider", "xenha", "--agent", "xen-domain",
            "--option", f"config={shaolin_config}"]
    ok = run(base)
    assert ok.returncode == 0 and "returned 0 (ok)" in ok.stdout, ok.stdout + ok.stderr
    bad = run(base + ["--option", "shutdown_timeout=soon"])
    assert bad.returncode == codes.ERR_CONFIGURED, bad.stdout + bad.stderr
    assert "shutdown_timeout='soon'" in bad.stdout + bad.stderr


def test_force_actions_through_the_real_executor(sim_hosts, xen_agent, shaolin_config):
    """crm_resource --force-* runs the agent through Pacemaker's executor, which passes
    only OCF variables and PATH; so the simulator uses its default state under /run,
    here a private tmpfs (as on a lab node)."""
    need_tool("crm_resource")
    script = f"""
set -u
mount -t tmpfs xenha-run /run
rsc="--class ocf --provider xenha --agent xen-domain --option config={shaolin_config} --option name=shaolin"
for action in force-check force-start force-check force-stop force-check; do
    crm_resource --$action $rsc >/dev/null 2>&1; echo "$action $?"
done
"""
    env = sim_hosts.env("mk1")
    result = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], env=env)
    assert result.stdout.split("\n")[:5] == ["force-check 7", "force-start 0", "force-check 0",
                                             "force-stop 0", "force-check 7"], result.stdout + result.stderr
