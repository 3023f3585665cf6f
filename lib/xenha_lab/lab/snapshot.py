"""One look at a lab running VMs, for people: where each VM runs, each replica's DRBD
role, disk and connection, each guest's acknowledged writes — from the nodes' own
state (observe.py) — next to Pacemaker's placement; rendered as a rich table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xenha_lab.lab import observe


@dataclass
class VmLook:
    name: str
    resource: str
    replicas: tuple
    running: list = field(default_factory=list)       # nodes where its guest executes (the hypervisors' view)
    copies: dict = field(default_factory=dict)        # node -> ["name (state)", ...]: every domain of it
    pacemaker: tuple = ()                             # where Pacemaker has it
    drbd: dict = field(default_factory=dict)          # node -> observe.Drbd | None
    acknowledged: int = 0
    boots: int = 0


@dataclass
class Snapshot:
    power: dict                                        # node -> "on" | "off"
    online: list                                       # nodes online in Pacemaker's view
    standby: list
    vms: list

    def vm(self, name: str) -> VmLook:
        return next(v for v in self.vms if v.name == name)


def take(lab, vms) -> Snapshot:
    """`vms`: [(vm name, DRBD resource, replica nodes)]."""
    status = lab.cluster.status()
    powered = set(lab.powered())
    looks = []
    domains = {node: observe.domains(lab, node) if node in powered else [] for node in lab.nodes}
    for name, resource, replicas in vms:
        look = VmLook(name, resource, tuple(replicas))
        for node in lab.nodes:
            for domain in domains[node]:
                if domain.guest != name:
                    continue
                state = "running" if domain.running else "paused" if domain.paused else domain.status
                look.copies.setdefault(node, []).append(f"{domain.name} ({state})")
                if domain.running and domain.name == name:
                    look.running.append(node)
        look.pacemaker = status.located(name) if status else ()
        for node in replicas:
            look.drbd[node] = observe.drbd(lab, node, resource) if node in powered else None
        acks = observe.acknowledged(lab, name)
        look.acknowledged = len(acks)
        look.boots = len({ack.boot for ack in acks})
        looks.append(look)
    return Snapshot(power={node: "on" if node in powered else "off" for node in lab.nodes},
                    online=status.online() if status else [],
                    standby=[n.name for n in status.nodes.values() if n.standby] if status else [], vms=looks)


def table(snapshot: Snapshot, title: str = ""):
    """A rich Table: one row per VM and replica node."""
    from rich.table import Table

    grid = Table(title=title or None, title_justify="left", show_lines=False, header_style="bold")
    for column in ("VM", "node", "power", "cluster", "guest", "DRBD role", "disk", "connection", "acked writes"):
        grid.add_column(column, no_wrap=True, overflow="fold")
    for look in snapshot.vms:
        for index, node in enumerate(look.replicas):
            state = look.drbd.get(node)
            power = snapshot.power[node]
            cluster = "standby" if node in snapshot.standby else "online" if node in snapshot.online else "OFFLINE"
            if node in look.running:
                guest = "[green]running[/]"
            else:
                guest = f"[yellow]{', '.join(look.copies[node])}[/]" if look.copies.get(node) else "-"
            role = state.role if state else "-"
            disk = state.disk if state else "-"
            role_text = f"[bold]{role}[/]" if role == "Primary" else role
            disk_text = disk if disk in ("UpToDate", "-") else f"[yellow]{disk}[/]"
            grid.add_row(look.name if index == 0 else "", node, power if power == "on" else f"[red]{power}[/]",
                         cluster if cluster == "online" else f"[yellow]{cluster}[/]", guest, role_text, disk_text,
                         state.connection_text() if state else "-",
                         (f"{look.acknowledged}" + (f" ({look.boots} boots)" if look.boots > 1 else ""))
                         if index == 0 else "")
    return grid
