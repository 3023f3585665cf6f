"""DRBD resource files, one per VM (DRBD 9 syntax; 8.4 on request).

Every resource: protocol C (from the description), allow-two-primaries (live migration
needs both nodes Primary for a moment; Pacemaker's promoted-max=2 and the xen-domain
ordering keep it to that), `fencing resource-and-stonith` with the cluster-aware
fence-peer/unfence handlers of drbd-utils (they place and lift a "don't promote there"
constraint in the CIB), the resync-snapshot handlers of xenha (an LVM snapshot of the
resync target, see xenha.handlers.resync_snapshot), a verify algorithm, and a resync rate.
DRBD 8.4 differs: `fencing` lives in `disk {}`, the unfence hook is after-resync-target
(shared with the snapshot handler, which then runs the unfence script itself).
"""

from xenha.cluster.allocation import Slot
from xenha.cluster.description import Description, Vm
from xenha.render import HEADER

FENCE_PEER_9 = "/usr/lib/drbd/crm-fence-peer.9.sh"
UNFENCE_PEER_9 = "/usr/lib/drbd/crm-unfence-peer.9.sh"
FENCE_PEER_84 = "/usr/lib/drbd/crm-fence-peer.sh"
UNFENCE_PEER_84 = "/usr/lib/drbd/crm-unfence-peer.sh"


def file_name(slot: Slot) -> str:
    return f"{slot.resource}.res"


def device(slot: Slot) -> str:
    return f"/dev/drbd{slot.minor}"


def backing_disk(description: Description, vm: Vm) -> str:
    return f"/dev/{description.defaults.volume_group}/{description.lv_name(vm)}"


def handlers(description: Description, version: int) -> list[str]:
    defaults = description.defaults
    snapshot = f"{defaults.handler_dir}/xenha-resync-snapshot"
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
    net = [f"protocol {defaults.protocol};", "allow-two-primaries yes;",
           "after-sb-0pri discard-zero-changes;", "after-sb-1pri discard-secondary;",
           "after-sb-2pri disconnect;", f"verify-alg {defaults.verify_alg};"]
    disk = [f"resync-rate {defaults.resync_rate};", "on-io-error detach;"]
    if version == 9:
        net.append("fencing resource-and-stonith;")
    else:
        disk.append("fencing resource-and-stonith;")
    out = [f"# {HEADER.format(source=description.path)}",
           f"# VM {vm.name}: LV {backing_disk(description, vm)} on {' and '.join(vm.replicas)}",
           f"resource {slot.resource} {{"]
    out += _block("net", net) + _block("disk", disk) + _block("handlers", handlers(description, version))
    for node_id, node in enumerate(nodes):
        body = []
        if version == 9:
            body.append(f"node-id {node_id};")
        body += [f"device {device(slot)} minor {slot.minor};", f"disk {backing_disk(description, vm)};",
                 "meta-disk internal;", f"address ipv4 {node.replication_address}:{slot.port};"]
        out += _block(f"on {node.name}", body)
    out.append("}")
    return "\n".join(out) + "\n"


def _block(title: str, lines) -> list[str]:
    return [f"    {title} {{"] + [f"        {line}" for line in lines] + ["    }"]
