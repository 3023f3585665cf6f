"""Meta-data of every agent: valid OCF 1.1, generated from the declarations."""

import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import RNG, need_tool
from xenha.agents import AGENTS as REGISTRY, agent_class
from xenha.agents.xen_domain import XenDomainAgent
from xenha.ocf.agent import Action, ResourceAgent
from xenha.ocf.metadata import render
from xenha.ocf.parameters import SELECT, STRING, Parameter

AGENTS = [agent_class(name) for name in REGISTRY]


def validate(xml_text: str) -> subprocess.CompletedProcess:
    xmllint = need_tool("xmllint")
    return subprocess.run([xmllint, "--noout", "--relaxng", str(RNG), "-"], input=xml_text,
                          capture_output=True, text=True)


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.NAME)
def test_metadata_validates_against_ocf_1_1_rng(agent):
    checked = validate(render(agent))
    assert checked.returncode == 0, checked.stderr
    assert "- validates" in checked.stderr


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.NAME)
def test_metadata_facts(agent):
    root = ET.fromstring(render(agent).split("\n", 2)[2])
    assert root.findtext("version") == "1.1"
    for action in root.iter("action"):
        assert action.get("timeout").endswith("s") and action.get("timeout")[:-1].isdigit()
        if action.get("interval"):
            assert action.get("interval").endswith("s")
    for param in root.iter("parameter"):
        assert param.find("shortdesc").text.strip(), param.get("name")
    names = [p.get("name") for p in root.iter("parameter")]
    assert names == [p.name for p in agent.PARAMETERS]
    monitors = [a for a in root.iter("action") if a.get("name") == "monitor"]
    intervals = [m.get("interval") for m in monitors]
    assert len(set(intervals)) == len(intervals), "monitor entries need distinct intervals"


def test_xen_domain_uses_ocf_1_1_features():
    root = ET.fromstring(render(XenDomainAgent).split("\n", 2)[2])
    params = {p.get("name"): p for p in root.iter("parameter")}
    assert params["name"].get("unique-group") == "xen-domain-name"
    assert params["shutdown_timeout"].get("reloadable") == "1"
    assert params["config"].get("reloadable") == "0"
    assert params["xmfile"].find("deprecated/replaced-with").get("name") == "config"
    content = params["shutdown_mode"].find("content")
    assert content.get("type") == "select"
    assert [o.get("value") for o in content] == ["pv", "pv-or-acpi", "acpi"]
    actions = {a.get("name") for a in root.iter("action")}
    assert {"migrate_to", "migrate_from", "reload-agent", "validate-all"} <= actions
    assert "reload" not in actions


def test_text_is_escaped_and_still_valid():
    class Tricky(ResourceAgent):
        NAME = "tricky"
        SHORTDESC = "a <b> & 'c'"
        LONGDESC = 'quotes " and ]]> and <!-- not a comment -->'
        PARAMETERS = (Parameter("p", STRING, "x < y & z", "default with <tags>", default="<&>"),
                      Parameter("s", SELECT, "s", "s", options=("a&b", "<c>"), default="a&b"))
        ACTIONS = (Action("start", 20), Action("stop", 20), Action("monitor", 20, interval=10))

    text = render(Tricky)
    assert validate(text).returncode == 0
    root = ET.fromstring(text.split("\n", 2)[2])
    assert root.findtext("shortdesc") == "a <b> & 'c'"
    assert root.find("parameters/parameter/content").get("default") == "<&>"


def test_metadata_has_the_doctype_ocf_tester_needs():
    assert render(XenDomainAgent).splitlines()[1] == '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">'


def test_the_registry_names_each_agent_by_its_type():
    assert [agent.NAME for agent in AGENTS] == list(REGISTRY)
    assert len(AGENTS) == 3
