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
numbers and algorithm names that are single DRBD words. `word()` refuses anything else
once more, so that no value can end a statement or open a block in the file.
"""

from xenha.cluster.allocation import Slot
from xenha.cluster.description import Description, DescriptionError, Vm
from xenha.render import header

# Characters that end or change a drbdadm word: blanks, statement and block ends,
# quotes, comments, escapes.
NOT_IN_A_WORD = frozenset(' \t\n\r;{}"#\\\'')

FENCE_PEER_9 = "/usr/lib/drbd/crm-fence-peer.9.sh"
UNFENCE_PEER_9 = "/usr/lib/drbd/crm-unfence-peer.9.sh"
FENCE_PEER_84 = "/usr/lib/drbd/crm-fence-peer.sh"
UNFENCE_PEER_84 = "/usr/lib/drbd/crm-unfence-peer.sh"


def file_name(slot: Slot) -> str:
    return f"{slot.resource}.res"


def word(description: Description, value) -> str:
    """A value as one drbdadm word, or a DescriptionError."""
    text = str(value)
    if not text or not text.isascii() or not text.isprintable() or any(c in NOT_IN_A_WORD for c in text):
        raise DescriptionError([f"{description.path}: {text!r} cannot be written into a DRBD resource file"])
    return text


def address(description: Description, replication_address: str, port: int) -> str:
    """DRBD's address statement: `ipv4 10.0.0.1:7789` or `ipv6 [fd00::1]:7789`."""
    host = word(description, replication_address)
    if ":" in host:
        return f"ipv6 [{host}]:{port}"
    return f"ipv4 {host}:{port}"


def device(slot: Slot) -> str:
    return f"/dev/drbd{slot.minor}"


def backing_disk(description: Description, vm: Vm) -> str:
    return f"/dev/{description.defaults.volume_group}/{description.lv_name(vm)}"


def handlers(description: Description, version: int) -> list[str]:
    defaults = description.defaults
    snapshot = f"{word(description, defaults.handler_dir)}/xenha-resync-snapshot"
    if defaults.resync_snapshot:
        word(description, defaults.resync_snapshot)
    lines = []
    if version == 9:
        lines += [f'fence-peer "{FENCE_PEER_9}";', f'unfence-peer "{UNFENCE_PEER_9}";']
        if defaults.resync_snapshot:
            lines += [f'before-resync-target "{snapshot} before --size {defaults.resync_snapshot}";',
                      f'after-resync-target "{snapshot} after";']
    else:
        lines.append(f'fence-peer "{FENCE_PEER_84}";')
        if defaults.resync_snapshot:
            lines += [f'before-resync-target "{snapshot} before --size {defaults.resync_snapshot}";',
                      f'after-resync-target "{snapshot} after --then {UNFENCE_PEER_84}";']
        else:
            lines.append(f'after-resync-target "{UNFENCE_PEER_84}";')
    return lines


def render(description: Description, vm: Vm, slot: Slot, version: int | None = None) -> str:
    version = version or description.defaults.drbd_version
    defaults = description.defaults
    nodes = [description.node(name) for name in vm.replicas]
    net = [f"protocol {word(description, defaults.protocol)};", "allow-two-primaries yes;",
           "after-sb-0pri discard-zero-changes;", "after-sb-1pri discard-secondary;",
           "after-sb-2pri disconnect;", f"verify-alg {word(description, defaults.verify_alg)};"]
    disk = [f"resync-rate {word(description, defaults.resync_rate)};", "on-io-error detach;"]
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
