"""Pacemaker's offline tools on a CIB file: crm_simulate, crm_verify, crm_attribute,
crm_resource, crm_mon (all with CIB_file), used by rendering checks and scenarios.
Not on any agent's path."""

import os
import xml.etree.ElementTree as ET

from xenha.tools import runner

TIMEOUT = 120.0


class PacemakerError(Exception):
    """A Pacemaker tool failed."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # the finished command (runner.CommandResult); None: unreadable output


def _env(cib_path: str | None = None) -> dict:
    env = dict(os.environ)
    if cib_path:
        env["CIB_file"] = cib_path
    return env


def run(argv, cib_path: str | None = None, check: bool = True, timeout: float = TIMEOUT) -> runner.CommandResult:
    result = runner.run(argv, timeout, env=_env(cib_path))
    if check and not result.ok:
        raise PacemakerError(f"{result.describe()}", result)
    return result


class Transition:
    """One crm_simulate run: its text, its transition graph, and the actions in it."""

    def __init__(self, text: str, graph_xml: str):
        self.text = text
        self.graph = ET.fromstring(graph_xml) if graph_xml.strip() else ET.Element("transition_graph")

    @property
    def summary(self) -> str:
        """The text from "Transition Summary:" on (what golden files hold)."""
        index = self.text.find("Transition Summary:")
        return self.text[index:] if index >= 0 else self.text

    @property
    def idle(self) -> bool:
        lines = self.summary.split("Executing Cluster Transition:")[0].splitlines()[1:]
        return not any(line.strip() for line in lines)

    def actions(self):
        """(synapse id, operation, resource or target, node, inputs) for every real action."""
        found = []
        for synapse in self.graph.iter("synapse"):
            for action in synapse.find("action_set"):
                operation = action.get("operation")
                rsc = action.find("primitive")
                target = action.get("on_node", "")
                name = rsc.get("id") if rsc is not None else action.get("operation_key", "")
                inputs = [trigger.get("id") for trigger in synapse.iter("trigger")]
                found.append((synapse.get("id"), action.tag, operation, name, target, action.get("id"), inputs))
        return found


def simulate(cib_in: str, cib_out: str, graph_out: str, extra=()) -> Transition:
    """crm_simulate -S with quorum, saving the resulting CIB and graph."""
    argv = ["crm_simulate", "-x", cib_in, "-S", "-q", "1", "-O", cib_out, "-G", graph_out, *extra]
    result = run(argv)
    graph = ""
    if os.path.exists(graph_out):
        with open(graph_out, encoding="utf-8") as handle:
            graph = handle.read()
    return Transition(result.stdout, graph)


def verify(cib_path: str) -> runner.CommandResult:
    return run(["crm_verify", "-x", cib_path, "-V"], check=False)


def set_node_attribute(cib_path: str, node: str, name: str, value: str | None, lifetime: str = "reboot") -> None:
    argv = ["crm_attribute", "--node", node, "--name", name, "--lifetime", lifetime]
    argv += ["--delete"] if value is None else ["--update", value]
    run(argv, cib_path=cib_path)


def move(cib_path: str, resource: str, node: str) -> None:
    run(["crm_resource", "--move", "--resource", resource, "--node", node], cib_path=cib_path)


def where(cib_path: str) -> dict:
    """{resource id: [(node, role)]} of active resources, from crm_mon's XML."""
    result = run(["crm_mon", "-1", "--output-as=xml"], cib_path=cib_path)
    root = ET.fromstring(result.stdout)
    placement = {}
    for resource in root.iter("resource"):
        if resource.get("active") != "true":
            continue
        nodes = [(n.get("name"), resource.get("role")) for n in resource.iter("node")]
        placement.setdefault(resource.get("id"), []).extend(nodes)
    return placement
