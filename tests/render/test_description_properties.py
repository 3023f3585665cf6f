"""Property-based tests of the description and the renderers (hypothesis, bounded and
derandomized: the same examples on every run).

- Whatever the input (any TOML-shaped data, any bytes), loading, allocating and
  rendering either succeed or raise the description's own error, one line per problem,
  each naming the file.
- Any description the loader accepts renders files the real tools accept as meant:
  drbdadm (9 and 8.4) reads every resource file, with no minor or address used twice;
  Xen's libxlutil reads every xl config back to the values of the description, with a
  vif of exactly a bridge and a MAC; the pcs script's words are exactly the pcs
  commands; every Pacemaker id is unique, and crm_verify finds no error in the CIB.
"""

import json
import os
import shlex
import subprocess
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from conftest import need_tool
from description_strategies import (COLLIDING, DEFAULTS, HOSTILE_NAMES, NODE_FIELDS, VM_FIELDS, clusters,
                                    good_clusters)
from test_renderers import build_xlparse, parse_with_libxlutil
from xenha.cluster import allocation, description
from xenha.cluster.description import DescriptionError
from xenha.render import drbd, files, pacemaker, xl
from xenha.tools import xl_config

SOURCE = "gen.toml"
def bounded(examples: int):
    """Fixed, reproducible examples (no database, derandomized), no per-example deadline
    (the real tools' run time varies with the machine's load)."""
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# --- what must hold ---------------------------------------------------------------------
def load_allocate_render(data):
    """(description, slots, files), or None when refused with the description's error."""
    try:
        desc = description.from_data(data, SOURCE)
        slots, _added = allocation.allocate(desc, {})
        return desc, slots, files.render_all(desc, slots)
    except DescriptionError as problem:
        assert problem.problems, "a DescriptionError lists its problems"
        for line in problem.problems:
            assert line.startswith(f"{SOURCE}: ") and "\n" not in line and line.isprintable(), line
        return None


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    need_tool("drbdadm")
    need_tool("crm_verify")
    directory = tmp_path_factory.mktemp("tools")
    return {"xlparse": build_xlparse(directory), "dir": directory}


def drbdadm_reads_all(desc, slots, directory, version):
    """drbdadm (9, or the 8.4 one) dumps every resource of the cluster in one run: it
    refuses a syntax error, and a minor or address used twice."""
    includes = []
    for vm in desc.vms:
        slot = slots[vm.name]
        path = directory / f"v{version}-{slot.resource}.res"
        path.write_text(drbd.render(desc, vm, slot, version))
        includes.append(f'include "{path}";')
    conf = directory / f"drbd{version}.conf"
    conf.write_text("global { usage-count no; }\n" + "\n".join(includes) + "\n")
    program = "drbdadm" if version == 9 else "/lib/drbd/drbdadm-84"
    env = dict(os.environ, __DRBD_NODE__=desc.nodes[0].name, DRBD_DRIVER_VERSION_OVERRIDE="9.2.0")
    result = subprocess.run([program, "-c", str(conf), "dump", *(slots[vm.name].resource for vm in desc.vms)],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    for vm in desc.vms:
        slot = slots[vm.name]
        assert f"minor {slot.minor};" in result.stdout
        for node in desc.nodes:
            host = f"[{node.replication_address}]" if ":" in node.replication_address else node.replication_address
            assert f"{node.replication_family} {host}:{slot.port};" in result.stdout


def libxlutil_reads_as_meant(desc, slots, xlparse, directory):
    for vm in desc.vms:
        path = directory / xl.file_name(vm)
        path.write_text(xl.render(desc, vm, slots[vm.name]))
        values, disks, vifs = parse_with_libxlutil(xlparse, path, vifs=True)
        assert (values["name"], int(values["memory"]), int(values["vcpus"])) == (vm.name, vm.memory, vm.vcpus)
        assert (values.get("kernel", ""), values.get("bootloader", ""), values.get("extra", "")) == (
            vm.kernel, vm.bootloader, vm.extra)
        assert [d["pdev_path"] for d in disks] == [f"/dev/drbd{slots[vm.name].minor}"]
        (vif,) = vifs
        settings_ = dict(part.strip().split("=", 1) for part in vif.split(","))
        assert settings_ == {"bridge": vm.network, "mac": xl.mac_address(vm)}


def xl_configs_say_what_was_meant(desc, slots, rendered):
    """Without libxlutil (cheap, for many examples): xenha's own reader of xl configs,
    which tests/render proves reads as libxlutil does."""
    for vm in desc.vms:
        config = xl_config.parse(rendered[f"xen/{xl.file_name(vm)}"])
        assert (config.name, config.get("memory"), config.get("vcpus")) == (vm.name, vm.memory, vm.vcpus)
        assert (config.string("kernel") or "", config.string("bootloader") or "", config.string("extra") or "") == (
            vm.kernel, vm.bootloader, vm.extra)
        assert [d.target for d in config.disks()] == [f"/dev/drbd{slots[vm.name].minor}"]
        (vif,) = config.get("vif")
        assert dict(part.strip().split("=", 1) for part in vif.split(",")) == {
            "bridge": vm.network, "mac": xl.mac_address(vm)}


def pacemaker_ids_are_unique(desc, rendered, directory, verify=True):
    cib_text = rendered["pacemaker/cib.xml"]
    root = ET.fromstring(cib_text)
    ids = [e.get("id") for e in root.iter() if e.get("id") and e.tag not in ("obj_ref", "node")]
    assert len(ids) == len(set(ids))
    script = rendered["pacemaker/pcs-commands.sh"]
    config = pacemaker.build(desc, allocation.allocate(desc, {})[0])
    # The script says exactly the pcs commands, word for word, once quoting is undone.
    said = [shlex.split(line.split("|| ", 1)[-1])[1:] for line in script.splitlines()
            if line.startswith(("pcs ", "has ")) and "tag update" not in line]
    assert said == pacemaker.pcs_commands(config)
    created = [shlex.split(line)[1] for line in script.splitlines()
               if line.startswith("has '/cib/configuration//*[@id=")]
    assert created and len(created) == len(set(created))
    if verify:
        cib = directory / "cib.xml"
        cib.write_text(cib_text)
        checked = subprocess.run(["crm_verify", "-x", str(cib), "-V"], capture_output=True, text=True, timeout=60)
        assert checked.returncode in (0, 78) and "error:" not in checked.stderr.lower(), checked.stderr


# --- every listed value, one at a time (deterministic, complements the properties) --------
BASE = {"cluster": {"name": "c", "test_cluster": True},
        "nodes": [{"name": "mk1", "replication_address": "10.0.0.1"},
                  {"name": "mk2", "replication_address": "10.0.0.2"}],
        "vms": [{"name": "one", "memory": 256, "disk_size": "1G", "kernel": "/boot/vmlinuz"},
                {"name": "two", "memory": 256, "disk_size": "1G", "kernel": "/boot/vmlinuz"}]}


def with_value(where: str, value) -> dict:
    data = json.loads(json.dumps(BASE))
    section, _, key = where.partition(".")
    if section == "defaults":
        data["defaults"] = {key: value}
    elif section == "node":
        data["nodes"][0][key] = value
    elif section == "vm":
        data["vms"][0][key] = value
        if key == "bootloader":
            del data["vms"][0]["kernel"]
    elif section == "name":
        data["vms"][0]["name"] = value
    elif section == "name-without-lv-prefix":      # LVM's reserved prefixes
        data["defaults"] = {"lv_prefix": ""}
        data["vms"][0]["name"] = value
    elif section == "name-with-node-attributes":   # ids of the nodes' attribute sets
        data["nodes"][0]["migration_address"] = "10.2.0.1"
        data["vms"][0]["name"] = value
    elif section == "collide":
        data["vms"][0]["name"], data["vms"][1]["name"] = value
    return data


HOSTILE_CASES = ([(f"defaults.{k}", v) for k, (_good, bad) in DEFAULTS.items() for v in bad]
                 + [(f"vm.{k}", v) for k, (_good, bad) in VM_FIELDS.items() for v in bad]
                 + [(f"node.{k}", v) for k, (_good, bad) in NODE_FIELDS.items() for v in bad]
                 + [("name", v) for v in HOSTILE_NAMES] + [("collide", pair) for pair in COLLIDING]
                 + [("name-without-lv-prefix", v) for v in ("snapshot", "pvmove1", "snapshots-x")]
                 + [("name-with-node-attributes", v) for v in ("nodes-1", "nodes-2")])
GOOD_POOLS = ([(f"defaults.{k}", good) for k, (good, _bad) in DEFAULTS.items()]
              + [(f"vm.{k}", good) for k, (good, _bad) in VM_FIELDS.items() if k != "preferred_node"]
              + [(f"node.{k}", good) for k, (good, _bad) in NODE_FIELDS.items()
                 if k not in ("name", "replication_address")])
# Both nodes' replication addresses, of one family.
GOOD_ADDRESS_PAIRS = [("10.9.9.9", "10.9.9.10"), ("fd00::9", "fd00::a"), ("127.0.0.1", "127.0.0.2"),
                      ("::ffff:10.0.0.1", "::1")]


@pytest.mark.parametrize("where,value", HOSTILE_CASES, ids=[f"{w}={v!a}"[:60] for w, v in HOSTILE_CASES])
def test_every_hostile_value_is_refused(where, value):
    assert load_allocate_render(with_value(where, value)) is None, f"{where} = {value!r} was accepted"


@pytest.mark.parametrize("index", range(max(len(values) for _where, values in GOOD_POOLS)))
def test_every_good_value_is_accepted_and_read_by_the_tools(tools, index):
    """All fields at once, each with its index-th good value (pools wrap around)."""
    data = json.loads(json.dumps(BASE))
    for where, values in GOOD_POOLS:
        section, _, key = where.partition(".")
        target = {"defaults": data.setdefault("defaults", {}), "vm": data["vms"][0], "node": data["nodes"][0]}[section]
        target[key] = values[index % len(values)]
    for node, address in zip(data["nodes"], GOOD_ADDRESS_PAIRS[index % len(GOOD_ADDRESS_PAIRS)]):
        node["replication_address"] = address
    desc = description.from_data(data, SOURCE)
    slots, _added = allocation.allocate(desc, {})
    out = files.render_all(desc, slots)
    for version in (9, 8):
        drbdadm_reads_all(desc, slots, tools["dir"], version)
    libxlutil_reads_as_meant(desc, slots, tools["xlparse"], tools["dir"])
    xl_configs_say_what_was_meant(desc, slots, out)
    pacemaker_ids_are_unique(desc, out, tools["dir"])


# --- the properties ------------------------------------------------------------------------
@bounded(300)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                   max_size=3),
                    max_leaves=12),
       st.sampled_from(["", "cluster", "defaults", "nodes", "vms", "vms.0", "nodes.0", "cluster.fencing",
                        "defaults.lv_prefix", "vms.0.replicas", "vms.0.name", "cluster.fencing.options"]))
def test_any_data_anywhere_is_a_description_error_or_renders(junk, where):
    data = {"cluster": {"name": "c", "test_cluster": True},
            "nodes": [{"name": "a", "replication_address": "10.0.0.1"},
                      {"name": "b", "replication_address": "10.0.0.2"}],
            "vms": [{"name": "v", "memory": 256, "disk_size": "1G", "kernel": "/k"}]}
    if where:
        parts = where.split(".")
        parent = data
        for part in parts[:-1]:
            parent = parent[int(part)] if part.isdigit() else parent.setdefault(part, {})
        parent[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = junk
    else:
        data = junk
    load_allocate_render(data)


@bounded(200)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_a_description_error_or_a_description(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("bytes") / "d.toml"
    path.write_bytes(content)
    try:
        description.load(str(path))
    except DescriptionError as problem:
        assert all(line.startswith(f"{path}: ") and "\n" not in line for line in problem.problems)


@bounded(400)
@given(clusters())
def test_hostile_descriptions_are_refused_with_their_own_error_or_render_safely(data):
    rendered = load_allocate_render(data)
    event("accepted" if rendered else "refused")
    if rendered is not None:
        desc, slots, out = rendered
        for slot in slots.values():
            assert 0 <= slot.minor <= description.MAX_MINOR and 1 <= slot.port <= description.MAX_PORT
        assert len({s.minor for s in slots.values()}) == len({s.port for s in slots.values()}) == len(slots)
        xl_configs_say_what_was_meant(desc, slots, out)
        pacemaker_ids_are_unique(desc, out, None, verify=False)


@bounded(40)
@given(clusters(faults=(0, 0, 1)))
def test_any_description_the_loader_accepts_renders_files_the_tools_accept(tools, data):
    rendered = load_allocate_render(data)
    event("accepted" if rendered else "refused")
    if rendered is None:
        return
    desc, slots, out = rendered
    for version in (9, 8):
        drbdadm_reads_all(desc, slots, tools["dir"], version)
    libxlutil_reads_as_meant(desc, slots, tools["xlparse"], tools["dir"])
    pacemaker_ids_are_unique(desc, out, tools["dir"], verify=False)     # crm_verify: below


@bounded(12)
@given(good_clusters())
def test_good_descriptions_are_accepted_and_the_tools_read_them(tools, data):
    """The other half: the checks do not refuse what is right (so the property above
    is not satisfied by refusing everything)."""
    desc = description.from_data(data, SOURCE)
    slots, added = allocation.allocate(desc, {})
    assert added == [vm.name for vm in desc.vms if vm.drbd_minor is None or vm.drbd_port is None]
    out = files.render_all(desc, slots)
    for version in (9, 8):
        drbdadm_reads_all(desc, slots, tools["dir"], version)
    libxlutil_reads_as_meant(desc, slots, tools["xlparse"], tools["dir"])
    pacemaker_ids_are_unique(desc, out, tools["dir"])


@bounded(100)
@given(st.dictionaries(st.text(max_size=8), st.dictionaries(
    st.sampled_from(["drbd_resource", "drbd_minor", "drbd_port", "x"]),
    st.integers(-3, 70000) | st.text(max_size=6) | st.booleans() | st.floats(), max_size=4), max_size=3))
def test_any_allocation_file_is_read_or_refused_with_its_key(tmp_path_factory, entries):
    path = tmp_path_factory.mktemp("alloc") / "d.alloc.toml"
    lines = []
    for name, entry in entries.items():
        lines.append(f"[vms.{json.dumps(name)}]")
        lines += [f"{key} = {json.dumps(value) if not isinstance(value, float) else repr(value)}"
                  for key, value in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    try:
        slots = allocation.read(str(path))
    except DescriptionError as problem:
        assert all(line.startswith(f"{path}: ") for line in problem.problems)
        return
    for slot in slots.values():
        assert isinstance(slot.minor, int) and 0 <= slot.minor <= description.MAX_MINOR
        assert isinstance(slot.port, int) and 1 <= slot.port <= description.MAX_PORT
