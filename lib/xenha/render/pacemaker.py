"""The Pacemaker configuration of a cluster description.

`build()` turns the description into a small model (resources, constraints, properties);
it is rendered as (a) a reviewable pcs command script and (b) the CIB configuration XML,
generated directly here (pure XML, like pcs' own CIB library) so that 500 VMs render in
well under a second. tests/render checks that (b) is what pcs itself builds from (a).

Per VM `<n>` (design.md, Pacemaker topology):

    lv_<n>-clone     ocf:xenha:lvm-volume, a clone on the VM's two replica nodes
    drbd_<n>-clone   ocf:xenha:drbd-resource, promotable: promoted-max=2 promoted-node-max=1
                     clone-max=2 clone-node-max=1 notify=true interleave=true
    <n>              ocf:xenha:xen-domain, allow-migrate=true
    order      start lv_<n>-clone then start drbd_<n>-clone         (symmetrical)
    colocation drbd_<n>-clone with lv_<n>-clone                      INFINITY
    order      promote drbd_<n>-clone then start <n>                  symmetrical=false
    order      stop <n> then demote drbd_<n>-clone                    symmetrical=false
    colocation <n> with Promoted drbd_<n>-clone                       INFINITY
    location   each of the three avoids nodes that are not replicas   -INFINITY
    location   <n> prefers its preferred node                         PREFERRED_SCORE

A two-node cluster keeps quorum on both halves of a partition (corosync two_node), so
whoever fences first wins: there, `priority-fencing-delay` delays fencing of the node
whose resources weigh more, and every domain has priority VM_PRIORITY, so that the node
running the VMs survives a partition and keeps them (reference/lab.md §5).

When a node's migration address is not its name, every node gets it as the permanent
node attribute MIGRATION_ADDRESS_ATTRIBUTE and every domain reads it from there
(xen-domain's migration_address_attribute).

Every id is checked against the XML id grammar and for uniqueness (VMs `a` and `lv_a`,
or a VM named like the tag, would otherwise make ids that collide, and the pcs script
would skip one of them): a collision is refused with the keys of the VMs involved.

The two one-way orders (not one symmetrical order) are what makes a node drain a live
migration rather than a restart, while a demote can never run during a migration
(design.md; proven by the scheduler scenarios in tests/scenarios). Operations are not
listed: pcs copies the advertised ones from each agent's meta-data, and so does this
module (same rule: every advertised action but meta-data and validate-all).
"""

import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from xenha import names
from xenha.agents import agent_class
from xenha.cluster.description import Description, DescriptionError
from xenha.render import header
from xenha.render.xl import file_name as xl_file_name

PREFERRED_SCORE = 50
INFINITY = "INFINITY"
VM_TAG = "xenha-vms"
PROVIDER = "xenha"
MIGRATION_ADDRESS_ATTRIBUTE = "xenha-migration-address"
PRIORITY_FENCING_DELAY = "5s"      # two-node clusters only
VM_PRIORITY = "10"


def agent_actions(agent_type: str):
    """The advertised actions of a xenha agent (the meta-data pcs reads)."""
    return agent_class(agent_type).ACTIONS


@dataclass(frozen=True)
class Primitive:
    id: str
    standard: str            # ocf / stonith
    type: str
    provider: str = ""
    params: tuple = ()       # ((name, value), ...)
    meta: tuple = ()
    ops: tuple = ()          # explicit ((name, interval), ...) for stonith; xenha agents use meta-data

    @property
    def agent(self) -> str:
        return f"{self.standard}:{self.provider}:{self.type}" if self.provider else f"{self.standard}:{self.type}"


@dataclass(frozen=True)
class Clone:
    primitive: Primitive
    meta: tuple
    promotable: bool = False

    @property
    def id(self) -> str:
        return f"{self.primitive.id}-clone"


@dataclass(frozen=True)
class Location:
    id: str
    rsc: str
    node: str
    score: str


@dataclass(frozen=True)
class Colocation:
    id: str
    rsc: str
    with_rsc: str
    score: str
    with_rsc_role: str = ""


@dataclass(frozen=True)
class Order:
    id: str
    first_action: str
    first: str
    then_action: str
    then: str
    symmetrical: bool = True


@dataclass(frozen=True)
class PacemakerConfig:
    source: str
    properties: tuple
    rsc_defaults: tuple
    resources: tuple                    # Primitive (stonith) and Clone/Primitive, in creation order
    constraints: tuple
    tags: tuple = field(default=())     # ((tag id, (ids...)),)
    node_attributes: tuple = field(default=())   # ((node, ((name, value), ...)), ...)
    # The description key that made each resource and constraint (same order), for messages.
    resource_keys: tuple = field(default=())
    constraint_keys: tuple = field(default=())


def build(description: Description, slots: dict) -> PacemakerConfig:
    defaults = description.defaults
    node_names = [n.name for n in description.nodes]
    properties = [("stonith-enabled", "false" if description.test_cluster else "true"),
                  ("migration-limit", str(defaults.migration_limit))]
    two_nodes = len(description.nodes) == 2
    if two_nodes:
        properties.append(("priority-fencing-delay", PRIORITY_FENCING_DELAY))
    resources, constraints, resource_keys, constraint_keys = [], [], [], []
    node_attributes = ()
    domain_params = ()
    if any(node.migration_address != node.name for node in description.nodes):
        node_attributes = tuple((node.name, ((MIGRATION_ADDRESS_ATTRIBUTE, node.migration_address),))
                                for node in description.nodes)
        domain_params = (("migration_address_attribute", MIGRATION_ADDRESS_ATTRIBUTE),)
    if description.fencing.agent:
        for index, node in enumerate(node_names):
            options = dict(description.fencing.options)
            options.update(description.fencing.devices.get(node, {}))
            options["pcmk_host_list"] = node
            fence = Primitive(f"fence_{node}", "stonith", description.fencing.agent,
                              params=tuple(sorted(options.items())), ops=(("monitor", "60s"),))
            resources.append(fence)
            constraints.append(Location(f"location-fence_{node}-avoids-self", fence.id, node, "-INFINITY"))
            resource_keys.append(f"nodes[{index}].name")
            constraint_keys.append(f"nodes[{index}].name")
    vm_ids = []
    for index, vm in enumerate(description.vms):
        slot = slots[vm.name]
        first_constraint = len(constraints)
        lv = Clone(Primitive(f"lv_{vm.name}", "ocf", "lvm-volume", PROVIDER,
                             params=(("lvs", description.lv_name(vm)), ("vg", defaults.volume_group))),
                   meta=(("interleave", "true"),))
        drbd = Clone(Primitive(f"drbd_{vm.name}", "ocf", "drbd-resource", PROVIDER,
                               params=(("drbd_resource", slot.resource),)),
                     meta=(("clone-max", "2"), ("clone-node-max", "1"), ("interleave", "true"),
                           ("notify", "true"), ("promoted-max", "2"), ("promoted-node-max", "1")),
                     promotable=True)
        domain = Primitive(vm.name, "ocf", "xen-domain", PROVIDER,
                           params=(("config", f"{defaults.xen_config_dir}/{xl_file_name(vm)}"),
                                   *domain_params,
                                   ("migration_transport", defaults.migration_transport),
                                   ("name", vm.name)),
                           meta=(("allow-migrate", "true"),) + ((("priority", VM_PRIORITY),) if two_nodes else ()))
        resources += [lv, drbd, domain]
        vm_ids.append(vm.name)
        n = vm.name
        constraints += [
            Order(f"order-{n}-lv-then-drbd", "start", lv.id, "start", drbd.id),
            Colocation(f"colocation-{n}-drbd-with-lv", drbd.id, lv.id, INFINITY),
            Order(f"order-{n}-promote-then-start", "promote", drbd.id, "start", n, symmetrical=False),
            Order(f"order-{n}-stop-then-demote", "stop", n, "demote", drbd.id, symmetrical=False),
            Colocation(f"colocation-{n}-with-promoted-drbd", n, drbd.id, INFINITY, with_rsc_role="Promoted"),
        ]
        for other in node_names:
            if other not in vm.replicas:
                for rsc in (lv.id, drbd.id, n):
                    constraints.append(Location(f"location-{rsc}-avoids-{other}", rsc, other, "-INFINITY"))
        if vm.preferred_node:
            constraints.append(Location(f"location-{n}-prefers-{vm.preferred_node}", n, vm.preferred_node,
                                        str(PREFERRED_SCORE)))
        key = f"vms[{index}].name"
        resource_keys += [key] * 3
        constraint_keys += [key] * (len(constraints) - first_constraint)
    config = PacemakerConfig(description.path, tuple(properties), (("resource-stickiness", str(defaults.stickiness)),),
                             tuple(resources), tuple(constraints), ((VM_TAG, tuple(vm_ids)),) if vm_ids else (),
                             node_attributes, tuple(resource_keys), tuple(constraint_keys))
    check_ids(configuration(config, node_names), config)
    return config


def check_ids(root: ET.Element, config: PacemakerConfig) -> None:
    """Every id of the configuration is an XML id and used once; otherwise a
    DescriptionError naming the description keys that made the ids."""
    keys = {"resources": iter(config.resource_keys), "constraints": iter(config.constraint_keys)}
    problems, seen, reported = [], {}, set()
    for section in root:
        section_keys = keys.get(section.tag)
        for top in section:
            where = next(section_keys, "") if section_keys is not None else ""
            for element in top.iter():
                ident = element.get("id")
                if ident is None or element.tag in ("obj_ref", "node"):
                    continue
                why = names.check_pacemaker_id(ident)
                if why:
                    problems.append(f"{config.source}: {where or 'cluster'}: Pacemaker id {ident!r} {why}")
                elif ident not in seen:
                    seen[ident] = where
                elif (seen[ident], where) not in reported:       # one line per pair
                    first = seen[ident]
                    reported.add((first, where))
                    by = (f"by {first} and by {where}" if first and where and first != where
                          else f"by {first or where} and by xenha's own configuration" if first or where
                          else "by xenha's own configuration")
                    problems.append(f"{config.source}: {where or first or 'cluster'}: Pacemaker id "
                                    f"{ident!r} would be made twice ({by}); rename the VM")
    if problems:
        raise DescriptionError(list(dict.fromkeys(problems)))


# --- (a) pcs commands --------------------------------------------------------------------
def pcs_commands(config: PacemakerConfig) -> list[list[str]]:
    commands = [["property", "set"] + [f"{k}={v}" for k, v in config.properties],
                ["resource", "defaults", "update"] + [f"{k}={v}" for k, v in config.rsc_defaults]]
    for node, attributes in config.node_attributes:
        commands.append(["node", "attribute", node] + [f"{k}={v}" for k, v in attributes])
    for item in config.resources:
        primitive = item.primitive if isinstance(item, Clone) else item
        if primitive.standard == "stonith":
            command = ["stonith", "create", primitive.id, primitive.type] + [f"{k}={v}" for k, v in primitive.params]
            for name, interval in primitive.ops:
                command += ["op", name, f"interval={interval}"]
        else:
            command = ["resource", "create", primitive.id, primitive.agent] + [f"{k}={v}" for k, v in primitive.params]
            if primitive.meta:
                command += ["meta"] + [f"{k}={v}" for k, v in primitive.meta]
        if isinstance(item, Clone):
            command += ["promotable" if item.promotable else "clone"] + [
                f"{k}={v}" for k, v in item.meta if not (item.promotable and k == "promotable")]
        commands.append(command)
    for constraint in config.constraints:
        if isinstance(constraint, Location):
            commands.append(["constraint", "location", "add", constraint.id, constraint.rsc, constraint.node,
                             constraint.score])
        elif isinstance(constraint, Colocation):
            role = [constraint.with_rsc_role] if constraint.with_rsc_role else []
            commands.append(["constraint", "colocation", "add", constraint.rsc, "with", *role, constraint.with_rsc,
                             constraint.score, f"id={constraint.id}"])
        else:
            commands.append(["constraint", "order", constraint.first_action, constraint.first, "then",
                             constraint.then_action, constraint.then, f"id={constraint.id}"]
                            + ([] if constraint.symmetrical else ["symmetrical=false"]))
    for tag, ids in config.tags:
        commands.append(["tag", "create", tag, *ids])
    return commands


def _created_id(command: list[str]) -> str | None:
    """The id of the object a pcs command creates (None: the command is idempotent)."""
    if command[:2] in (["resource", "create"], ["stonith", "create"]):
        return command[2]
    if command[:3] == ["constraint", "location", "add"]:
        return command[3]
    if command[:2] == ["constraint", "colocation"] or command[:2] == ["constraint", "order"]:
        return next(word[3:] for word in command if word.startswith("id="))
    if command[:2] == ["tag", "create"]:
        return command[2]
    return None


def pcs_script(config: PacemakerConfig) -> str:
    """The pcs commands as a reviewable script that is idempotent to apply: properties and
    defaults are set (setting a value twice changes nothing), every object is created only
    when no element with its id exists yet, and VMs missing from the tag are added."""
    lines = ["#!/bin/sh", f"# {header(config.source)}",
             "# Review, then apply to the cluster with: sh THIS_FILE",
             "# Try it on a CIB file first with:       PCS_FILE=cib.xml sh THIS_FILE",
             "# Applying it again changes nothing. It creates what is missing; it does not",
             "# change objects that exist with other settings.",
             "set -eu",
             'pcs() { command pcs ${PCS_FILE:+-f "$PCS_FILE"} "$@"; }',
             'has() { if [ -n "${PCS_FILE:-}" ]; then CIB_file="$PCS_FILE" cibadmin --query --xpath "$1" '
             '>/dev/null 2>&1; else cibadmin --query --xpath "$1" >/dev/null 2>&1; fi; }', ""]
    for command in pcs_commands(config):
        text = "pcs " + " ".join(shlex.quote(word) for word in command)
        created = _created_id(command)
        if created is None:
            lines.append(text)
            continue
        # Ids are checked XML ids (no quote of either kind, see check_ids): safe inside
        # the XPath, which is quoted for the shell all the same.
        # Only the configuration: a live CIB's status section has ids too (lrm_rsc_op
        # `NAME_last_0`), which would make a new object look present.
        xpath = f'/cib/configuration//*[@id="{created}"]'
        lines.append(f"has {shlex.quote(xpath)} || {text}")
        if command[:2] == ["tag", "create"]:
            for member in command[3:]:
                xpath = f'/cib/configuration//tag[@id="{created}"]/obj_ref[@id="{member}"]'
                lines.append(f"has {shlex.quote(xpath)} || "
                             f"pcs tag update {shlex.quote(created)} add {shlex.quote(member)}")
    return "\n".join(lines) + "\n"


# --- (b) CIB configuration XML ----------------------------------------------------------
def _nvpairs(parent, set_tag: str, set_id: str, pairs):
    if not pairs:
        return None
    block = ET.SubElement(parent, set_tag, {"id": set_id})
    for name, value in sorted(pairs):
        ET.SubElement(block, "nvpair", {"id": f"{set_id}-{name}", "name": name, "value": value})
    return block


def _ops(primitive: Primitive):
    """Operations as pcs creates them: explicit ones, or every advertised action but
    meta-data and validate-all, sorted by name then interval."""
    if primitive.standard == "stonith":
        return [(name, interval, None, None, None) for name, interval in primitive.ops]
    ops = []
    for action in agent_actions(primitive.type):
        if action.name in ("meta-data", "validate-all"):
            continue
        interval = action.interval or 0
        ops.append((action.name, f"{interval}s", f"{action.timeout}s", action.role, action.depth))
    ops.sort(key=lambda op: (op[0], int(op[1][:-1])))
    return ops


def _primitive(parent, primitive: Primitive):
    attrs = {"id": primitive.id, "class": primitive.standard, "type": primitive.type}
    if primitive.provider:
        attrs["provider"] = primitive.provider
    element = ET.SubElement(parent, "primitive", attrs)
    _nvpairs(element, "instance_attributes", f"{primitive.id}-instance_attributes", primitive.params)
    _nvpairs(element, "meta_attributes", f"{primitive.id}-meta_attributes", primitive.meta)
    operations = ET.SubElement(element, "operations")
    for name, interval, timeout, role, depth in _ops(primitive):
        op_id = f"{primitive.id}-{name}-interval-{interval}"
        attrs = {"name": name, "interval": interval}
        if timeout:
            attrs["timeout"] = timeout
        if role:
            attrs["role"] = role
        attrs["id"] = op_id
        op = ET.SubElement(operations, "op", attrs)
        if depth:
            _nvpairs(op, "instance_attributes", f"{op_id}-instance_attributes", [("OCF_CHECK_LEVEL", str(depth))])
    return element


def configuration(config: PacemakerConfig, nodes) -> ET.Element:
    """The CIB <configuration> element (crm_config, nodes, resources, constraints, ...)."""
    root = ET.Element("configuration")
    crm_config = ET.SubElement(root, "crm_config")
    _nvpairs(crm_config, "cluster_property_set", "cib-bootstrap-options", config.properties)
    nodes_element = ET.SubElement(root, "nodes")
    attributes = dict(config.node_attributes)
    for number, name in enumerate(nodes, start=1):
        node = ET.SubElement(nodes_element, "node", {"id": str(number), "uname": name})
        _nvpairs(node, "instance_attributes", f"nodes-{number}", attributes.get(name, ()))
    resources = ET.SubElement(root, "resources")
    for item in config.resources:
        if isinstance(item, Clone):
            clone = ET.SubElement(resources, "clone", {"id": item.id})
            _primitive(clone, item.primitive)
            meta = list(item.meta) + ([("promotable", "true")] if item.promotable else [])
            _nvpairs(clone, "meta_attributes", f"{item.id}-meta_attributes", meta)
        else:
            _primitive(resources, item)
    constraints = ET.SubElement(root, "constraints")
    for constraint in config.constraints:
        if isinstance(constraint, Location):
            ET.SubElement(constraints, "rsc_location", {"id": constraint.id, "rsc": constraint.rsc,
                                                        "node": constraint.node, "score": constraint.score})
        elif isinstance(constraint, Colocation):
            attrs = {"id": constraint.id, "rsc": constraint.rsc, "with-rsc": constraint.with_rsc,
                     "score": constraint.score}
            if constraint.with_rsc_role:
                attrs["rsc-role"] = "Started"       # what pcs writes along with a with-rsc role
                attrs["with-rsc-role"] = constraint.with_rsc_role
            ET.SubElement(constraints, "rsc_colocation", attrs)
        else:
            attrs = {"id": constraint.id, "first": constraint.first, "first-action": constraint.first_action,
                     "then": constraint.then, "then-action": constraint.then_action}
            if not constraint.symmetrical:
                attrs["symmetrical"] = "false"
            ET.SubElement(constraints, "rsc_order", attrs)
    defaults = ET.SubElement(root, "rsc_defaults")
    _nvpairs(defaults, "meta_attributes", "build-resource-defaults", config.rsc_defaults)
    if config.tags:
        tags = ET.SubElement(root, "tags")
        for tag_id, ids in config.tags:
            tag = ET.SubElement(tags, "tag", {"id": tag_id})
            for rsc in ids:
                ET.SubElement(tag, "obj_ref", {"id": rsc})
    return root


def cib_xml(config: PacemakerConfig, nodes, validate_with: str = "pacemaker-3.9") -> str:
    """A complete CIB (empty status) with this configuration."""
    cib = ET.Element("cib", {"crm_feature_set": "3.16.1", "validate-with": validate_with, "epoch": "1",
                             "num_updates": "0", "admin_epoch": "0"})
    cib.append(configuration(config, nodes))
    ET.SubElement(cib, "status")
    ET.indent(cib, space="  ")
    return ET.tostring(cib, encoding="unicode") + "\n"


# --- comparing CIBs by meaning ------------------------------------------------------------
def canonical(cib_text: str) -> dict:
    """What a CIB configures, independent of element ids, attribute order and epochs:
    used to prove that the direct XML and pcs' CIB say the same."""
    root = ET.fromstring(cib_text)
    conf = root.find("configuration")

    def pairs(element, path):
        found = element.find(path) if element is not None else None
        return {} if found is None else {p.get("name"): p.get("value") for p in found.iter("nvpair")
                                         if p.get("name") != "OCF_CHECK_LEVEL" or path != "instance_attributes"}

    def primitive(element, parent=None):
        ops = set()
        for op in element.iter("op"):
            level = op.find("instance_attributes/nvpair[@name='OCF_CHECK_LEVEL']")
            ops.add((op.get("name"), op.get("interval"), op.get("timeout"), op.get("role"),
                     level.get("value") if level is not None else None))
        return {"agent": (element.get("class"), element.get("provider"), element.get("type")), "parent": parent,
                "params": pairs(element, "instance_attributes"), "meta": pairs(element, "meta_attributes"),
                "ops": ops}

    resources = {}
    for element in conf.find("resources"):
        if element.tag == "primitive":
            resources[element.get("id")] = primitive(element)
        elif element.tag == "clone":
            inner = element.find("primitive")
            resources[inner.get("id")] = primitive(inner, parent=element.get("id"))
            resources[element.get("id")] = {"clone_meta": pairs(element, "meta_attributes")}
    constraints = set()
    for element in conf.find("constraints"):
        constraints.add((element.tag,) + tuple(sorted((k, v) for k, v in element.attrib.items())))
    tags = {}
    if conf.find("tags") is not None:
        tags = {t.get("id"): tuple(r.get("id") for r in t) for t in conf.find("tags")}
    return {
        "properties": {p.get("name"): p.get("value") for p in conf.find("crm_config").iter("nvpair")},
        "rsc_defaults": {p.get("name"): p.get("value") for p in conf.find("rsc_defaults").iter("nvpair")}
        if conf.find("rsc_defaults") is not None else {},
        "nodes": sorted((n.get("uname"), tuple(sorted(pairs(n, "instance_attributes").items())))
                        for n in conf.find("nodes")),
        "resources": resources, "constraints": constraints, "tags": tags,
    }
