"""DRBD minors and ports for every VM, allocated once and then stable.

Numbers given in the description are used as they are. Others are allocated on first
use and remembered in an allocation file next to the description
(`howto.toml` → `howto.alloc.toml`), which belongs in version control with it: adding a
VM only ever appends to it, so no existing VM is renumbered (a DRBD port or minor change
means downtime). VMs removed from the description release their numbers.

Every number is known before any is allocated (explicit ones, then recorded ones), so a
new VM never gets a number another VM states explicitly; the result is checked once
more as a whole (every minor and port used once, within DRBD's and TCP's ranges).
"""

import os
from dataclasses import dataclass

from xenha import names
from xenha.cluster.description import MAX_MINOR, MAX_PORT, Description, DescriptionError, key_join, read_toml, show


@dataclass(frozen=True)
class Slot:
    resource: str
    minor: int
    port: int


def allocation_path(description_path: str) -> str:
    base = description_path[:-5] if description_path.endswith(".toml") else description_path
    return base + ".alloc.toml"


def read(path: str) -> dict:
    """{vm name: Slot} from an allocation file ({} if there is none); every entry checked
    as the description checks the same values."""
    if not os.path.lexists(path):
        return {}
    data = read_toml(path, "allocation file")
    vms = data.get("vms", {})
    problems = [f"{path}: {key_join('', name)}: unknown key (allowed: vms)" for name in data if name != "vms"]
    if not isinstance(vms, dict):
        raise DescriptionError(problems + [f"{path}: vms: must be a table of VMs"])
    slots = {}
    for name, entry in vms.items():
        key = key_join("vms", name)
        why = names.check_identity(name)
        if why:
            problems.append(f"{path}: {key}: {show(name)} is not a VM name: {why}")
            continue
        if not isinstance(entry, dict) or set(entry) != {"drbd_resource", "drbd_minor", "drbd_port"}:
            problems.append(f"{path}: {key}: needs drbd_resource, drbd_minor and drbd_port, and nothing else")
            continue
        resource, minor, port = entry["drbd_resource"], entry["drbd_minor"], entry["drbd_port"]
        wrong = []
        why = names.check_drbd_resource_name(resource)
        if why:
            wrong.append(f"drbd_resource {show(resource)} {why}")
        if not _integer_in(minor, 0, MAX_MINOR):
            wrong.append(f"drbd_minor {show(minor)} is not a DRBD minor (0-{MAX_MINOR})")
        if not _integer_in(port, 1, MAX_PORT):
            wrong.append(f"drbd_port {show(port)} is not a port (1-{MAX_PORT})")
        if wrong:
            problems.append(f"{path}: {key}: {'; '.join(wrong)}")
            continue
        slots[name] = Slot(resource, minor, port)
    if problems:
        raise DescriptionError(problems)
    return slots


def _integer_in(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def render(slots: dict) -> str:
    lines = ["# DRBD numbers allocated by xenha: keep this file with the cluster description.",
             "# Existing entries never change; new VMs are appended.", ""]
    for name in slots:
        slot = slots[name]
        # Names and resources are checked identities (no quote or backslash to escape).
        lines += [f'[vms."{name}"]', f'drbd_resource = "{slot.resource}"', f"drbd_minor = {slot.minor}",
                  f"drbd_port = {slot.port}", ""]
    return "\n".join(lines)


def allocate(description: Description, existing: dict) -> tuple[dict, list[str]]:
    """({vm name: Slot} for every VM, names of VMs that got new numbers)."""
    defaults = description.defaults
    path = description.path
    problems = []
    kept = {vm.name: existing[vm.name] for vm in description.vms if vm.name in existing}
    minors, ports = {}, {}         # number -> VM names that hold it (explicit or recorded)
    for vm in description.vms:
        previous = kept.get(vm.name)
        minor = vm.drbd_minor if vm.drbd_minor is not None else (previous.minor if previous else None)
        port = vm.drbd_port if vm.drbd_port is not None else (previous.port if previous else None)
        if previous and (minor != previous.minor or port != previous.port or vm.drbd_resource != previous.resource):
            problems.append(f"{path}: {description.vm_key(vm.name)}: drbd settings differ from the allocation "
                            f"(minor {previous.minor}, port {previous.port}, resource {previous.resource}); "
                            "changing them needs the resource down on both nodes; update the allocation file "
                            "deliberately if that is what you want")
        if minor is not None:
            minors.setdefault(minor, []).append(vm.name)
        if port is not None:
            ports.setdefault(port, []).append(vm.name)
    for what, used in (("minor", minors), ("port", ports)):
        for number, holders in used.items():
            if len(holders) > 1:
                problems.append(f"{path}: {description.vm_key(holders[1])}: DRBD {what} {number} is also "
                                f"{' and '.join(holders[:1] + holders[2:])}'s")
    slots, added = {}, []
    for vm in description.vms:
        previous = kept.get(vm.name)
        minor = vm.drbd_minor if vm.drbd_minor is not None else (previous.minor if previous else None)
        port = vm.drbd_port if vm.drbd_port is not None else (previous.port if previous else None)
        if minor is None:
            minor = _first_free(defaults.drbd_minor_base, MAX_MINOR, minors)
            minors[minor] = [vm.name]
        if port is None:
            port = _first_free(defaults.drbd_port_base, MAX_PORT, ports)
            ports[port] = [vm.name]
        if minor is None or port is None:
            problems.append(f"{path}: {description.vm_key(vm.name)}: no free DRBD "
                            f"{'minor' if minor is None else 'port'} left above the base in [defaults]")
            continue
        if previous is None and (vm.drbd_minor is None or vm.drbd_port is None):
            added.append(vm.name)
        slots[vm.name] = Slot(vm.drbd_resource, minor, port)
    if problems:
        raise DescriptionError(problems)
    _check_unique(description, slots)
    return slots, added


def _first_free(start: int, highest: int, used: dict) -> int | None:
    number = start
    while number in used:
        number += 1
    return number if number <= highest else None


def _check_unique(description: Description, slots: dict) -> None:
    """The whole allocation once more: every minor, port and resource used once."""
    seen, problems = {}, []
    for name, slot in slots.items():
        for what, value in (("minor", slot.minor), ("port", slot.port), ("resource", slot.resource)):
            other = seen.setdefault((what, value), name)
            if other != name:
                problems.append(f"{description.path}: {description.vm_key(name)}: DRBD {what} {value} "
                                f"is also {other}'s")
    if problems:
        raise DescriptionError(problems)
