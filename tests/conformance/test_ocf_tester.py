"""resource-agents' ocf-tester against the installed agents, on the simulated xl.

How its meta-data step is handled: ocf-tester pipes meta-data through
`xmllint --valid` with resource-agents' `ra-api-1.dtd` (2009), which cannot express
OCF 1.1 (`unique-group`, `reloadable`, `deprecated`, `select`, `reload-agent`). So the
agent is tested twice:
1. with `ocf/ra-api-1.1.dtd` (OCF 1.1 as a DTD) mounted over ra-api-1.dtd in a private
   mount namespace: ocf-tester must pass every step;
2. with the stock DTD, ocf-tester's meta-data step (the only one that reads the DTD,
   run as ocf-tester runs it) fails, and the DTD's complaints must all be about OCF 1.1
   constructs.
The meta-data itself is validated against the OCF 1.1 RNG in tests/unit/test_metadata.py.
"""

import subprocess

import pytest


from conftest import REPO, need_tool

DTD = "/usr/share/resource-agents/ra-api-1.dtd"
OCF11_DTD = REPO / "ocf" / "ra-api-1.1.dtd"


def ocf_tester_argv(name, options, agent, dtd=None):
    need_tool("ocf-tester")
    need_tool("xmllint")
    argv = ["ocf-tester", "-n", name] + [w for option in options for w in ("-o", option)] + [agent]
    if dtd is not None:
        # A private mount namespace: the host's DTD is untouched.
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'mount --bind "{dtd}" {DTD} && exec "$@"', "sh"] + argv
    return argv


def ocf_tester(sim_hosts, agent, config, dtd=None):
    env = sim_hosts.env("mk1", {"HA_RSCTMP": sim_hosts.rsctmp("mk1"), "OCF_ROOT": "/usr/lib/ocf"})
    # ocf-tester's migrate_from has no migration behind it: the agent waits for the domain
    # until its grace period (10 s) or the operation's deadline. A 5 s operation timeout
    # (ocf-tester's default is 20 s) ends that wait sooner; every other step needs far less.
    argv = ocf_tester_argv("shaolin", [f"config={config}", "name=shaolin", "migration_transport=xenha-sim-ssh",
                                       "CRM_meta_timeout=5000"], agent, dtd)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def test_ocf_tester_passes_with_the_ocf_1_1_grammar(sim_hosts, xen_agent, shaolin_config):
    result = ocf_tester(sim_hosts, xen_agent, shaolin_config, dtd=OCF11_DTD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"{xen_agent} passed all tests"
    assert "* rc=" not in result.stdout


def test_with_the_2009_dtd_only_the_meta_data_step_fails(xen_agent):
    """ocf-tester's meta-data step is `AGENT meta-data | (cd DTD_DIR && xmllint --noout
    --valid -)`, the only step that reads the DTD; the test above passes every step with
    the OCF 1.1 grammar, so with the stock DTD that step alone can fail. It is run here as
    ocf-tester runs it (not the whole of ocf-tester again: its migrate_from step alone waits
    10 s for a domain that never arrives)."""
    tester = open(need_tool("ocf-tester"), encoding="utf-8").read()
    assert 'METADATA_LINT="xmllint --noout --valid -"' in tester
    assert "(cd $DATADIR/resource-agents && $METADATA_LINT)" in tester and tester.count("$METADATA_LINT") == 1
    meta = subprocess.run([xen_agent, "meta-data"], capture_output=True, text=True).stdout
    lint = subprocess.run(["xmllint", "--noout", "--valid", "-"], input=meta, capture_output=True, text=True,
                          cwd="/usr/share/resource-agents")
    # xmllint --valid exits 4 on validity errors read from stdin: ocf-tester's "* rc=4"
    assert lint.returncode == 4, lint.stderr
    complaints = [line for line in lint.stderr.splitlines() if "validity error" in line]
    assert complaints
    # Each complaint is about something OCF 1.1 added to the 2009 grammar.
    ocf11 = ("element deprecated:", "element desc:", "element replaced-with:", "element option:",
             "attribute unique-group", "attribute reloadable", '"select"', '"reload-agent"',
             "got (deprecated longdesc", "element content: validity error : Element content was declared EMPTY")
    unexplained = [line for line in complaints if not any(word in line for word in ocf11)]
    assert unexplained == []


@pytest.mark.parametrize("agent_type", ["xen-domain", "lvm-volume", "drbd-resource"])
def test_meta_data_as_nobody_without_any_tool(agent_type):
    from xenha_lab.paths import default_agent
    from conftest import installed
    agent = installed(default_agent(agent_type))
    result = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", f"env -i PATH=/nonexistent {agent} meta-data"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stderr == ""
    assert f"<resource-agent name=\"{agent_type}\"" in result.stdout


def test_lvm_volume_passes_ocf_tester(tmp_path):
    from xenha_lab.paths import default_agent
    from xenha_lab.sim.lvm.world import LvmWorld
    from conftest import installed
    agent = installed(default_agent("lvm-volume"))
    world = LvmWorld(tmp_path / "lvm")
    try:
        world.add_node("mk1")
        vg = world.name("vg0")
        world.create_vg("mk1", vg, world.add_pv("disk", "256M", ["mk1"]))
        world.create_lv("mk1", vg, "vm_shaolin", "32M")
        env = world.env("mk1", {"HA_RSCTMP": str(tmp_path / "rsctmp"), "OCF_ROOT": "/usr/lib/ocf"})
        result = subprocess.run(ocf_tester_argv("lv_shaolin", [f"vg={vg}", "lvs=vm_shaolin"], agent, OCF11_DTD),
                                env=env, capture_output=True, text=True, timeout=300)
    finally:
        world.cleanup()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"{agent} passed all tests"


def test_drbd_resource_passes_ocf_tester_as_a_promotable_agent(tmp_path):
    """Promotable: ocf-tester demotes, promotes and demotes again; promotion needs
    UpToDate data, so the pair is synced first (as after the initial sync of a new pair)."""
    from xenha_lab.sim.drbd.world import DrbdWorld
    from xenha_lab.paths import default_agent
    from conftest import installed
    agent = installed(default_agent("drbd-resource"))
    world = DrbdWorld(tmp_path / "drbd", {"mk1": "10.99.0.1", "mk2": "10.99.0.2"}, resync_rate_kib=64 * 1024)
    try:
        config = world.write_config("r0")
        world.up_all("r0")
        world.drbdadm("mk1", "primary", "--force", "r0", check=True)
        assert world.wait_sync("r0")
        world.drbdadm("mk1", "secondary", "r0", check=True)
        argv = ocf_tester_argv("drbd_r0", ["drbd_resource=r0", f"drbdconf={config}"], agent, OCF11_DTD)
        result = world.run("mk1", argv, timeout=300, env={"HA_RSCTMP": str(tmp_path / "rsctmp"),
                                                          "OCF_ROOT": "/usr/lib/ocf"})
    finally:
        world.cleanup()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "does not support promotable clones" not in result.stdout
    assert result.stdout.splitlines()[-1] == f"{agent} passed all tests"
