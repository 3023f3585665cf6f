"""What happens to the simulated hardware when a node loses power, or the network changes.

The namespace lab kills every process of a node at once (its PID namespace dies), and
everything the node kept in RAM (/run: simulated xl, DRBD and LVM state, guests' records)
is wiped. What the simulators keep *outside* the node must be told: a node's
advertisements on the shared DRBD "network", loop devices it activated (kernel objects
that do not die with a namespace). Each hook gets a DeadNode, runs on the host after every
process of the node is gone and *before* its RAM directory is wiped (so it may read
what the node had), must be idempotent, and must not raise for a node that never used
its simulator.

A simulator adds itself by providing the function named in POWER_LOST_HOOKS or
NETWORK_HOOKS; a missing module or function is skipped (the simulators are being
reorganised), and the supervisor records which hooks applied in its events.

Network changes (partition, a cut or restored link, heal) reach a simulator that keeps
its own "network" (the DRBD simulator's shared directory) as the set of address pairs that
can no longer reach each other, so that replication stops when corosync loses the peer and
resumes after `lab heal`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeadNode:
    name: str
    addresses: tuple          # every IP address the node had
    ram: str                  # host path of the node's /run, still as the node left it
    disk: str                 # host path of the node's disk (writable layers of /etc and /var)
    shared: str               # the lab's shared directory
    drbd_net: str             # the DRBD simulator's shared "network" directory

    def in_ram(self, path: str) -> str:
        """Host path of `path` (a path under /run inside the node)."""
        return os.path.join(self.ram, os.path.relpath(path, "/run"))


def _drbd_power_lost(node: DeadNode) -> bool:
    """The node's advertisements leave the shared DRBD "network" (its peers see it gone)."""
    power_off = _function("xenha_lab.sim.drbd.world", "node_power_off")
    if power_off is None:
        return False
    power_off(node.drbd_net, node=node.name, ips=set(node.addresses))
    return True


def _lvm_power_lost(node: DeadNode) -> bool:
    """LVs the node had active are loop devices (global kernel objects): the LVM
    simulator detaches them, reading the dead node's RAM state, once it provides this."""
    power_off = _function("xenha_lab.sim.lvm.world", "node_power_off")
    if power_off is None:
        return False
    power_off(node.in_ram("/run/xenha-sim/lvm"), node=node.name)
    return True


def _xen_power_lost(node: DeadNode) -> bool:
    """Guests are processes inside the node and die with it; a simulator that keeps
    anything outside the node (a migration in flight) cleans it here."""
    power_off = _function("xenha_lab.sim.xen.hosts", "node_power_off")
    if power_off is None:
        return False
    power_off(node.in_ram("/run/xenha-sim/xl"), node=node.name)
    return True


def _function(module: str, name: str):
    return getattr(_optional(module), name, None)


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        return None


def _drbd_network_changed(drbd_net: str, blocked: set) -> bool:
    changed = _function("xenha_lab.sim.drbd.world", "lab_network_changed")
    if changed is None:
        return False
    changed(drbd_net, blocked)
    return True


NETWORK_HOOKS = (("drbd", _drbd_network_changed),)

POWER_LOST_HOOKS = (("drbd", _drbd_power_lost), ("lvm", _lvm_power_lost), ("xen", _xen_power_lost))


def power_lost(node: DeadNode, log) -> list[str]:
    """Run every hook; the names of those that applied. A failing hook is logged, never
    stops the others."""
    applied = []
    for name, hook in POWER_LOST_HOOKS:
        try:
            if hook(node):
                applied.append(name)
        except Exception as error:  # noqa: BLE001 - one simulator's bug must not block a power cut
            log(f"power-lost hook {name} for {node.name} failed: {error!r}")
    return applied


def blocked_pairs(addresses: dict, links: dict, segments: dict) -> set:
    """{(ip_a, ip_b)} (sorted pairs) of the addresses of nodes that cannot reach each
    other: a node whose link is cut reaches nobody; nodes on different segments do not
    reach each other. `addresses` node -> ips, `links` node -> "up"|"cut", `segments`
    node -> int."""
    blocked = set()
    names = sorted(addresses)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if links[a] == "up" and links[b] == "up" and segments[a] == segments[b]:
                continue
            blocked |= {tuple(sorted((x, y))) for x in addresses[a] for y in addresses[b]}
    return blocked


def network_changed(drbd_net: str, blocked: set, log) -> list[str]:
    applied = []
    for name, hook in NETWORK_HOOKS:
        try:
            if hook(drbd_net, blocked):
                applied.append(name)
        except Exception as error:  # noqa: BLE001 - a simulator's bug must not break the lab network
            log(f"network hook {name} failed: {error!r}")
    return applied
