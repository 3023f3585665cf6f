"""The CIB xenha writes directly is the CIB pcs builds from the rendered pcs commands.

The pcs script is what an administrator reviews and applies; the direct XML is what
rendering at scale and the scheduler scenarios use. Running every rendered command with
`pcs -f` on an empty CIB (with the installed agents, whose meta-data pcs reads) and
comparing the two by meaning (resources, agents, parameters, meta attributes,
operations, constraints, properties, tags; not element ids) proves they are the same.
"""

import os
import subprocess

import pytest

from conftest import REPO, installed, need_tool
from xenha.cluster import allocation, description
from xenha.render import pacemaker
from xenha.sim.hosts import default_agent

EXAMPLES = ["howto", "three-nodes"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_direct_cib_equals_what_pcs_builds(example, tmp_path):
    need_tool("pcs")
    for agent in ("xen-domain", "lvm-volume", "drbd-resource"):
        installed(default_agent(agent))
    path = REPO / "cluster-config" / "examples" / f"{example}.toml"
    desc = description.load(str(path))
    slots, _added = allocation.allocate(desc, allocation.read(allocation.allocation_path(str(path))))
    config = pacemaker.build(desc, slots)
    nodes = [n.name for n in desc.nodes]
    direct = pacemaker.cib_xml(config, nodes)

    cib = tmp_path / "cib.xml"
    cib.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
    env = dict(os.environ, CIB_file=str(cib))
    for number, node in enumerate(nodes, start=1):
        subprocess.run(["cibadmin", "-C", "-o", "nodes", "-X", f'<node id="{number}" uname="{node}"/>'],
                       env=env, check=True)
    for command in pacemaker.pcs_commands(config):
        result = subprocess.run(["pcs", "-f", str(cib), *command], capture_output=True, text=True)
        assert result.returncode == 0, f"pcs {' '.join(command)}: {result.stderr}"
    by_pcs = pacemaker.canonical(cib.read_text())
    mine = pacemaker.canonical(direct)
    for part in ("properties", "rsc_defaults", "nodes", "tags", "constraints"):
        assert mine[part] == by_pcs[part], part
    assert sorted(mine["resources"]) == sorted(by_pcs["resources"])
    for rsc in mine["resources"]:
        assert mine["resources"][rsc] == by_pcs["resources"][rsc], rsc
