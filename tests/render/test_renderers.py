"""Rendered files are accepted by the real tools: drbdadm (9 and 8.4) for DRBD resource
files, Xen's own libxlutil for xl configs; rendering is deterministic."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, installed, need_tool
from xenha.cluster import allocation, description
from xenha.render import drbd, pacemaker, xl
from xenha.tools import xl_config

EXAMPLES = sorted((REPO / "cluster-config" / "examples").glob("*.toml"))
EXAMPLES = [p for p in EXAMPLES if not p.name.endswith(".alloc.toml")]


def rendered(path):
    desc = description.load(str(path))
    slots, _added = allocation.allocate(desc, {})
    return desc, slots


def build_xlparse(directory) -> str:
    """Our small C program over Xen's libxlutil (tests/tools/xlparse.c), compiled."""
    gcc = need_tool("gcc")
    installed("/usr/include/libxlutil.h")   # libxen-dev
    binary = directory / "xlparse"
    subprocess.run([gcc, "-Wall", "-Werror", "-o", str(binary), str(REPO / "tests/tools/xlparse.c"),
                    "-lxlutil", "-lxenlight"], check=True)
    return str(binary)


@pytest.fixture(scope="module")
def xlparse(tmp_path_factory):
    return build_xlparse(tmp_path_factory.mktemp("xlparse"))


def parse_with_libxlutil(xlparse, path, vifs=False):
    """(values, disks[, vif specs]) as libxlutil reads the config file."""
    result = subprocess.run([xlparse, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    values = dict(line.split("=", 1) for line in lines if not line.startswith(("disk[", "vif[")))
    disks = [dict(kv.split("=", 1) for kv in line.split(" ")[1:]) for line in lines if line.startswith("disk[")]
    if vifs:
        return values, disks, [line.split("=", 1)[1] for line in lines if line.startswith("vif[")]
    return values, disks


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_xl_configs_are_read_by_xens_own_parser_as_meant(example, xlparse, tmp_path):
    desc, slots = rendered(example)
    for vm in desc.vms:
        path = tmp_path / xl.file_name(vm)
        path.write_text(xl.render(desc, vm, slots[vm.name]))
        values, disks = parse_with_libxlutil(xlparse, path)
        assert values["name"] == vm.name and int(values["memory"]) == vm.memory
        assert int(values["vcpus"]) == vm.vcpus and values["on_crash"] == "destroy"
        assert values.get("kernel", "") == vm.kernel and values.get("bootloader", "") == vm.bootloader
        assert disks == [{"pdev_path": f"/dev/drbd{slots[vm.name].minor}", "vdev": "xvda", "format": "raw",
                          "script": "", "readwrite": "1"}]


CONFIGS = {
    "howto-legacy": "kernel = '/boot/vmlinuz-2.6.18-xen'\nmemory = 512\nname = 'shaolin'\n"
                    "vif = [ 'bridge=xenbr0' ]\ndisk = [ 'drbd:vm_shaolin,hda1,w' ]\nroot = '/dev/hda1 ro'\n",
    "multi-line-lists": "name=\"m\"\nmemory=0x100\ndisk=[\n 'phy:/dev/a,xvda,w',\n 'file:/srv/b.img,xvdb,r',\n]\n",
    "semicolons-and-comments": "name = 'c' ; memory = 64 # trailing\n# whole line\nvcpus = 2\n",
    "key-value-disk": "name = 'k'\ndisk = [ 'vdev=xvda, access=ro, format=raw, target=/dev/x,with,commas' ]\n",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_our_config_reader_agrees_with_libxlutil(name, xlparse, tmp_path):
    """xenha reads configs itself (agent identity, the xl simulator): it must read them as
    xl does."""
    path = tmp_path / f"{name}.cfg"
    path.write_text(CONFIGS[name])
    values, disks = parse_with_libxlutil(xlparse, path)
    ours = xl_config.load(str(path))
    assert ours.name == values["name"]
    if "memory" in values:
        assert ours.get("memory") == int(values["memory"])
    ours_disks = ours.disks()
    assert len(ours_disks) == len(disks)
    for mine, theirs in zip(ours_disks, disks):
        assert (mine.target, mine.vdev, mine.format, mine.script or "", str(int(mine.writable))) == (
            theirs["pdev_path"], theirs["vdev"], theirs["format"], theirs["script"], theirs["readwrite"])


@pytest.mark.parametrize("version", [9, 8])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_drbd_files_are_accepted_by_drbdadm(example, version, tmp_path):
    need_tool("drbdadm")
    desc, slots = rendered(example)
    for vm in desc.vms:
        res = tmp_path / drbd.file_name(slots[vm.name])
        res.write_text(drbd.render(desc, vm, slots[vm.name], version))
        conf = tmp_path / "drbd.conf"
        conf.write_text(f'global {{ usage-count no; }}\ninclude "{res}";\n')
        env = dict(os.environ, __DRBD_NODE__=vm.replicas[0])
        argv = ["drbdadm", "-c", str(conf), "dump", slots[vm.name].resource]
        if version == 8:
            argv[0] = "/lib/drbd/drbdadm-84"
        else:
            env["DRBD_DRIVER_VERSION_OVERRIDE"] = "9.2.0"
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        dumped = result.stdout
        assert "allow-two-primaries yes;" in dumped and "resource-and-stonith" in dumped
        assert f"device           /dev/drbd{slots[vm.name].minor} minor {slots[vm.name].minor};" in dumped
        assert "protocol" in dumped or version == 8
        handler = "unfence-peer" if version == 9 else "after-resync-target"
        assert handler in dumped and "before-resync-target" in dumped


def test_drbdadm_rejects_a_broken_file(tmp_path):
    need_tool("drbdadm")
    conf = tmp_path / "drbd.conf"
    conf.write_text("resource r { net { fencing } }\n")
    result = subprocess.run(["drbdadm", "-c", str(conf), "dump", "r"], capture_output=True, text=True,
                            env=dict(os.environ, DRBD_DRIVER_VERSION_OVERRIDE="9.2.0", __DRBD_NODE__="a"))
    assert result.returncode != 0, "the acceptance test above must be able to fail"


# Every file `xenha render` writes, for DRBD 9 and 8.4, as [example, [(path, text)...]].
RENDER_EVERYTHING = """
import json, sys
from xenha.cluster import allocation, description
from xenha.render import files

rendered = []
for path in sys.argv[1:]:
    desc = description.load(path)
    slots, _added = allocation.allocate(desc, {})
    rendered.append([path, [list(item) for version in (9, 8) for item in files.render_all(desc, slots, version).items()]])
print(json.dumps(rendered))
print(json.dumps(list({f"vm{number}" for number in range(20)})))   # what a set's order does under this seed
"""


def test_rendering_is_deterministic_across_interpreters_and_hash_seeds():
    """Rendered in separate interpreters with different PYTHONHASHSEED values (0: hashing
    not randomised): an order that followed a set's or a hash's order would differ."""
    outputs, set_orders = {}, {}
    for seed in ("0", "1", "2", "3", "4", "5"):
        child = subprocess.run([sys.executable, "-c", RENDER_EVERYTHING, *map(str, EXAMPLES)], capture_output=True,
                               text=True, timeout=120, env=dict(os.environ, PYTHONHASHSEED=seed))
        assert child.returncode == 0, child.stderr
        outputs[seed], set_orders[seed] = child.stdout.splitlines()
    assert len(json.loads(outputs["0"])) == len(EXAMPLES)
    assert len(set(set_orders.values())) > 1, "the seeds did not change a set's order: the test could not fail"
    differing = [seed for seed, text in outputs.items() if text != outputs["0"]]
    assert differing == [], f"the rendered files depend on the hash seed (differ with seeds {differing})"


def test_rendered_cib_is_valid_for_pacemaker(tmp_path):
    need_tool("crm_verify")
    desc, slots = rendered(REPO / "cluster-config/examples/three-nodes.toml")
    cib = tmp_path / "cib.xml"
    cib.write_text(pacemaker.cib_xml(pacemaker.build(desc, slots), [n.name for n in desc.nodes]))
    checked = subprocess.run(["crm_verify", "-x", str(cib), "-V"], capture_output=True, text=True)
    # A configuration-only CIB exits 78 (nodes unclean, no quorum); errors would be reported as such.
    assert checked.returncode in (0, 78), checked.stderr
    assert "error:" not in checked.stderr.lower(), checked.stderr
    assert shutil.which("crm_verify")


def test_pcs_script_guards_look_only_at_the_configuration():
    """A live CIB's status section has ids too (lrm_rsc_op NAME_last_0): a guard that
    looked there could take a new VM for an existing one and skip it."""
    desc, slots = rendered(REPO / "cluster-config" / "examples" / "howto.toml")
    script = pacemaker.pcs_script(pacemaker.build(desc, slots))
    guards = [line for line in script.splitlines() if line.startswith("has ")]
    assert guards
    assert all(line.startswith("has '/cib/configuration//") for line in guards), guards[:3]
