"""`xenha apply CLUSTER`: bring the live Pacemaker configuration to what the description
renders, in one CIB transaction.

    changes = diff(live_cib_root, rendered_configuration)      # pure: create / change / remove
    new_root = patched(live_cib_root, rendered_configuration, changes)
    apply(env, path, dry_run=...)                              # diff, refuse, push

What xenha owns in a CIB (and may change or remove): primitives of ocf:xenha:* agents
and their clones, the fence devices it names fence_<node>, constraints with the
renderer's ids (order-*, colocation-*, location-*) that refer only to those, the tag
xenha-vms; cluster properties, resource defaults and node attributes the description
sets (set, never removed). Anything else (other resources, cli-* and drbd-fence-by-
handler-* constraints, meta attributes an operator added such as target-role) is left
alone. Parameters (instance attributes) of an owned resource are made exactly what the
description renders; meta attributes and utilization are set, never removed. Operations
are left as they are (pcs copied them from the agents' meta-data at creation).

The push is `pcs cluster cib-push NEW diff-against=OLD`: only the difference is sent, so
a change made by someone else meanwhile survives, and the cluster acts on the whole
change at once. Removing a VM that runs is refused unless asked (`allow_remove_running`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from xenha.operate.env import Environment, OperationError

OWNED_PROVIDER = "xenha"
OWNED_CONSTRAINT_PREFIXES = ("order-", "colocation-", "location-")
NV_BLOCKS = ("instance_attributes", "meta_attributes", "utilization")
REFERENCES = ("rsc", "with-rsc", "first", "then")


@dataclass(frozen=True)
class Change:
    action: str               # create, change, remove
    kind: str                 # property, rsc_default, node_attribute, resource, constraint, tag
    id: str
    details: tuple = ()       # human words: ("memory 64 -> 128", ...)

    def to_json(self) -> dict:
        return {"action": self.action, "kind": self.kind, "id": self.id, "details": list(self.details)}

    def text(self) -> str:
        mark = {"create": "+", "change": "~", "remove": "-"}[self.action]
        return f"{mark} {self.kind} {self.id}" + (f": {'; '.join(self.details)}" if self.details else "")


def _pairs(element, block: str) -> dict:
    found = {}
    if element is None:
        return found
    for nvset in element.findall(block):
        for pair in nvset.iter("nvpair"):
            found[pair.get("name")] = pair.get("value")
    return found


def _inner(element):
    """The primitive of a resource element (itself, or a clone's)."""
    return element if element.tag == "primitive" else element.find("primitive")


def owned_resource(element) -> bool:
    primitive = _inner(element)
    if primitive is None:
        return False
    if primitive.get("provider") == OWNED_PROVIDER and primitive.get("class") == "ocf":
        return True
    return primitive.get("class") == "stonith" and primitive.get("id", "").startswith("fence_")


def _resource_ids(element) -> set:
    return {e.get("id") for e in element.iter() if e.tag in ("primitive", "clone")}


def _compare_pairs(label: str, live: dict, want: dict, exact: bool) -> list[str]:
    words = []
    for name, value in sorted(want.items()):
        if name not in live:
            words.append(f"{label} {name}={value} (new)")
        elif live[name] != value:
            words.append(f"{label} {name} {live[name]} -> {value}")
    if exact:
        words += [f"{label} {name} removed" for name in sorted(set(live) - set(want))]
    return words


def _compare_resource(live, want) -> list[str]:
    words = []
    live_p, want_p = _inner(live), _inner(want)
    if live.tag != want.tag:
        return [f"is a {live.tag}, the description makes a {want.tag}"]
    agent = ("class", "provider", "type")
    if tuple(live_p.get(a) for a in agent) != tuple(want_p.get(a) for a in agent):
        words.append("agent {} -> {}".format(":".join(filter(None, (live_p.get(a) for a in agent))),
                                             ":".join(filter(None, (want_p.get(a) for a in agent)))))
    words += _compare_pairs("param", _pairs(live_p, "instance_attributes"), _pairs(want_p, "instance_attributes"),
                            exact=True)
    words += _compare_pairs("meta", _pairs(live_p, "meta_attributes"), _pairs(want_p, "meta_attributes"), exact=False)
    words += _compare_pairs("utilization", _pairs(live_p, "utilization"), _pairs(want_p, "utilization"), exact=False)
    if live.tag == "clone":
        words += _compare_pairs("clone meta", _pairs(live, "meta_attributes"), _pairs(want, "meta_attributes"),
                                exact=False)
    return words


def diff(live_root: ET.Element, want: ET.Element) -> list[Change]:
    """What differs between a live CIB (root <cib>) and the rendered <configuration> (pure)."""
    conf = live_root.find("configuration")
    if conf is None:
        raise OperationError("the live CIB has no <configuration>")
    changes = []
    live_props = {}
    for block in conf.iterfind("./crm_config/cluster_property_set"):
        live_props.update(_pairs_of_block(block))
    for name, value in sorted(_pairs(want.find("crm_config"), "cluster_property_set").items()):
        if live_props.get(name) != value:
            changes.append(Change("change" if name in live_props else "create", "property", name,
                                  (f"{live_props.get(name, '(unset)')} -> {value}",)))
    live_defaults = _pairs(conf.find("rsc_defaults"), "meta_attributes")
    for name, value in sorted(_pairs(want.find("rsc_defaults"), "meta_attributes").items()):
        if live_defaults.get(name) != value:
            changes.append(Change("change" if name in live_defaults else "create", "rsc_default", name,
                                  (f"{live_defaults.get(name, '(unset)')} -> {value}",)))
    live_nodes = {n.get("uname"): n for n in conf.iterfind("./nodes/node")}
    for node in want.iterfind("./nodes/node"):
        wanted = _pairs(node, "instance_attributes")
        have = _pairs(live_nodes.get(node.get("uname")), "instance_attributes")
        words = _compare_pairs("attribute", have, wanted, exact=False)
        if words:
            changes.append(Change("change", "node_attribute", node.get("uname"), tuple(words)))
    live_resources = {e.get("id"): e for e in conf.find("resources")} if conf.find("resources") is not None else {}
    want_resources = {e.get("id"): e for e in want.find("resources")}
    for rid, element in want_resources.items():
        if rid not in live_resources:
            changes.append(Change("create", "resource", rid, (":".join(filter(None, (
                _inner(element).get(a) for a in ("class", "provider", "type")))),)))
        else:
            words = _compare_resource(live_resources[rid], element)
            if words:
                changes.append(Change("change", "resource", rid, tuple(words)))
    removed = set()
    for rid, element in live_resources.items():
        if rid not in want_resources and owned_resource(element):
            changes.append(Change("remove", "resource", rid))
            removed |= _resource_ids(element)
    owned_ids = set()
    for element in live_resources.values():
        if owned_resource(element):
            owned_ids |= _resource_ids(element)
    for element in want_resources.values():
        owned_ids |= _resource_ids(element)
    live_constraints = {e.get("id"): e for e in conf.find("constraints")} if conf.find("constraints") is not None \
        else {}
    want_constraints = {e.get("id"): e for e in want.find("constraints")}
    for cid, element in want_constraints.items():
        if cid not in live_constraints:
            changes.append(Change("create", "constraint", cid))
        else:
            have, wanted = dict(live_constraints[cid].attrib), dict(element.attrib)
            if live_constraints[cid].tag != element.tag or have != wanted:
                words = [f"{k} {have.get(k, '(unset)')} -> {v}" for k, v in sorted(wanted.items()) if have.get(k) != v]
                words += [f"{k} removed" for k in sorted(set(have) - set(wanted))]
                changes.append(Change("change", "constraint", cid, tuple(words)))
    for cid, element in live_constraints.items():
        if cid in want_constraints or not cid.startswith(OWNED_CONSTRAINT_PREFIXES):
            continue
        refs = {element.get(a) for a in REFERENCES if element.get(a)}
        if refs and refs <= owned_ids:
            changes.append(Change("remove", "constraint", cid))
    for tag in want.iterfind("./tags/tag"):
        live_tag = conf.find(f"./tags/tag[@id='{tag.get('id')}']") if "'" not in tag.get("id") else None
        wanted = [r.get("id") for r in tag]
        if live_tag is None:
            changes.append(Change("create", "tag", tag.get("id"), (" ".join(wanted),)))
        else:
            have = [r.get("id") for r in live_tag]
            if have != wanted:
                changes.append(Change("change", "tag", tag.get("id"), (f"{' '.join(have)} -> {' '.join(wanted)}",)))
    return changes


def _pairs_of_block(block) -> dict:
    return {p.get("name"): p.get("value") for p in block.iter("nvpair")}


def _set_pairs(parent, block_tag: str, block_id: str, wanted: dict, exact: bool) -> None:
    """Make `parent`'s nvpair block hold `wanted` (set; with exact, also remove others)."""
    blocks = parent.findall(block_tag)
    block = blocks[0] if blocks else None
    if block is None:
        if not wanted:
            return
        block = ET.SubElement(parent, block_tag, {"id": block_id})
    existing = {}
    for candidate in blocks or [block]:
        for pair in candidate.findall("nvpair"):
            existing[pair.get("name")] = (candidate, pair)
    for name, value in wanted.items():
        if name in existing:
            existing[name][1].set("value", value)
        else:
            ET.SubElement(block, "nvpair", {"id": f"{block.get('id')}-{name}", "name": name, "value": value})
    if exact:
        for name, (holder, pair) in existing.items():
            if name not in wanted:
                holder.remove(pair)


def patched(live_root: ET.Element, want: ET.Element, changes: list[Change]) -> ET.Element:
    """A copy of the live CIB with the changes made (pure)."""
    root = copy.deepcopy(live_root)
    conf = root.find("configuration")

    def section(name):
        found = conf.find(name)
        return found if found is not None else ET.SubElement(conf, name)
    wanted_props = _pairs(want.find("crm_config"), "cluster_property_set")
    wanted_defaults = _pairs(want.find("rsc_defaults"), "meta_attributes")
    want_resources = {e.get("id"): e for e in want.find("resources")}
    want_constraints = {e.get("id"): e for e in want.find("constraints")}
    want_nodes = {n.get("uname"): n for n in want.iterfind("./nodes/node")}
    for change in changes:
        if change.kind == "property":
            crm_config = section("crm_config")
            block = crm_config.find("cluster_property_set[@id='cib-bootstrap-options']")
            if block is None:
                block = ET.SubElement(crm_config, "cluster_property_set", {"id": "cib-bootstrap-options"})
            for other in crm_config.findall("cluster_property_set"):
                for pair in other.findall("nvpair"):
                    if pair.get("name") == change.id and other is not block:
                        other.remove(pair)
            _set_block(block, {change.id: wanted_props[change.id]})
        elif change.kind == "rsc_default":
            defaults = section("rsc_defaults")
            block = defaults.find("meta_attributes")
            if block is None:
                block = ET.SubElement(defaults, "meta_attributes", {"id": "build-resource-defaults"})
            _set_block(block, {change.id: wanted_defaults[change.id]})
        elif change.kind == "node_attribute":
            node = next((n for n in conf.iterfind("./nodes/node") if n.get("uname") == change.id), None)
            if node is not None:
                _set_pairs(node, "instance_attributes", f"nodes-{node.get('id')}",
                           _pairs(want_nodes[change.id], "instance_attributes"), exact=False)
        elif change.kind == "resource":
            resources = section("resources")
            live = next((e for e in resources if e.get("id") == change.id), None)
            if change.action == "create":
                resources.append(copy.deepcopy(want_resources[change.id]))
            elif change.action == "remove" and live is not None:
                resources.remove(live)
            elif live is not None:
                wanted = want_resources[change.id]
                if live.tag != wanted.tag or _inner(live).get("type") != _inner(wanted).get("type"):
                    resources.remove(live)
                    resources.append(copy.deepcopy(wanted))
                    continue
                live_p, want_p = _inner(live), _inner(wanted)
                for block, exact in zip(NV_BLOCKS, (True, False, False)):
                    _set_pairs(live_p, block, f"{live_p.get('id')}-{block}", _pairs(want_p, block), exact)
                if live.tag == "clone":
                    _set_pairs(live, "meta_attributes", f"{live.get('id')}-meta_attributes",
                               _pairs(wanted, "meta_attributes"), exact=False)
        elif change.kind == "constraint":
            constraints = section("constraints")
            live = next((e for e in constraints if e.get("id") == change.id), None)
            if live is not None:
                constraints.remove(live)
            if change.action != "remove":
                constraints.append(copy.deepcopy(want_constraints[change.id]))
        elif change.kind == "tag":
            tags = section("tags")
            live = next((e for e in tags if e.get("id") == change.id), None)
            if live is not None:
                tags.remove(live)
            tags.append(copy.deepcopy(next(t for t in want.iterfind("./tags/tag") if t.get("id") == change.id)))
    # a removed resource takes every constraint and tag reference to it along
    removed = set()
    for change in changes:
        if change.kind == "resource" and change.action == "remove":
            removed.add(change.id)
    if removed:
        removed_ids = set(removed)
        live_resources = live_root.find("configuration").find("resources")
        for element in (live_resources if live_resources is not None else []):
            if element.get("id") in removed:
                removed_ids |= _resource_ids(element)
        constraints = conf.find("constraints")
        for element in list(constraints if constraints is not None else []):
            if {element.get(a) for a in REFERENCES} & removed_ids or any(
                    ref.get("id") in removed_ids for ref in element.iter("resource_ref")):
                constraints.remove(element)
        for tag in conf.iterfind("./tags/tag"):
            for ref in list(tag):
                if ref.get("id") in removed_ids:
                    tag.remove(ref)
    return root


def _set_block(block, wanted: dict) -> None:
    existing = {p.get("name"): p for p in block.findall("nvpair")}
    for name, value in wanted.items():
        if name in existing:
            existing[name].set("value", value)
        else:
            ET.SubElement(block, "nvpair", {"id": f"{block.get('id')}-{name}", "name": name, "value": value})


def removed_vms_running(changes: list[Change], live_root: ET.Element, running: dict) -> list[str]:
    """The VMs (xen-domain primitives) that the changes remove and that run now."""
    conf = live_root.find("configuration")
    found = []
    for change in changes:
        if change.kind != "resource" or change.action != "remove":
            continue
        element = next((e for e in conf.find("resources") if e.get("id") == change.id), None)
        if element is not None and _inner(element).get("type") == "xen-domain" and running.get(change.id):
            found.append(change.id)
    return found


@dataclass
class ApplyResult:
    changes: list
    pushed: bool

    def to_json(self) -> dict:
        return {"pushed": self.pushed, "changes": [c.to_json() for c in self.changes]}


def rendered_configuration(rendering, only=None) -> ET.Element:
    """The <configuration> the description renders (with `only`: just those VMs)."""
    from xenha.render import pacemaker

    description = rendering.description
    if only is not None:
        description = dataclasses.replace(description, vms=[vm for vm in description.vms if vm.name in only])
    config = pacemaker.build(description, rendering.slots)
    return pacemaker.configuration(config, [n.name for n in rendering.description.nodes])


def apply(env: Environment, rendering, dry_run: bool = False, allow_remove_running: bool = False,
          progress=None, vms=None) -> ApplyResult:
    """Diff the rendered configuration against the live CIB; unless dry_run, push the
    changes in one transaction. With `vms`, only those VMs are added (the others the
    description has are configured only if the CIB has them already: `xenha provision
    FILE VM` must not make Pacemaker start VMs whose storage does not exist yet)."""
    from xenha.operate.status import cib_text, crm_mon

    say = progress or (lambda kind, **data: None)
    text = cib_text(env)
    try:
        live = ET.fromstring(text)
    except ET.ParseError as error:
        raise OperationError(f"the CIB is not XML: {error}") from None
    only = None
    if vms is not None:
        from xenha.operate.state import StateError, parse_cib

        try:
            only = set(vms) | set(parse_cib(text).vms)
        except StateError as error:
            raise OperationError(str(error)) from None
    want = rendered_configuration(rendering, only)
    changes = diff(live, want)
    say("diff", changes=changes)
    result = ApplyResult(changes, False)
    if not changes or dry_run:
        return result
    mon = crm_mon(env)
    running = {c.id: mon.where(c.id) for c in changes if c.kind == "resource" and c.action == "remove"}
    refused = removed_vms_running(changes, live, running)
    if refused and not allow_remove_running:
        raise OperationError(f"refusing to remove running VMs {', '.join(refused)} (they would be stopped): stop "
                             "them first, or pass --remove-running", code=3)
    new = patched(live, want, changes)
    with tempfile.TemporaryDirectory(prefix="xenha-apply-") as work:
        old_path, new_path = os.path.join(work, "old.xml"), os.path.join(work, "new.xml")
        for path, root in ((old_path, live), (new_path, new)):
            with open(path, "wb") as handle:
                handle.write(ET.tostring(root))
        pushed = env.run(["pcs", "cluster", "cib-push", new_path, f"diff-against={old_path}"], 120.0)
        if not pushed.ok:
            from xenha.operate.status import last_words

            raise OperationError(f"pcs cluster cib-push failed, nothing changed: {last_words(pushed)}")
    result.pushed = True
    say("pushed")
    return result
