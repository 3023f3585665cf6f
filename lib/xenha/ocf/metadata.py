"""OCF 1.1 meta-data XML, generated from an agent's declarations with ElementTree.

The output validates against the OCF 1.1 RNG (`ocf/ocf-1.1-ra-api.rng`). It also
carries the DOCTYPE that resource-agents' ocf-tester needs to run its DTD check; that
2009 DTD cannot express OCF 1.1 (`unique-group`, `reloadable`, `deprecated`, `select`,
`reload-agent`), see `ocf/ra-api-1.1.dtd` and tests/conformance for how we test it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from xenha.ocf.parameters import SELECT

OCF_VERSION = "1.1"
HEADER = '<?xml version="1.0"?>\n<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">\n'


def _text(parent, tag: str, text: str, lang: str = "en"):
    element = ET.SubElement(parent, tag, {"lang": lang} if lang else {})
    element.text = text
    return element


def _bool(value: bool) -> str:
    return "1" if value else "0"


def build(agent_class) -> ET.Element:
    root = ET.Element("resource-agent", {"name": agent_class.NAME, "version": agent_class.VERSION})
    ET.SubElement(root, "version").text = OCF_VERSION
    _text(root, "longdesc", agent_class.LONGDESC.strip())
    _text(root, "shortdesc", agent_class.SHORTDESC.strip())
    parameters = ET.SubElement(root, "parameters")
    for param in agent_class.PARAMETERS:
        attrs = {"name": param.name}
        if param.unique_group:
            attrs["unique-group"] = param.unique_group
        attrs["required"] = _bool(param.required)
        attrs["reloadable"] = _bool(param.reloadable)
        element = ET.SubElement(parameters, "parameter", attrs)
        if param.deprecated:
            deprecated = ET.SubElement(element, "deprecated")
            if param.replaced_with:
                ET.SubElement(deprecated, "replaced-with", {"name": param.replaced_with})
            if param.deprecated_note:
                _text(deprecated, "desc", param.deprecated_note)
        _text(element, "longdesc", param.longdesc.strip())
        _text(element, "shortdesc", param.shortdesc.strip())
        content = {"type": param.type}
        default = param.default_text()
        if default is not None:
            content["default"] = default
        content_element = ET.SubElement(element, "content", content)
        if param.type == SELECT:
            for option in param.options:
                ET.SubElement(content_element, "option", {"value": option})
    actions = ET.SubElement(root, "actions")
    for action in agent_class.ACTIONS:
        attrs = {"name": action.name, "timeout": f"{action.timeout}s"}
        if action.interval is not None:
            attrs["interval"] = f"{action.interval}s"
        if action.start_delay is not None:
            attrs["start-delay"] = f"{action.start_delay}s"
        if action.depth is not None:
            attrs["depth"] = str(action.depth)
        if action.role is not None:
            attrs["role"] = action.role
        ET.SubElement(actions, "action", attrs)
    return root


def render(agent_class) -> str:
    root = build(agent_class)
    ET.indent(root, space="  ")
    return HEADER + ET.tostring(root, encoding="unicode") + "\n"
