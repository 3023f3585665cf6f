"""The live cluster as one view: crm_mon's XML, the CIB configuration, DRBD's state on
each replica (`drbdsetup status --json`) and each node's domains (`xl list`), joined
per VM, with what needs attention. Pure: text in, records out (no tool runs here).

A VM is a primitive of ocf:xenha:xen-domain; its DRBD resource is found through the
colocation "VM with Promoted <clone>" and that clone's drbd_resource parameter; its
replicas are the cluster's nodes minus those where a -INFINITY location (not a cli-*
one) keeps it away (what the renderer writes, design.md).

The JSON (`ClusterView.to_json`, `xenha status --json`) is documented in
docs/operations.md; its "schema" number changes only when a key changes meaning or
goes away.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from xenha.hypervisor import domain as dom

SCHEMA = 1
XEN_DOMAIN = ("ocf", "xenha", "xen-domain")
DRBD_AGENT = ("ocf", "xenha", "drbd-resource")
FENCE_PREFIX = "drbd-fence-by-handler-"
MOVE_PREFIXES = ("cli-prefer-", "cli-ban-")


class StateError(Exception):
    """A tool's answer could not be read (one line)."""


def _true(element, name: str) -> bool:
    return element is not None and element.get(name) == "true"


def _xml(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as error:
        raise StateError(f"{what} is not XML: {error}") from None


# --- crm_mon -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    name: str
    online: bool
    standby: bool
    standby_onfail: bool
    maintenance: bool
    pending: bool
    unclean: bool
    shutdown: bool
    dc: bool

    @property
    def available(self) -> bool:
        """Can run resources now."""
        return self.online and not (self.standby or self.standby_onfail or self.maintenance or self.pending
                                    or self.unclean or self.shutdown)


@dataclass(frozen=True)
class Instance:
    """One resource (or clone instance) as crm_mon shows it."""
    id: str                    # without the clone's ":N"
    agent: str
    role: str                  # Started, Stopped, Promoted, Unpromoted, Migrating ...
    active: bool
    failed: bool
    managed: bool
    blocked: bool
    nodes: tuple


@dataclass(frozen=True)
class Failure:
    resource: str
    node: str
    operation: str
    interval_ms: int
    exit_code: int | None
    exit_status: str
    exit_reason: str
    status: str
    last_rc_change: str

    def to_json(self) -> dict:
        return {"resource": self.resource, "node": self.node, "operation": self.operation,
                "interval_ms": self.interval_ms, "exit_code": self.exit_code, "exit_status": self.exit_status,
                "exit_reason": self.exit_reason, "status": self.status, "last_rc_change": self.last_rc_change}


@dataclass(frozen=True)
class CrmMon:
    dc: str | None
    quorum: bool
    nodes: dict                # name -> Node, in crm_mon's order
    instances: tuple           # Instance, every resource and clone instance
    failures: tuple            # Failure
    maintenance_mode: bool = False

    def where(self, rsc: str, roles=None) -> list[str]:
        """The nodes where `rsc` (a primitive id, clone instances merged) is active."""
        found = []
        for item in self.instances:
            if item.id == rsc and item.active and (roles is None or item.role in roles):
                found += [n for n in item.nodes if n not in found]
        return found

    def roles(self, rsc: str) -> dict:
        """{node: role} of a clone's instances (or a primitive)."""
        return {n: item.role for item in self.instances if item.id == rsc and item.active for n in item.nodes}

    def resource(self, rsc: str) -> list[Instance]:
        return [item for item in self.instances if item.id == rsc]


def _op_interval(text: str | None) -> int:
    digits = (text or "0").removesuffix("ms")
    return int(digits) if digits.isdigit() else 0


def _failure_resource(op_key: str, task: str, interval_ms: int) -> str:
    """The resource of a failed action: op_key is `<rsc>_<task>_<interval>`."""
    suffix = f"_{task}_{interval_ms}"
    return op_key[:-len(suffix)] if task and op_key.endswith(suffix) else op_key.rsplit("_", 2)[0]


def parse_crm_mon(text: str) -> CrmMon:
    """`crm_mon --one-shot --inactive --output-as=xml`."""
    root = _xml(text, "crm_mon's output")
    if root.tag != "pacemaker-result":
        raise StateError(f"crm_mon's output starts with <{root.tag}>, not <pacemaker-result>")
    if root.find("summary") is None:          # crm_mon exits 0 with only its errors when it cannot connect
        errors = [e.text.strip() for e in root.iter("error") if e.text and e.text.strip()]
        raise StateError("crm_mon cannot show the cluster: " + (errors[-1] if errors else "no summary")
                         + " (is the cluster running on this node?)")
    dc_element = root.find("./summary/current_dc")
    dc = dc_element.get("name") if _true(dc_element, "present") else None
    options = root.find("./summary/cluster_options")
    nodes = {}
    for node in root.iterfind("./nodes/node"):
        nodes[node.get("name")] = Node(
            name=node.get("name"), online=_true(node, "online"), standby=_true(node, "standby"),
            standby_onfail=_true(node, "standby_onfail"), maintenance=_true(node, "maintenance"),
            pending=_true(node, "pending"), unclean=_true(node, "unclean"), shutdown=_true(node, "shutdown"),
            dc=_true(node, "is_dc"))
    instances = []
    resources = root.find("resources")
    for rsc in (resources.iter("resource") if resources is not None else ()):
        instances.append(Instance(
            id=rsc.get("id", "").split(":")[0], agent=rsc.get("resource_agent", ""), role=rsc.get("role", ""),
            active=_true(rsc, "active"), failed=_true(rsc, "failed"), managed=rsc.get("managed") != "false",
            blocked=_true(rsc, "blocked"), nodes=tuple(n.get("name") for n in rsc.iterfind("node"))))
    failures = []
    for item in root.iterfind("./failures/failure"):
        task = item.get("task", "")
        interval = _op_interval(item.get("interval"))
        code = item.get("exitcode")
        failures.append(Failure(
            resource=_failure_resource(item.get("op_key", ""), task, interval), node=item.get("node", ""),
            operation=task, interval_ms=interval, exit_code=int(code) if code and code.lstrip("-").isdigit() else None,
            exit_status=item.get("exitstatus", ""), exit_reason=item.get("exitreason", ""),
            status=item.get("status", ""), last_rc_change=item.get("last-rc-change", "")))
    return CrmMon(dc=dc, quorum=_true(dc_element, "with_quorum"), nodes=nodes, instances=tuple(instances),
                  failures=tuple(failures), maintenance_mode=_true(options, "maintenance-mode"))


# --- the CIB's configuration ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VmConfig:
    name: str
    config: str                # the xl config file on the nodes
    domain: str                # the domain's name for xl
    migration_transport: str
    migration_address_attribute: str
    drbd_clone: str | None
    drbd_primitive: str | None
    drbd_resource: str | None
    lv_clone: str | None
    banned: tuple              # nodes a -INFINITY location keeps it from (not the cli-* ones)
    memory_mib: int | None     # its utilization, when configured


@dataclass(frozen=True)
class Constraint:
    """A location constraint left by a tool: DRBD's fence-peer handler, or a move/ban."""
    id: str
    rsc: str
    node: str | None           # the node it names (the one allowed, for a fencing constraint)
    score: str
    expires: str | None = None
    kind: str = ""             # "fencing", "prefer", "ban"

    def to_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "resource": self.rsc, "node": self.node, "score": self.score,
                "expires": self.expires}


@dataclass(frozen=True)
class CibConfig:
    nodes: tuple                        # node names, configured
    vms: dict                           # name -> VmConfig
    fencing: tuple                      # Constraint
    moves: tuple                        # Constraint
    node_attributes: dict = field(default_factory=dict)   # node -> {name: value}
    properties: dict = field(default_factory=dict)


def _params(element, block: str) -> dict:
    found = {}
    for nvset in element.findall(block):
        for pair in nvset.iter("nvpair"):
            found[pair.get("name")] = pair.get("value")
    return found


def _agent(primitive) -> tuple:
    return (primitive.get("class"), primitive.get("provider"), primitive.get("type"))


def _rule_node_and_expiry(location) -> tuple:
    node, expires = location.get("node"), None
    for rule in location.iter("rule"):
        for expression in rule.iter("expression"):
            if expression.get("attribute") == "#uname" and expression.get("operation") in ("eq", "ne"):
                node = node or expression.get("value")
        for date in rule.iter("date_expression"):
            if date.get("operation") == "lt" and date.get("end"):
                expires = date.get("end")
    return node, expires


def parse_cib(text: str) -> CibConfig:
    """The parts of `cibadmin --query` this module needs."""
    root = _xml(text, "the CIB")
    conf = root.find("configuration")
    if conf is None:
        raise StateError("the CIB has no <configuration>")
    node_names = tuple(n.get("uname") for n in conf.iterfind("./nodes/node"))
    node_attributes = {n.get("uname"): _params(n, "instance_attributes") for n in conf.iterfind("./nodes/node")}
    properties = {}
    for block in conf.iterfind("./crm_config/cluster_property_set"):
        properties.update({p.get("name"): p.get("value") for p in block.iter("nvpair")})
    primitives, parent = {}, {}
    for element in conf.iter():
        if element.tag in ("clone", "group", "master", "bundle"):
            for child in element.iter("primitive"):
                parent[child.get("id")] = element.get("id")
        if element.tag == "primitive":
            primitives[element.get("id")] = element
    by_clone = {parent[pid]: pid for pid in parent}
    constraints = conf.find("constraints")
    constraints = list(constraints) if constraints is not None else []
    vms = {}
    for pid, primitive in primitives.items():
        if _agent(primitive) != XEN_DOMAIN:
            continue
        params = _params(primitive, "instance_attributes")
        utilization = _params(primitive, "utilization")
        drbd_clone = lv_clone = None
        for item in constraints:
            if item.tag == "rsc_colocation" and item.get("rsc") == pid and item.get("with-rsc-role") in (
                    "Promoted", "Master"):
                drbd_clone = item.get("with-rsc")
        drbd_primitive = by_clone.get(drbd_clone) if drbd_clone else None
        drbd_resource = None
        if drbd_primitive and _agent(primitives[drbd_primitive]) == DRBD_AGENT:
            drbd_resource = _params(primitives[drbd_primitive], "instance_attributes").get("drbd_resource")
            for item in constraints:
                if item.tag == "rsc_colocation" and item.get("rsc") == drbd_clone:
                    lv_clone = item.get("with-rsc")
        banned = tuple(item.get("node") for item in constraints
                       if item.tag == "rsc_location" and item.get("rsc") == pid and item.get("node")
                       and item.get("score") in ("-INFINITY", "-infinity")
                       and not item.get("id", "").startswith(MOVE_PREFIXES))
        memory = utilization.get("memory")
        vms[pid] = VmConfig(
            name=pid, config=params.get("config", ""), domain=params.get("name") or pid,
            migration_transport=params.get("migration_transport") or "ssh",
            migration_address_attribute=params.get("migration_address_attribute", ""),
            drbd_clone=drbd_clone, drbd_primitive=drbd_primitive, drbd_resource=drbd_resource, lv_clone=lv_clone,
            banned=banned, memory_mib=int(memory) if memory and memory.isdigit() else None)
    fencing, moves = [], []
    for item in constraints:
        ident = item.get("id", "")
        if item.tag != "rsc_location":
            continue
        node, expires = _rule_node_and_expiry(item)
        score = item.get("score") or next((r.get("score", "") for r in item.iter("rule")), "")
        if ident.startswith(FENCE_PREFIX):
            fencing.append(Constraint(ident, item.get("rsc", ""), node, score, expires, "fencing"))
        elif ident.startswith(MOVE_PREFIXES):
            kind = "prefer" if ident.startswith("cli-prefer-") else "ban"
            moves.append(Constraint(ident, item.get("rsc", ""), node, score, expires, kind))
    return CibConfig(nodes=node_names, vms=vms, fencing=tuple(fencing), moves=tuple(moves),
                     node_attributes=node_attributes, properties=properties)


# --- DRBD and xl on the nodes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replica:
    """One DRBD resource on one node (`drbdsetup status --json`, or events2 on DRBD 8.4)."""
    node: str
    role: str
    disks: tuple               # local disk state per volume
    connections: dict          # peer name -> connection state
    peer_roles: dict           # peer name -> role
    peer_disks: dict           # peer name -> disk state (the first volume's)
    replication: dict          # peer name -> replication state
    sync_done: float | None    # percent of a running resync, the lowest over peers
    sync_eta_s: float | None
    suspended: tuple = ()      # why I/O is frozen: "user", "no-data", "fencing", "quorum" (or "yes")

    @property
    def up_to_date(self) -> bool:
        return bool(self.disks) and all(d == "UpToDate" for d in self.disks)

    @property
    def connected(self) -> bool:
        return bool(self.connections) and all(c == "Connected" for c in self.connections.values())

    @property
    def resyncing(self) -> bool:
        return self.sync_done is not None or any(r.startswith(("Sync", "PausedSync", "StartingSync"))
                                                 for r in self.replication.values())

    def to_json(self) -> dict:
        return {"node": self.node, "configured": True, "role": self.role, "disk": self.disks[0] if self.disks else None,
                "disks": list(self.disks), "connections": dict(self.connections), "peer_roles": dict(self.peer_roles),
                "peer_disks": dict(self.peer_disks), "replication": dict(self.replication),
                "sync_done_percent": self.sync_done, "sync_eta_s": self.sync_eta_s,
                "io_suspended": list(self.suspended)}


def parse_drbd_events2(node: str, text: str) -> dict:
    """{resource: Replica} from `drbdsetup events2 --now all`: what DRBD 8.4's drbdsetup
    answers instead of `status --json` (its peer is named `peer`; no resync ETA)."""
    from xenha.tools.drbd import DrbdError, parse_events2

    try:
        states = parse_events2(text)
    except DrbdError as error:
        raise StateError(f"{node}: drbdsetup events2: {error}") from None
    found = {}
    for name, state in states.items():
        connections, roles, peer_disks, replication = {}, {}, {}, {}
        for peer_id, connection in state.connections.items():
            peer = connection.name or str(peer_id)
            connections[peer], roles[peer] = connection.state, connection.peer_role
            first = state.peers_of(peer_id)[:1]
            peer_disks[peer] = first[0].peer_disk if first else "DUnknown"
            replication[peer] = first[0].replication if first else "Off"
        done = [p.done for p in state.peer_devices.values() if p.done is not None]
        suspended = () if state.suspended in ("no", "") else tuple(state.suspended.split(","))
        found[name] = Replica(node=node, role=state.role, disks=tuple(state.disks()), connections=connections,
                              peer_roles=roles, peer_disks=peer_disks, replication=replication,
                              sync_done=min(done) if done else None, sync_eta_s=None, suspended=suspended)
    return found


def parse_drbd_status(node: str, text: str) -> dict:
    """{resource: Replica} from `drbdsetup status --json` on `node`."""
    try:
        document = json.loads(text) if text.strip() else []
    except ValueError as error:
        raise StateError(f"{node}: drbdsetup status --json is not JSON: {error}") from None
    if not isinstance(document, list):
        raise StateError(f"{node}: drbdsetup status --json is not a list")
    found = {}
    for entry in document:
        connections, roles, peer_disks, replication, done, eta = {}, {}, {}, {}, [], []
        for connection in entry.get("connections", []):
            peer = connection.get("name") or str(connection.get("peer-node-id"))
            connections[peer] = connection.get("connection-state", "StandAlone")
            roles[peer] = connection.get("peer-role", "Unknown")
            for number, peer_device in enumerate(connection.get("peer_devices", [])):
                if number == 0:
                    peer_disks[peer] = peer_device.get("peer-disk-state", "DUnknown")
                    replication[peer] = peer_device.get("replication-state", "Off")
                if peer_device.get("percent-resync-done") is not None:
                    done.append(float(peer_device["percent-resync-done"]))
                    if peer_device.get("estimated-seconds-to-finish") is not None:
                        eta.append(float(peer_device["estimated-seconds-to-finish"]))
        why = tuple(reason for reason in ("user", "no-data", "fencing", "quorum") if entry.get(f"suspended-{reason}"))
        suspended = why or (("yes",) if entry.get("suspended") else ())
        found[entry.get("name", "")] = Replica(
            node=node, role=entry.get("role", "Unknown"),
            disks=tuple(d.get("disk-state", "DUnknown") for d in entry.get("devices", [])),
            connections=connections, peer_roles=roles, peer_disks=peer_disks, replication=replication,
            sync_done=min(done) if done else None, sync_eta_s=max(eta) if eta else None, suspended=suspended)
    return found


def parse_domains(text: str) -> list:
    """`xl list` rows (xenha.tools.xl.parse_list) as (name, state, memory MiB)."""
    from xenha.tools.xl import XlError, parse_list

    try:
        return [(d.name, d.state, d.memory_mib) for d in parse_list(text)]
    except XlError as error:
        raise StateError(str(error)) from None


# --- the joined view -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeFacts:
    """What one node said of itself: DRBD replicas and domains; `error` when it could not
    be asked (unreachable, a tool failed)."""
    name: str
    drbd: dict | None = None               # resource -> Replica
    domains: list | None = None            # (name, state, memory)
    free_memory_mib: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Attention:
    kind: str
    subject: str
    text: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "text": self.text}


@dataclass(frozen=True)
class VmView:
    name: str
    config: VmConfig
    state: str                  # running, stopped, migrating, multiple, failed, unmanaged
    nodes: tuple                # where Pacemaker has it active
    replicas: tuple
    drbd: dict                  # node -> Replica | None (None: not configured there or unknown)
    domains: dict               # node -> (name, state, memory) of the VM's domain and its migration copies
    failed: bool

    @property
    def node(self) -> str | None:
        return self.nodes[0] if len(self.nodes) == 1 else None

    def to_json(self, facts: dict) -> dict:
        replicas = []
        for node in self.replicas:
            replica = self.drbd.get(node)
            known = facts.get(node) is not None and facts[node].error is None and facts[node].drbd is not None
            entry = replica.to_json() if replica else {"node": node, "configured": False if known else None}
            entry["domain"] = [{"name": n, "state": s, "memory_mib": m} for n, s, m in self.domains.get(node, [])]
            replicas.append(entry)
        return {"name": self.name, "state": self.state, "node": self.node, "nodes": list(self.nodes),
                "failed": self.failed, "drbd_resource": self.config.drbd_resource,
                "memory_mib": self.config.memory_mib, "replicas": replicas}


@dataclass(frozen=True)
class ClusterView:
    asked: str | None
    mon: CrmMon
    cib: CibConfig
    facts: dict                 # node -> NodeFacts
    vms: tuple                  # VmView
    attention: tuple            # Attention

    @property
    def ok(self) -> bool:
        return not self.attention

    def vm(self, name: str) -> VmView | None:
        return next((v for v in self.vms if v.name == name), None)

    def to_json(self) -> dict:
        nodes = []
        for node in self.mon.nodes.values():
            facts = self.facts.get(node.name)
            nodes.append({"name": node.name, "online": node.online, "standby": node.standby or node.standby_onfail,
                          "maintenance": node.maintenance, "unclean": node.unclean, "pending": node.pending,
                          "dc": node.dc, "reachable": None if facts is None else facts.error is None,
                          "error": facts.error if facts else None,
                          "free_memory_mib": facts.free_memory_mib if facts else None})
        return {"schema": SCHEMA, "ok": self.ok, "asked": self.asked, "dc": self.mon.dc, "quorum": self.mon.quorum,
                "maintenance_mode": self.mon.maintenance_mode, "nodes": nodes,
                "vms": [vm.to_json(self.facts) for vm in self.vms],
                "failed_actions": [f.to_json() for f in self.mon.failures],
                "fencing_constraints": [c.to_json() for c in self.cib.fencing],
                "move_constraints": [c.to_json() for c in self.cib.moves],
                "attention": [a.to_json() for a in self.attention]}


def vm_state(mon: CrmMon, vm: str) -> tuple[str, tuple, bool]:
    """(state, nodes, failed) of a VM's primitive as crm_mon shows it."""
    items = mon.resource(vm)
    nodes = tuple(mon.where(vm))
    failed = any(i.failed for i in items)
    if failed:
        return "failed", nodes, True
    if any(not i.managed for i in items):
        return "unmanaged", nodes, False
    if any(i.role == "Migrating" for i in items):
        return "migrating", nodes, False
    if len(nodes) > 1:
        return "multiple", nodes, False
    return ("running" if nodes else "stopped"), nodes, False


def join(asked: str | None, mon: CrmMon, cib: CibConfig, facts: dict) -> ClusterView:
    """Everything per VM, and what needs attention."""
    vms = []
    all_nodes = list(mon.nodes) or list(cib.nodes)
    for config in cib.vms.values():
        state, nodes, failed = vm_state(mon, config.name)
        replicas = tuple(n for n in all_nodes if n not in config.banned)
        drbd, domains = {}, {}
        for node in replicas:
            node_facts = facts.get(node)
            if node_facts and node_facts.drbd is not None and config.drbd_resource:
                drbd[node] = node_facts.drbd.get(config.drbd_resource)
            if node_facts and node_facts.domains is not None:
                mine = [d for d in node_facts.domains
                        if d[0] in (config.domain, config.domain + dom.INCOMING_SUFFIX,
                                    config.domain + dom.MIGRATEDAWAY_SUFFIX)]
                if mine:
                    domains[node] = mine
        vms.append(VmView(config.name, config, state, nodes, replicas, drbd, domains, failed))
    view = ClusterView(asked, mon, cib, facts, tuple(vms), ())
    return ClusterView(asked, mon, cib, facts, view.vms, tuple(attention(view)))


def attention(view: ClusterView) -> list[Attention]:
    mon, found = view.mon, []
    if mon.dc is None:
        found.append(Attention("no-dc", "cluster", "no designated controller: the cluster is not running here"))
    elif not mon.quorum:
        found.append(Attention("no-quorum", "cluster", "the partition asked has no quorum"))
    if mon.maintenance_mode:
        found.append(Attention("maintenance-mode", "cluster", "maintenance-mode is on: nothing is managed"))
    for node in mon.nodes.values():
        if node.unclean:
            found.append(Attention("node-unclean", node.name, f"{node.name} is UNCLEAN (to be fenced)"))
        elif not node.online:
            found.append(Attention("node-offline", node.name, f"{node.name} is offline"))
        if node.standby or node.standby_onfail:
            found.append(Attention("node-standby", node.name, f"{node.name} is in standby"
                                   + (" after a failure" if node.standby_onfail and not node.standby else "")
                                   + f" (`xenha undrain {node.name}` to bring it back)"))
        if node.maintenance:
            found.append(Attention("node-maintenance", node.name, f"{node.name} is in maintenance"))
        facts = view.facts.get(node.name)
        if node.online and facts is not None and facts.error:
            found.append(Attention("node-unreachable", node.name, f"{node.name}: {facts.error}"))
    for vm in view.vms:
        if vm.state == "failed":
            found.append(Attention("vm-failed", vm.name, f"{vm.name} has failed on {', '.join(vm.nodes) or 'no node'}"))
        elif vm.state == "multiple":
            found.append(Attention("vm-multiple", vm.name, f"{vm.name} is active on {', '.join(vm.nodes)}"))
        elif vm.state == "stopped":
            found.append(Attention("vm-stopped", vm.name, f"{vm.name} is not running"))
        elif vm.state == "unmanaged":
            found.append(Attention("vm-unmanaged", vm.name, f"{vm.name} is not managed by the cluster"))
        elif vm.state == "migrating":
            found.append(Attention("vm-migrating", vm.name, f"{vm.name} is migrating"))
        for node in vm.replicas:
            online = mon.nodes.get(node) is not None and mon.nodes[node].online
            facts = view.facts.get(node)
            if not online or facts is None or facts.error or facts.drbd is None:
                continue
            replica = vm.drbd.get(node)
            res = vm.config.drbd_resource
            if replica is None:
                found.append(Attention("drbd-down", vm.name, f"{vm.name}: DRBD {res} is not up on {node}"))
                continue
            if replica.resyncing:
                progress = f" {replica.sync_done:.1f}% done" if replica.sync_done is not None else ""
                eta = f", about {replica.sync_eta_s:.0f} s left" if replica.sync_eta_s is not None else ""
                found.append(Attention("drbd-resync", vm.name, f"{vm.name}: DRBD {res} on {node} is resyncing"
                                       f"{progress}{eta}"))
            elif not replica.up_to_date:
                found.append(Attention("drbd-disk", vm.name, f"{vm.name}: DRBD {res} on {node} is "
                                       f"{'/'.join(replica.disks) or 'without disk'}"))
            if replica.suspended:
                found.append(Attention("drbd-io-suspended", vm.name, f"{vm.name}: DRBD {res} on {node} has its I/O "
                                       f"suspended ({', '.join(replica.suspended)}): the VM's writes hang"))
            if not replica.connected:
                states = ", ".join(f"{peer} {state}" for peer, state in replica.connections.items()) or "no peer"
                found.append(Attention("drbd-connection", vm.name, f"{vm.name}: DRBD {res} on {node}: {states}"))
    for failure in mon.failures:
        found.append(Attention("failed-action", failure.resource,
                               f"{failure.resource} {failure.operation} failed on {failure.node}: "
                               f"{failure.exit_reason or failure.exit_status} "
                               f"(`pcs resource cleanup {failure.resource}` once fixed)"))
    for item in view.cib.fencing:
        found.append(Attention("fencing-constraint", item.rsc,
                               f"DRBD's fencing constraint {item.id} keeps {item.rsc} promoted only on "
                               f"{item.node or '?'} (removed by the unfence handler after the resync)"))
    for item in view.cib.moves:
        expiry = f", expires {item.expires}" if item.expires else ""
        found.append(Attention("move-constraint", item.rsc,
                               f"temporary {item.kind} constraint {item.id} on {item.node or '?'}{expiry} "
                               f"(`crm_resource --clear -r {item.rsc}` removes it)"))
    return found
