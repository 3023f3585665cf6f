"""DRBD resource files, one per VM (DRBD 9 syntax; 8.4 on request).

Every resource: protocol C (from the description), allow-two-primaries (live migration
needs both nodes Primary for a moment; Pacemaker's promoted-max=2 and the xen-domain
ordering keep it to that), `fencing resource-and-stonith` with the cluster-aware
fence-peer/unfence handlers of drbd-utils (they place and lift a "don't promote there"
constraint in the CIB), the resync-snapshot handlers of xenha (an LVM snapshot of the
resync target, see xenha.handlers.resync_snapshot), a verify algorithm, and a resync rate.
DRBD 8.4 differs: `fencing` lives in `disk {}`, the unfence hook is after-resync-target
(shared with the snapshot handler, which then runs the unfence script itself).

Values come from a checked description (xenha.cluster.description): names, paths,
numbers and algorithm names that are single DRBD words. `word()`, `command()` and
`address()` refuse anything else once more, so that no value can end a statement, open
a block in the file, or reach the shell drbdadm runs a handler with.
"""

import ipaddress

from xenha import names
from xenha.cluster.allocation import Slot
from xenha.cluster.description import Description, DescriptionError, Vm, parse_rate_kib
from xenha.render import header

FENCE_PEER_9 = "/usr/lib/drbd/crm-fence-peer.9.sh"
UNFENCE_PEER_9 = "/usr/lib/drbd/crm-unfence-peer.9.sh"
FENCE_PEER_84 = "/usr/lib/drbd/crm-fence-peer.sh"
UNFENCE_PEER_84 = "/usr/lib/drbd/crm-unfence-peer.sh"


def file_name(slot: Slot) -> str:
    return f"{slot.resource}.res"


def _refuse(description: Description, value, why) -> None:
    raise DescriptionError([f"{description.path}: {value!r} cannot be written into a DRBD resource file: {why}"])


def word(description: Description, value) -> str:
    """A value as one unquoted drbdadm word, or a DescriptionError."""
    text = str(value)
    why = names.check_drbd_word(text)
    if why:
        _refuse(description, text, why)
    return text


def command(description: Description, text: str) -> str:
    """A handler command as a quoted drbdadm string (drbdadm runs it with /bin/sh)."""
    why = names.check_ascii_line(text, refused="\"\\$`;&|<>(){}*?[]~#!\'")
    if why:
        _refuse(description, text, why)
    return f'"{text}"'


def address(description: Description, replication_address: str, port: int) -> str:
    """DRBD's address statement: `ipv4 10.0.0.1:7789` or `ipv6 [fd00::1]:7789`."""
    try:
        host = ipaddress.ip_address(replication_address)
    except ValueError:
        _refuse(description, replication_address, "not an IP address")
    if not 1 <= port <= 65535 or host.compressed != replication_address or "%" in replication_address:
        _refuse(description, f"{replication_address}:{port}", "not a canonical address and port")
    if host.version == 6:
        return f"ipv6 [{host.compressed}]:{port}"
    return f"ipv4 {host.compressed}:{port}"


def device(slot: Slot) -> str:
    return f"/dev/drbd{slot.minor}"


def backing_disk(description: Description, vm: Vm) -> str:
    return f"/dev/{description.defaults.volume_group}/{description.lv_name(vm)}"


def handlers(description: Description, version: int) -> list[str]:
    defaults = description.defaults
    snapshot = f"{defaults.handler_dir}/xenha-resync-snapshot"
    size = defaults.resync_snapshot
    lines = []
    if version == 9:
        lines += [f"fence-peer {command(description, FENCE_PEER_9)};",
                  f"unfence-peer {command(description, UNFENCE_PEER_9)};"]
        if size:
            lines += [f"before-resync-target {command(description, f'{snapshot} before --size {size}')};",
                      f"after-resync-target {command(description, f'{snapshot} after')};"]
    else:
        lines.append(f"fence-peer {command(description, FENCE_PEER_84)};")
        if size:
            lines += [f"before-resync-target {command(description, f'{snapshot} before --size {size}')};",
                      f"after-resync-target {command(description, f'{snapshot} after --then {UNFENCE_PEER_84}')};"]
        else:
            lines.append(f"after-resync-target {command(description, UNFENCE_PEER_84)};")
    return lines


def render(description: Description, vm: Vm, slot: Slot, version: int | None = None) -> str:
    version = version or description.defaults.drbd_version
    defaults = description.defaults
    nodes = [description.node(name) for name in vm.replicas]
    net = [f"protocol {word(description, defaults.protocol)};", "allow-two-primaries yes;",
           "after-sb-0pri discard-zero-changes;", "after-sb-1pri discard-secondary;",
           "after-sb-2pri disconnect;", f"verify-alg {word(description, defaults.verify_alg)};"]
    if parse_rate_kib(defaults.resync_rate) is None:
        _refuse(description, defaults.resync_rate, "not a rate")
    disk = [f"resync-rate {defaults.resync_rate};", "on-io-error detach;"]
    if version == 9:
        net.append("fencing resource-and-stonith;")
    else:
        disk.append("fencing resource-and-stonith;")
    out = [f"# {header(description.path)}",
           f"# VM {vm.name}: LV {backing_disk(description, vm)} on {' and '.join(vm.replicas)}",
           f"resource {word(description, slot.resource)} {{"]
    out += _block("net", net) + _block("disk", disk) + _block("handlers", handlers(description, version))
    for node_id, node in enumerate(nodes):
        body = []
        if version == 9:
            body.append(f"node-id {node_id};")
        body += [f"device {device(slot)} minor {int(slot.minor)};",
                 f"disk {word(description, backing_disk(description, vm))};",
                 "meta-disk internal;", f"address {address(description, node.replication_address, int(slot.port))};"]
        out += _block(f"on {word(description, node.name)}", body)
    out.append("}")
    return "\n".join(out) + "\n"


def _block(title: str, lines) -> list[str]:
    return [f"    {title} {{"] + [f"        {line}" for line in lines] + ["    }"]
