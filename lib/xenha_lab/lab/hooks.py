"""What happens to the simulated hardware when a node loses power.

The namespace lab kills every process of a node at once (its PID namespace dies), and
everything the node kept in RAM (/run: simulated xl, DRBD and LVM state, guests' records)
is wiped. What the simulators keep *outside* the node must be told: a node's
advertisements on the shared DRBD "network", loop devices it activated (kernel objects
that do not die with a namespace). Each hook gets a DeadNode, runs on the host after every
process of the node is gone and *before* its RAM directory is wiped (so it may read
what the node had), is idempotent, and does nothing for a node that never used its
simulator; the supervisor records which hooks ran in its events.

Network changes need no hook: each node's simulated DRBD kernel keeps real TCP links on
the lab network, so a partition or a cut link ends its connections after DRBD's own
timers, at the moment corosync loses the peer, and they come back after `lab heal`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xenha_lab.sim.drbd import world as drbd_world
from xenha_lab.sim.lvm import world as lvm_world
from xenha_lab.sim.xen import hosts as xen_hosts


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


def _drbd_power_lost(node: DeadNode) -> None:
    """The node's advertisements leave the shared DRBD "network" (its peers see it gone)."""
    drbd_world.node_power_off(node.drbd_net, node=node.name, ips=set(node.addresses))


def _lvm_power_lost(node: DeadNode) -> None:
    """LVs the node had active are loop devices (global kernel objects): detached."""
    lvm_world.node_power_off(node.in_ram("/run/xenha-sim/lvm"), node=node.name)


def _xen_power_lost(node: DeadNode) -> None:
    """Guests are processes inside the node and die with it; their records go."""
    xen_hosts.node_power_off(node.in_ram("/run/xenha-sim/xl"), node=node.name)


POWER_LOST_HOOKS = (("drbd", _drbd_power_lost), ("lvm", _lvm_power_lost), ("xen", _xen_power_lost))


def power_lost(node: DeadNode, log) -> list[str]:
    """Run every hook; the names of those that ran to their end. A failing hook is
    logged, never stops the others."""
    applied = []
    for name, hook in POWER_LOST_HOOKS:
        try:
            hook(node)
            applied.append(name)
        except Exception as error:  # noqa: BLE001 - one simulator's bug must not block a power cut
            log(f"power-lost hook {name} for {node.name} failed: {error!r}")
    return applied
