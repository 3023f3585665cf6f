"""xl domain configs, one per VM: the disk is the DRBD device itself (`phy:`-style
target, no block-drbd hotplug script: promotion is Pacemaker's job), the MAC address is
derived from the VM name (stable across renders), and on_crash is `destroy` so that a
crash is seen and handled by the cluster (restart, fail count), not hidden by xl."""

import hashlib

from xenha.cluster.allocation import Slot
from xenha import names
from xenha.cluster.description import Description, DescriptionError, Vm
from xenha.render import header
from xenha.render.drbd import device


def file_name(vm: Vm) -> str:
    return f"{vm.name}.cfg"


def mac_address(vm: Vm) -> str:
    """A MAC in Xen's OUI 00:16:3e, from a hash of the VM name."""
    digest = hashlib.sha256(vm.name.encode()).digest()
    return "00:16:3e:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x7F, digest[1], digest[2]))


def _quote(description: Description, text: str) -> str:
    """An xl string. Values come checked from the description (printable ASCII without
    quote or backslash); anything else is refused here once more."""
    if names.check_ascii_line(text, refused='"\\'):
        raise DescriptionError([f"{description.path}: {text!r} cannot be written into an xl config"])
    return f'"{text}"'


def _spec_value(description: Description, text: str) -> str:
    """A value inside a disk or vif spec ('key=value, key=value'): no separator, no quote."""
    if names.check_ascii_line(text, refused="',= "):
        raise DescriptionError([f"{description.path}: {text!r} cannot be written into an xl device spec"])
    return text


def render(description: Description, vm: Vm, slot: Slot) -> str:
    lines = [f"# {header(description.path)}",
             f"name = {_quote(description, vm.name)}",
             'type = "pv"',
             f"memory = {vm.memory}",
             f"vcpus = {vm.vcpus}"]
    if vm.kernel:
        lines.append(f"kernel = {_quote(description, vm.kernel)}")
    else:
        lines.append(f"bootloader = {_quote(description, vm.bootloader)}")
    if vm.extra:
        lines.append(f"extra = {_quote(description, vm.extra)}")
    lines += [f"disk = [ 'format=raw, vdev=xvda, access=rw, target={_spec_value(description, device(slot))}' ]",
              f"vif = [ 'bridge={_spec_value(description, vm.network)}, mac={mac_address(vm)}' ]",
              'on_poweroff = "destroy"',
              'on_reboot = "restart"',
              'on_crash = "destroy"']
    return "\n".join(lines) + "\n"
