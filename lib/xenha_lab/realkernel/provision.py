"""A cluster description provisioned on real-kernel nodes, with the real tools.

On every replica of every VM: the LV (real LVM on the node's data disk /dev/vdb), the
rendered DRBD resource file and xl config (the product's renderers, run on the host),
DRBD meta-data and `drbdadm up`; the initial sync skipped (both replicas are zeroed
disks, so `new-current-uuid --clear-bitmap` is what DRBD's guide says to do), then the
resource down and the LV inactive again, so that Pacemaker owns both; finally the
rendered Pacemaker configuration, element by element with cibadmin (pcs costs 10-12 s a
call in these machines; the CIB is the one `pcs` would build, tests/render proves the two
equal).

Operation timeouts and monitor intervals are SLOWDOWN times the agents' (slower_operations). The one addition
to the rendered files: `ramdisk =` in the xl config. The description has
no such key, and Debian's kernel cannot boot a PV guest without its initramfs (blkfront
is a module); the lab's guest kernel and initramfs are on the share.
"""

from __future__ import annotations

import shlex
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources

from xenha_lab.lab.backend import LabError, NodeBackend

GUEST_RAMDISK = "/share/guest/initrd.gz"
SLOWDOWN = 3                   # operation timeouts, times the agents' own (slower_operations)
DATA_DISK = "/dev/vdb"


def default_description() -> str:
    return str(resources.files("xenha_lab.realkernel").joinpath("files", "cluster.toml"))


@dataclass(frozen=True)
class ProvisionedVm:
    name: str
    resource: str              # DRBD resource
    device: str                # /dev/drbdN
    minor: int
    replicas: tuple
    preferred: str
    lv: str                    # vg/lv


def render(path: str):
    """(description, slots, {relative path: text}) as `xenha render` would write them."""
    from xenha.cluster import allocation
    from xenha.cluster.description import DescriptionError, load
    from xenha.render import files

    try:
        description = load(path)
        slots, _added = allocation.allocate(description, allocation.read(allocation.allocation_path(path)))
    except DescriptionError as error:
        raise LabError(f"{path}: " + "; ".join(error.problems)) from None
    return description, slots, files.render_all(description, slots, 8)


def _write(lab: NodeBackend, node: str, path: str, text: str) -> None:
    lab.check(node, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && mv "$1.tmp" "$1"', "-", path],
              input=text, timeout=30)


def _script(lab: NodeBackend, node: str, script: str, timeout: float = 120.0) -> str:
    result = lab.run(node, ["bash", "-euo", "pipefail", "-c", script], timeout=timeout)
    if not result.ok:
        raise LabError(f"provisioning on {node}: {result.describe()}")
    return result.stdout


def wait_drbd(lab: NodeBackend, node: str, minor: int, wanted: str, timeout: float) -> str:
    """Until /proc/drbd of `node` shows `wanted` (e.g. 'cs:Connected') for `minor`."""
    deadline = time.monotonic() + timeout
    line = ""
    while True:
        data = lab.read_file(node, "/proc/drbd") or b""
        for text in data.decode(errors="replace").splitlines():
            if text.strip().startswith(f"{minor}:"):
                line = text.strip()
        if wanted in line:
            return line
        if time.monotonic() >= deadline:
            raise LabError(f"{node}: DRBD minor {minor} not {wanted} after {timeout:.0f} s: {line or 'absent'}")
        time.sleep(0.3)


def provision(lab: NodeBackend, path: str | None = None, say=None) -> tuple[list[ProvisionedVm], dict]:
    """Provision the description at `path` (the lab's own by default); the VMs and the
    seconds each phase took."""
    say = say or (lambda message: None)
    path = path or default_description()
    description, slots, files = render(path)
    timings: dict[str, float] = {}
    started = time.monotonic()
    vms = []
    for vm in description.vms:
        slot = slots[vm.name]
        lv = f"{description.defaults.volume_group}/{description.lv_name(vm)}"
        vms.append(ProvisionedVm(vm.name, slot.resource, f"/dev/drbd{slot.minor}", slot.minor, tuple(vm.replicas),
                                 vm.preferred_node or vm.replicas[0], lv))
    vg = description.defaults.volume_group
    say("LVs, DRBD and xl files on every replica")
    for node in lab.nodes:
        mine = [(vm, slots[vm.name]) for vm in description.vms if node in vm.replicas]
        script = [f"vgs {vg} >/dev/null 2>&1 || {{ pvcreate -y {DATA_DISK} && vgcreate -y {vg} {DATA_DISK}; }}"]
        for vm, slot in mine:
            lv = description.lv_name(vm)
            script.append(f"lvs {vg}/{lv} >/dev/null 2>&1 || lvcreate -y -L {vm.disk_size // 1024}k -n {lv} {vg}")
        _script(lab, node, "\n".join(script))
        for relative, text in files.items():
            if relative.startswith("drbd.d/"):
                _write(lab, node, "/etc/drbd.d/" + relative.split("/", 1)[1], text)
            elif relative.startswith("xen/"):
                _write(lab, node, "/etc/xen/" + relative.split("/", 1)[1],
                       text + f'ramdisk = "{GUEST_RAMDISK}"\n')
        for vm, slot in mine:
            res = shlex.quote(slot.resource)
            _script(lab, node, f"drbdadm create-md --force {res} </dev/null\ndrbdadm up {res}")
    timings["replicas"] = time.monotonic() - started
    say("DRBD connected, initial sync skipped (both disks are zeroed)")
    for vm in vms:
        for node in vm.replicas:
            wait_drbd(lab, node, vm.minor, "cs:Connected", timeout=60)
        _script(lab, vm.replicas[0], f"drbdadm -- --clear-bitmap new-current-uuid {shlex.quote(vm.resource)}")
        for node in vm.replicas:
            wait_drbd(lab, node, vm.minor, "ds:UpToDate/UpToDate", timeout=60)
        for node in vm.replicas:
            _script(lab, node, f"drbdadm down {shlex.quote(vm.resource)}\nlvchange -y -an {vm.lv}")
    timings["drbd"] = time.monotonic() - started
    say("the Pacemaker configuration")
    apply_cib(lab, lab.nodes[0], files["pacemaker/cib.xml"])
    timings["cib"] = time.monotonic() - started
    return vms, timings


def slower_operations(configuration, factor: int = SLOWDOWN) -> None:
    """Every operation's timeout, and every recurring monitor's interval, `factor` times
    the agents' own (in place): a node here is one emulated CPU shared by Xen, dom0 and the
    guest, several times slower than the hardware the agents' meta-data are meant for, and
    each monitor starts a Python agent, which costs it seconds of CPU."""
    for op in configuration.iter("op"):
        if not op.get("timeout"):                   # Pacemaker's default, 20 s, slowed down too
            op.set("timeout", "20s")
        for attribute in ("timeout", "interval"):
            value = op.get(attribute, "")
            if value.endswith("s") and value[:-1].isdigit() and int(value[:-1]) > 0:
                op.set(attribute, f"{int(value[:-1]) * factor}s")


def apply_cib(lab: NodeBackend, node: str, cib_text: str) -> None:
    """The rendered configuration added to the live CIB: cluster properties, then every
    resource, constraint and tag as its own element (the lab's fence device and the
    seeded defaults stay)."""
    configuration = ET.fromstring(cib_text).find("configuration")
    if configuration is None:
        raise LabError("the rendered cib.xml has no configuration")
    slower_operations(configuration)
    commands = []
    for pair in configuration.iterfind("./crm_config/cluster_property_set/nvpair"):
        commands.append(["crm_attribute", "--type", "crm_config", "--name", pair.get("name"),
                         "--update", pair.get("value")])
    for pair in configuration.iterfind("./rsc_defaults/meta_attributes/nvpair"):
        commands.append(["crm_attribute", "--type", "rsc_defaults", "--name", pair.get("name"),
                         "--update", pair.get("value")])
    for section in ("resources", "constraints"):
        parent = configuration.find(section)
        for element in (parent if parent is not None else ()):
            commands.append(["cibadmin", "--create", "-o", section, "--xml-text",
                             ET.tostring(element, encoding="unicode")])
    tags = configuration.find("tags")
    if tags is not None and len(tags):          # a CIB has no <tags> until the first one
        commands.append(["cibadmin", "--create", "-o", "configuration", "--xml-text",
                         ET.tostring(tags, encoding="unicode")])
    for argv in commands:
        lab.check(node, argv, timeout=60)
