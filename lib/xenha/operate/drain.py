"""`xenha drain NODE` / `xenha undrain NODE`: empty a node for maintenance, plan first.

The plan is Pacemaker's own: the live CIB (`cibadmin --query`, status included) with the
node's standby attribute set, run through `crm_simulate -S`; its "Transition Summary"
says which VM goes where and how (Migrate = live, Move/Restart = stopped and started).
The drain itself is the standby attribute (forever), so it survives the CLI being
interrupted: the state is the cluster's, and `xenha drain NODE` again shows progress.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass, field

from xenha.operate import state as S
from xenha.operate.env import Environment, OperationError
from xenha.operate.status import cib_text, crm_mon, last_words

POLL_S = 0.5
# `  * Migrate    web1    ( n1 -> n2 )`, `  * Stop  lv_web1:0  (  n1 )  due to node availability`
SUMMARY_LINE = re.compile(r"^\s*\*\s+(?P<action>[A-Z][a-z]+)\s+(?P<rsc>\S+)\s+\(\s*(?P<inside>[^)]*?)\s*\)(?P<why>.*)$")


@dataclass(frozen=True)
class Planned:
    """One line of crm_simulate's transition summary."""
    action: str                # Migrate, Move, Start, Stop, Restart, Recover, Promote, Demote, ...
    resource: str              # without ":N"
    source: str | None
    target: str | None
    note: str = ""

    def to_json(self) -> dict:
        return {"action": self.action, "resource": self.resource, "from": self.source, "to": self.target,
                "note": self.note}


def parse_summary(text: str) -> list[Planned]:
    """The actions of crm_simulate's "Transition Summary:" section (pure)."""
    start = text.find("Transition Summary:")
    if start < 0:
        return []
    section = text[start:].split("\n", 1)[1] if "\n" in text[start:] else ""
    for end_marker in ("Executing Cluster Transition:", "Revised Cluster Status:"):
        section = section.split(end_marker)[0]
    planned = []
    for line in section.splitlines():
        match = SUMMARY_LINE.match(line)
        if not match:
            continue
        inside = match["inside"]
        source = target = None
        if "->" in inside:
            left, right = (part.strip() for part in inside.split("->", 1))
            words_right = right.split()
            if left in ("Promoted", "Unpromoted", "Started", "Stopped", "Master", "Slave"):
                source = target = words_right[-1] if words_right else None     # a role change on one node
            else:
                source, target = left.split()[-1] if left else None, words_right[-1] if words_right else None
        elif inside:
            words = inside.split()
            where = words[-1]
            if match["action"] in ("Stop", "Demote"):
                source = where
            else:
                target = where
                if match["action"] in ("Restart", "Recover", "Promote", "Reload"):
                    source = where
        planned.append(Planned(match["action"], match["rsc"].split(":")[0], source, target, match["why"].strip()))
    return planned


@dataclass
class Plan:
    node: str
    actions: list               # Planned, every action
    vms: list                   # Planned, the VMs' own actions

    def to_json(self) -> dict:
        return {"node": self.node, "vms": [p.to_json() for p in self.vms],
                "actions": [p.to_json() for p in self.actions]}


def plan(env: Environment, node: str, vms=None) -> Plan:
    """What Pacemaker would do once `node` is in standby (nothing is changed)."""
    with tempfile.TemporaryDirectory(prefix="xenha-drain-") as work:
        path = os.path.join(work, "cib.xml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(cib_text(env))
        env.check(["crm_attribute", "--node", node, "--name", "standby", "--update", "on",
                   "--lifetime", "forever"], cib_file=path)
        result = env.run(["crm_simulate", "--xml-file", path, "--simulate"], 120.0)
        if not result.ok:
            raise OperationError(f"crm_simulate failed: {last_words(result)}")
    actions = parse_summary(result.stdout)
    if vms is None:
        vms = S.parse_cib(cib_text(env)).vms
    return Plan(node, actions, [p for p in actions if p.resource in vms])


@dataclass
class Moved:
    vm: str
    source: str
    target: str | None = None
    outcome: str = "pending"      # moved, failed, stopped, pending
    seconds: float | None = None

    def to_json(self) -> dict:
        return {"vm": self.vm, "from": self.source, "to": self.target, "outcome": self.outcome,
                "seconds": None if self.seconds is None else round(self.seconds, 2)}


@dataclass
class DrainReport:
    node: str
    plan: Plan
    already: bool                               # the node was in standby before this run
    moves: list = field(default_factory=list)   # Moved
    empty: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.empty and all(m.outcome == "moved" for m in self.moves)

    def to_json(self) -> dict:
        return {"node": self.node, "already_in_standby": self.already, "empty": self.empty, "ok": self.ok,
                "seconds": round(self.seconds, 2), "plan": self.plan.to_json(),
                "moves": [m.to_json() for m in self.moves]}


def check_node(mon: S.CrmMon, node: str) -> None:
    if node not in mon.nodes:
        raise OperationError(f"unknown node {node!r} (nodes: {', '.join(mon.nodes)})", code=2)


def on_node(mon: S.CrmMon, node: str) -> list[str]:
    """Resources (primitives, clone instances merged) active on `node`."""
    return sorted({item.id for item in mon.instances if item.active and node in item.nodes})


def drain(env: Environment, node: str, timeout: float = 600.0, dry_run: bool = False, progress=None) -> DrainReport:
    """Plan, standby, then follow every VM that was on the node until the node is
    empty or `timeout` ends."""
    say = progress or (lambda kind, **data: None)
    mon = crm_mon(env)
    check_node(mon, node)
    config = S.parse_cib(cib_text(env))
    already = mon.nodes[node].standby
    the_plan = plan(env, node, config.vms)
    say("plan", plan=the_plan, already=already)
    report = DrainReport(node, the_plan, already)
    leaving = [vm for vm in config.vms if node in mon.where(vm)]
    report.moves = [Moved(vm, node) for vm in leaving]
    if dry_run:
        return report
    if not mon.nodes[node].online:
        raise OperationError(f"{node} is offline: nothing runs there to drain", code=3)
    started = time.monotonic()
    if not already:
        env.check(["crm_attribute", "--node", node, "--name", "standby", "--update", "on", "--lifetime", "forever"])
        say("standby", node=node)
    say("following", moves=report.moves)
    deadline = started + timeout
    while True:
        mon = crm_mon(env)
        for move in report.moves:
            if move.outcome != "pending":
                continue
            state, nodes, failed = S.vm_state(mon, move.vm)
            if failed:
                move.outcome, move.seconds = "failed", time.monotonic() - started
            elif state == "running" and nodes and node not in nodes:
                move.outcome, move.target, move.seconds = "moved", nodes[0], time.monotonic() - started
            elif state == "stopped" and not any(p.resource == move.vm and p.target for p in the_plan.vms):
                move.outcome, move.seconds = "stopped", time.monotonic() - started
            if move.outcome != "pending":
                say("moved", move=move)
        left = on_node(mon, node)
        if not left and all(m.outcome != "pending" for m in report.moves):
            report.empty = True
            break
        if time.monotonic() >= deadline:
            say("timeout", left=left)
            break
        time.sleep(POLL_S)
    report.seconds = time.monotonic() - started
    return report


def undrain(env: Environment, node: str) -> bool:
    """Take `node` out of standby; False when it was not in standby."""
    mon = crm_mon(env)
    check_node(mon, node)
    if not mon.nodes[node].standby:
        return False
    env.check(["crm_attribute", "--node", node, "--name", "standby", "--update", "off", "--lifetime", "forever"])
    return True
