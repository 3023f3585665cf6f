"""xl domain configs, one per VM: the disk is the DRBD device itself (`phy:`-style
target, no block-drbd hotplug script: promotion is Pacemaker's job), the MAC address is
derived from the VM name (stable across renders), and on_crash is `destroy` so that a
crash is seen and handled by the cluster (restart, fail count), not hidden by xl."""

import hashlib

from xenha.cluster.allocation import Slot
from xenha.cluster.description import Description, Vm
from xenha.render import HEADER
from xenha.render.drbd import device


def file_name(vm: Vm) -> str:
    return f"{vm.name}.cfg"


def mac_address(vm: Vm) -> str:
    """A MAC in Xen's OUI 00:16:3e, from a hash of the VM name."""
    digest = hashlib.sha256(vm.name.encode()).digest()
    return "00:16:3e:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x7F, digest[1], digest[2]))


def _quote(text: str) -> str:
    if '"' in text or "\\" in text or "\n" in text:
        raise ValueError(f"value {text!r} cannot be quoted in an xl config")
    return f'"{text}"'


def render(description: Description, vm: Vm, slot: Slot) -> str:
    lines = [f"# {HEADER.format(source=description.path)}",
             f"name = {_quote(vm.name)}",
             'type = "pv"',
             f"memory = {vm.memory}",
             f"vcpus = {vm.vcpus}"]
    if vm.kernel:
        lines.append(f"kernel = {_quote(vm.kernel)}")
    else:
        lines.append(f"bootloader = {_quote(vm.bootloader)}")
    if vm.extra:
        lines.append(f"extra = {_quote(vm.extra)}")
    lines += [f"disk = [ 'format=raw, vdev=xvda, access=rw, target={device(slot)}' ]",
              f"vif = [ 'bridge={vm.network}, mac={mac_address(vm)}' ]",
              'on_poweroff = "destroy"',
              'on_reboot = "restart"',
              'on_crash = "destroy"']
    return "\n".join(lines) + "\n"
