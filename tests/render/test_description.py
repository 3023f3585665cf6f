"""The cluster description: loading, validation messages, allocation stability."""

import textwrap

import pytest

from conftest import REPO
from xenha.cluster import allocation, description
from xenha.cluster.description import DescriptionError

EXAMPLES = REPO / "cluster-config" / "examples"

BASE = """
[cluster]
name = "t"
test_cluster = true
[[nodes]]
name = "a"
replication_address = "10.0.0.1"
[[nodes]]
name = "b"
replication_address = "10.0.0.2"
"""

VM = """
[[vms]]
name = "{name}"
memory = 256
kernel = "/k"
disk_size = "1G"
{extra}
"""


def load(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(text))
    return description.load(str(path))


def problems(tmp_path, text):
    with pytest.raises(DescriptionError) as failure:
        load(tmp_path, text)
    return failure.value.problems


def test_examples_load():
    howto = description.load(str(EXAMPLES / "howto.toml"))
    (vm,) = howto.vms
    assert (vm.name, vm.memory, vm.disk_size, vm.drbd_resource, vm.drbd_minor, vm.drbd_port) == (
        "shaolin", 512, 512 << 20, "vm_shaolin", 1, 7789)
    assert howto.lv_name(vm) == "vm_shaolin" and howto.defaults.protocol == "C"
    assert howto.defaults.verify_alg == "sha1" and howto.fencing.agent == "fence_ipmilan"
    trio = description.load(str(EXAMPLES / "three-nodes.toml"))
    assert len(trio.nodes) == 3 and len(trio.vms) == 5


@pytest.mark.parametrize("extra,expected", [
    ('replicas = ["a", "c"]', "vms[0].replicas: unknown node 'c' (nodes: a, b)"),
    ('replicas = ["a"]', "vms[0].replicas: 1 replicas: live migration needs DRBD dual-primary, which allows exactly two"),
    ('preferred_node = "c"', "vms[0].preferred_node: 'c' is not one of its replicas (a, b)"),
    ('drbd_port = 70000', "vms[0].drbd_port: 70000 is not a port (1-65535)"),
    ('bootloader = "pygrub"', "vms[0]: needs exactly one of kernel or bootloader"),
    ('colour = "blue"', "vms[0].colour: unknown key (allowed: "),
])
def test_vm_problems_name_file_key_and_what_is_allowed(tmp_path, extra, expected):
    found = problems(tmp_path, BASE + VM.format(name="x", extra=extra))
    assert any(p.startswith(f"{tmp_path / 'c.toml'}: {expected}") for p in found), found


def test_bad_sizes_and_names(tmp_path):
    text = BASE + VM.format(name="web 1", extra="").replace('disk_size = "1G"', 'disk_size = "lots"')
    found = problems(tmp_path, text)
    assert any("vms[0].name: 'web 1' is not valid for DRBD, LVM and Xen" in p for p in found)
    assert any("vms[0].disk_size: 'lots' is not a size (e.g. 512M, 20G)" in p for p in found)


def test_duplicates_are_reported_with_both_places(tmp_path):
    text = BASE + VM.format(name="x", extra="drbd_minor = 3\ndrbd_port = 7800") + \
        VM.format(name="x", extra="drbd_minor = 3\ndrbd_port = 7800")
    found = problems(tmp_path, text)
    assert any("vms[1].name: duplicate VM 'x' (also vms[0])" in p for p in found)
    assert any("vms[1].drbd_minor: duplicate minor 3 (also vms[0])" in p for p in found)
    assert any("vms[1].drbd_port: duplicate port 7800 (also vms[0])" in p for p in found)


def test_fencing_is_required_unless_test_cluster(tmp_path):
    text = BASE.replace("test_cluster = true\n", "") + VM.format(name="x", extra="")
    found = problems(tmp_path, text)
    assert any("cluster.fencing: fencing is required" in p for p in found)


def test_more_than_two_nodes_need_explicit_replicas(tmp_path):
    text = BASE + '[[nodes]]\nname = "c"\nreplication_address = "10.0.0.3"\n' + VM.format(name="x", extra="")
    assert any("vms[0].replicas: is required when the cluster has more than two nodes" in p
               for p in problems(tmp_path, text))


def test_not_toml_and_missing_file(tmp_path):
    (tmp_path / "bad.toml").write_text("[cluster\n")
    with pytest.raises(DescriptionError, match="not valid TOML"):
        description.load(str(tmp_path / "bad.toml"))
    with pytest.raises(DescriptionError, match="no such file"):
        description.load(str(tmp_path / "none.toml"))


def test_allocation_is_stable_when_vms_are_added_anywhere(tmp_path):
    two = load(tmp_path, BASE + VM.format(name="b1", extra="") + VM.format(name="b2", extra=""))
    slots, added = allocation.allocate(two, {})
    assert added == ["b1", "b2"] and (slots["b1"].minor, slots["b2"].minor) == (1, 2)
    path = tmp_path / "c.alloc.toml"
    path.write_text(allocation.render(slots))
    assert allocation.read(str(path)) == slots
    # a new VM first in the file: the existing ones keep their numbers
    three = load(tmp_path, BASE + VM.format(name="a0", extra="") + VM.format(name="b1", extra="")
                 + VM.format(name="b2", extra=""))
    again, added = allocation.allocate(three, allocation.read(str(path)))
    assert added == ["a0"]
    assert (again["b1"], again["b2"]) == (slots["b1"], slots["b2"])
    assert (again["a0"].minor, again["a0"].port) == (3, 7791)


def test_allocation_refuses_silent_renumbering(tmp_path):
    one = load(tmp_path, BASE + VM.format(name="v", extra="drbd_minor = 9"))
    previous = {"v": allocation.Slot("vm_v", 4, 7789)}
    with pytest.raises(DescriptionError, match="drbd settings differ from the allocation"):
        allocation.allocate(one, previous)


def test_sizes():
    parse = description.parse_size
    assert parse("512M") == 512 << 20 and parse("512MiB") == 512 << 20 and parse("20g") == 20 << 30
    assert parse(4096) == 4096 and parse("0") is None and parse("x") is None and parse(True) is None
