"""The cluster as Pacemaker sees it, read through any node backend.

`crm_mon --output-as=xml` run inside a node that is up, parsed into plain records; the
waits every step of a scenario needs (all nodes online, the cluster idle, a resource on
exactly one node), each bounded.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from xenha_lab.lab.backend import LabError, NodeBackend


@dataclass(frozen=True)
class ClusterNode:
    name: str
    online: bool
    standby: bool
    pending: bool
    unclean: bool
    shutdown: bool
    dc: bool


@dataclass(frozen=True)
class ClusterResource:
    id: str
    agent: str
    role: str
    active: bool
    failed: bool
    nodes: tuple


@dataclass(frozen=True)
class ClusterStatus:
    asked: str                         # the node whose view this is
    dc: str | None
    quorum: bool
    nodes: dict = field(default_factory=dict)        # name -> ClusterNode
    resources: dict = field(default_factory=dict)    # id -> ClusterResource (clone instances merged)
    fencing: tuple = ()                               # fence_history: {"action", "target", "status", ...}

    def online(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.online and not n.pending and not n.unclean]

    def located(self, rsc: str) -> tuple:
        found = self.resources.get(rsc)
        return found.nodes if found else ()

    def to_json(self) -> dict:
        return {"asked": self.asked, "dc": self.dc, "quorum": self.quorum,
                "nodes": [vars(n) for n in self.nodes.values()],
                "resources": [{**vars(r), "nodes": list(r.nodes)} for r in self.resources.values()],
                "fencing": list(self.fencing)}


def _flag(element, name: str) -> bool:
    return element.get(name) == "true"


def parse_crm_mon(text: str, asked: str) -> ClusterStatus:
    root = ET.fromstring(text)
    dc_element = root.find("./summary/current_dc")
    dc = dc_element.get("name") if dc_element is not None and _flag(dc_element, "present") else None
    quorum = dc_element is not None and _flag(dc_element, "with_quorum")
    nodes = {}
    for node in root.iterfind("./nodes/node"):
        nodes[node.get("name")] = ClusterNode(
            name=node.get("name"), online=_flag(node, "online"), standby=_flag(node, "standby"),
            pending=_flag(node, "pending"), unclean=_flag(node, "unclean"), shutdown=_flag(node, "shutdown"),
            dc=_flag(node, "is_dc"))
    resources: dict = {}
    for rsc in root.iter("resource"):
        rid = rsc.get("id", "").split(":")[0]
        where = tuple(n.get("name") for n in rsc.iterfind("node"))
        before = resources.get(rid)
        resources[rid] = ClusterResource(
            id=rid, agent=rsc.get("resource_agent", ""), role=rsc.get("role", ""),
            active=_flag(rsc, "active") or bool(before and before.active),
            failed=_flag(rsc, "failed") or bool(before and before.failed),
            nodes=tuple(dict.fromkeys((before.nodes if before else ()) + where)))
    fencing = tuple(dict(event.attrib) for event in root.iterfind("./fence_history/fence_event"))
    return ClusterStatus(asked=asked, dc=dc, quorum=quorum, nodes=nodes, resources=resources, fencing=fencing)


class Cluster:
    """Pacemaker's view, asked of a node that is up."""

    def __init__(self, lab: NodeBackend):
        self.lab = lab

    def any_node(self, node: str | None = None) -> str:
        """`node` if it is up (LabError if not); without one, the first node that is up."""
        up = self.lab.powered()
        if node is not None:
            if node not in up:
                raise LabError(f"{node} is not up")
            return node
        if not up:
            raise LabError("no node is up")
        return up[0]

    def run(self, argv, node: str | None = None, timeout: float = 60.0, check: bool = True):
        target = self.any_node(node)
        return self.lab.check(target, argv, timeout=timeout) if check else self.lab.run(target, argv, timeout=timeout)

    def status(self, node: str | None = None, timeout: float = 15.0) -> ClusterStatus | None:
        """crm_mon's XML from `node` (or, without one, any node that is up); None if it
        cannot answer."""
        try:
            target = self.any_node(node)
        except LabError:
            return None
        result = self.lab.run(target, ["crm_mon", "--one-shot", "--inactive", "--output-as=xml"], timeout=timeout)
        if not result.ok:
            return None
        try:
            return parse_crm_mon(result.stdout, target)
        except ET.ParseError:
            return None

    def wait(self, what: str, predicate, timeout: float, interval: float = 0.3):
        """Poll predicate() until it returns something true; LabError after `timeout`."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = predicate()
            if last:
                return last
            if time.monotonic() >= deadline:
                raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def wait_online(self, nodes, timeout: float = 60.0) -> ClusterStatus:
        """Every node in `nodes` online in the view of each of them, with a DC."""
        wanted = sorted(set(nodes))

        def agrees(view) -> bool:
            return view is not None and view.dc is not None and set(wanted) <= set(view.online())

        def ready():
            first = self.status(wanted[0])        # one node until it sees everyone, then the others
            if agrees(first) and all(agrees(self.status(node)) for node in wanted[1:]):
                return first
            return None
        return self.wait(f"nodes {', '.join(sorted(wanted))} online", ready, timeout)

    def wait_idle(self, timeout: float = 60.0, node: str | None = None) -> None:
        """Until the cluster has nothing left to do (crm_resource --wait)."""
        seconds = max(int(timeout), 1)
        self.run(["crm_resource", "--wait", f"--timeout={seconds}s"], node=node, timeout=timeout + 15)

    def wait_started(self, rsc: str, timeout: float = 60.0, on: str | None = None, not_on=()) -> str:
        """Until `rsc` runs on exactly one node (that node, or one not in `not_on`)."""
        def placed():
            status = self.status()
            where = status.located(rsc) if status else ()
            if len(where) == 1 and (on is None or where[0] == on) and where[0] not in not_on:
                return where[0]
            return None
        return self.wait(f"{rsc} running on {'node ' + on if on else 'exactly one node'}", placed, timeout)

    def set_property(self, name: str, value: str, node: str | None = None) -> None:
        self.run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value], node=node)
