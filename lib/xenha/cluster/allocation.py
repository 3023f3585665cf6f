"""DRBD minors and ports for every VM, allocated once and then stable.

Numbers given in the description are used as they are. Others are allocated on first
use and remembered in an allocation file next to the description
(`howto.toml` → `howto.alloc.toml`), which belongs in version control with it: adding a
VM only ever appends to it, so no existing VM is renumbered (a DRBD port or minor change
means downtime). VMs removed from the description release their numbers.
"""

import os
import tomllib
from dataclasses import dataclass

from xenha.cluster.description import Description, DescriptionError


@dataclass(frozen=True)
class Slot:
    resource: str
    minor: int
    port: int


def allocation_path(description_path: str) -> str:
    base = description_path[:-5] if description_path.endswith(".toml") else description_path
    return base + ".alloc.toml"


def read(path: str) -> dict:
    """{vm name: Slot} from an allocation file ({} if there is none)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise DescriptionError([f"{path}: unreadable allocation file: {error}"]) from None
    slots, problems = {}, []
    for name, entry in data.get("vms", {}).items():
        try:
            slots[name] = Slot(str(entry["drbd_resource"]), int(entry["drbd_minor"]), int(entry["drbd_port"]))
        except (KeyError, TypeError, ValueError):
            problems.append(f"{path}: vms.{name}: needs drbd_resource, drbd_minor and drbd_port")
    if problems:
        raise DescriptionError(problems)
    return slots


def render(slots: dict) -> str:
    lines = ["# DRBD numbers allocated by xenha: keep this file with the cluster description.",
             "# Existing entries never change; new VMs are appended.", ""]
    for name in slots:
        slot = slots[name]
        lines += [f'[vms."{name}"]', f'drbd_resource = "{slot.resource}"', f"drbd_minor = {slot.minor}",
                  f"drbd_port = {slot.port}", ""]
    return "\n".join(lines)


def allocate(description: Description, existing: dict) -> tuple[dict, list[str]]:
    """({vm name: Slot} for every VM, names of VMs that got new numbers)."""
    defaults = description.defaults
    slots, problems, added = {}, [], []
    kept = {name: slot for name, slot in existing.items() if any(vm.name == name for vm in description.vms)}
    for vm in description.vms:
        previous = kept.get(vm.name)
        minor = vm.drbd_minor if vm.drbd_minor is not None else (previous.minor if previous else None)
        port = vm.drbd_port if vm.drbd_port is not None else (previous.port if previous else None)
        if previous and (minor != previous.minor or port != previous.port or vm.drbd_resource != previous.resource):
            problems.append(f"{description.path}: vms {vm.name}: drbd settings differ from the allocation "
                            f"(minor {previous.minor}, port {previous.port}, resource {previous.resource}); "
                            "changing them needs the resource down on both nodes; update the allocation file "
                            "deliberately if that is what you want")
        if minor is not None and port is not None:
            slots[vm.name] = Slot(vm.drbd_resource, minor, port)
    used_minors = {slot.minor: name for name, slot in slots.items()}
    used_ports = {slot.port: name for name, slot in slots.items()}
    if len(used_minors) != len(slots) or len(used_ports) != len(slots):
        clash = [f"{a} and {b}" for a in slots for b in slots if a < b and
                 (slots[a].minor == slots[b].minor or slots[a].port == slots[b].port)]
        problems.append(f"{description.path}: VMs share a DRBD minor or port: {', '.join(clash)}")
    for vm in description.vms:
        if vm.name in slots:
            continue
        minor = vm.drbd_minor if vm.drbd_minor is not None else _first_free(defaults.drbd_minor_base, used_minors)
        port = vm.drbd_port if vm.drbd_port is not None else _first_free(defaults.drbd_port_base, used_ports)
        slots[vm.name] = Slot(vm.drbd_resource, minor, port)
        used_minors[minor] = vm.name
        used_ports[port] = vm.name
        added.append(vm.name)
    if problems:
        raise DescriptionError(problems)
    ordered = {vm.name: slots[vm.name] for vm in description.vms}
    return ordered, added


def _first_free(start: int, used: dict) -> int:
    number = start
    while number in used:
        number += 1
    return number
