"""The CIB xenha writes directly is the CIB pcs builds from the rendered pcs script.

The pcs script is what an administrator reviews and applies; the direct XML is what
rendering at scale and the scheduler scenarios use. Running the script with `pcs -f` on
an empty CIB (with the installed agents, whose meta-data pcs reads) and comparing the
two by meaning (resources, agents, parameters, meta attributes, operations, constraints,
properties, tags; not element ids) proves they are the same. Running it again proves
it is safe to re-apply. Each example's script is applied once per run (the module's
`applied` fixture); the re-runs start from a copy of that CIB.
"""

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO, installed, need_tool
from xenha.cluster import allocation, description
from xenha.render import pacemaker
from xenha_lab.paths import default_agent

EXAMPLES = ["howto", "three-nodes"]


def _rendered(example):
    """(pacemaker config, node names) for a shipped example, agents installed."""
    need_tool("pcs")
    for agent in ("xen-domain", "lvm-volume", "drbd-resource"):
        installed(default_agent(agent))
    path = REPO / "cluster-config" / "examples" / f"{example}.toml"
    desc = description.load(str(path))
    slots, _added = allocation.allocate(desc, allocation.read(allocation.allocation_path(str(path))))
    return pacemaker.build(desc, slots), [n.name for n in desc.nodes]


def _empty_cib(tmp_path, nodes):
    cib = tmp_path / "cib.xml"
    cib.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
    env = dict(os.environ, CIB_file=str(cib))
    for number, node in enumerate(nodes, start=1):
        subprocess.run(["cibadmin", "-C", "-o", "nodes", "-X", f'<node id="{number}" uname="{node}"/>'],
                       env=env, check=True)
    return cib


def _assert_same_meaning(mine, by_pcs):
    for part in ("properties", "rsc_defaults", "nodes", "tags", "constraints"):
        assert mine[part] == by_pcs[part], part
    assert sorted(mine["resources"]) == sorted(by_pcs["resources"])
    for rsc in mine["resources"]:
        assert mine["resources"][rsc] == by_pcs["resources"][rsc], rsc


def _config_and_epoch(cib):
    root = ET.fromstring(cib.read_text())
    return ET.tostring(root.find("configuration")), root.get("epoch")


def _apply(script, cib):
    """The rendered script, as the README says to try it: PCS_FILE=cib.xml sh SCRIPT."""
    return subprocess.run(["sh", str(script)], env=dict(os.environ, PCS_FILE=str(cib)), capture_output=True,
                          text=True, timeout=600)


class Applied:
    """One example's pcs script applied once to an empty CIB (what costs: ~70 pcs calls)."""

    def __init__(self, example, workdir):
        self.config, self.nodes = _rendered(example)
        self.script = workdir / "apply.sh"
        self.script.write_text(pacemaker.pcs_script(self.config))
        cib = _empty_cib(workdir, self.nodes)
        self.first = _apply(self.script, cib)
        self.cib_text = cib.read_text()

    def copy(self, tmp_path):
        """The CIB after the first run, for a test to change."""
        assert self.first.returncode == 0, self.first.stderr
        cib = tmp_path / "cib.xml"
        cib.write_text(self.cib_text)
        return cib


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """applied(example): that example's script, applied once for the whole module."""
    done = {}

    def get(example):
        if example not in done:
            done[example] = Applied(example, tmp_path_factory.mktemp(f"pcs-{example}"))
        return done[example]
    return get


@pytest.mark.parametrize("example", EXAMPLES)
def test_pcs_script_builds_the_cib_xenha_writes(example, applied):
    run = applied(example)
    assert run.first.returncode == 0, run.first.stderr
    _assert_same_meaning(pacemaker.canonical(pacemaker.cib_xml(run.config, run.nodes)),
                         pacemaker.canonical(run.cib_text))


@pytest.mark.parametrize("example", EXAMPLES)
def test_a_second_run_of_the_pcs_script_changes_nothing(example, applied, tmp_path):
    run = applied(example)
    cib = run.copy(tmp_path)
    after_first = _config_and_epoch(cib)
    second = _apply(run.script, cib)
    assert second.returncode == 0, second.stderr
    assert _config_and_epoch(cib) == after_first


def test_pcs_script_adds_a_vm_missing_from_an_existing_tag(applied, tmp_path):
    """A cluster set up from an older description gets only what is new."""
    run = applied("three-nodes")
    cib = run.copy(tmp_path)
    tag = ET.fromstring(cib.read_text()).find(".//tags/tag")
    members = [ref.get("id") for ref in tag.findall("obj_ref")]
    assert len(members) > 1, "pcs keeps no empty tag, so the test needs two VMs"
    removed = members[-1]
    subprocess.run(["pcs", "-f", str(cib), "tag", "update", tag.get("id"), "remove", removed],
                   check=True, capture_output=True)
    assert removed not in [ref.get("id") for ref in ET.fromstring(cib.read_text()).iter("obj_ref")]

    again = _apply(run.script, cib)
    assert again.returncode == 0, again.stderr
    tag = ET.fromstring(cib.read_text()).find(".//tags/tag")
    assert sorted(ref.get("id") for ref in tag.findall("obj_ref")) == sorted(members)
    # ...and nothing else: the CIB means what the first run built
    _assert_same_meaning(pacemaker.canonical(run.cib_text), pacemaker.canonical(cib.read_text()))
