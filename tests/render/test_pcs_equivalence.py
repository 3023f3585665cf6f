"""The CIB xenha writes directly is the CIB pcs builds from the rendered pcs script.

The pcs script is what an administrator reviews and applies; the direct XML is what
rendering at scale and the scheduler scenarios use. Running the script with `pcs -f` on
an empty CIB (with the installed agents, whose meta-data pcs reads) and comparing the
two by meaning (resources, agents, parameters, meta attributes, operations, constraints,
properties, tags; not element ids) proves they are the same. Running it again proves
it is safe to re-apply.
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


@pytest.mark.parametrize("example", EXAMPLES)
def test_pcs_script_builds_the_cib_and_a_second_run_changes_nothing(example, tmp_path):
    config, nodes = _rendered(example)
    cib = _empty_cib(tmp_path, nodes)
    script = tmp_path / "apply.sh"
    script.write_text(pacemaker.pcs_script(config))
    env = dict(os.environ, PCS_FILE=str(cib))

    first = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    _assert_same_meaning(pacemaker.canonical(pacemaker.cib_xml(config, nodes)),
                         pacemaker.canonical(cib.read_text()))
    after_first = _config_and_epoch(cib)

    second = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert _config_and_epoch(cib) == after_first


def test_pcs_script_adds_a_vm_missing_from_an_existing_tag(tmp_path):
    """A cluster set up from an older description gets only what is new."""
    config, nodes = _rendered("three-nodes")
    cib = _empty_cib(tmp_path, nodes)
    script = tmp_path / "apply.sh"
    script.write_text(pacemaker.pcs_script(config))
    env = dict(os.environ, PCS_FILE=str(cib))
    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True, timeout=600)
    tag = ET.fromstring(cib.read_text()).find(".//tags/tag")
    members = [ref.get("id") for ref in tag.findall("obj_ref")]
    assert len(members) > 1, "pcs keeps no empty tag, so the test needs two VMs"
    removed = members[-1]
    subprocess.run(["pcs", "-f", str(cib), "tag", "update", tag.get("id"), "remove", removed],
                   check=True, capture_output=True)

    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True, timeout=600)
    tag = ET.fromstring(cib.read_text()).find(".//tags/tag")
    assert sorted(ref.get("id") for ref in tag.findall("obj_ref")) == sorted(members)
