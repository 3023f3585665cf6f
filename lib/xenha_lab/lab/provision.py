"""A lab provisioned from its cluster description by the product's own provisioner
(xenha.provision), through the lab's transport (the backend's `run`: a command inside a
node, as ssh would run it on a real one).

The description is rendered as it is, except for fencing: the lab's nodes have no IPMI,
so every node's fence device is the lab's power switch (fence_xenha_lab with plug=NODE)
in place of the description's agent; once those devices exist, the lab's own device
(lab-fence, in the seeded CIB so that the empty cluster could fence) is removed.
Numbers the description leaves to allocation are allocated in memory (the allocation
file next to the description is read, never written).
"""

from __future__ import annotations

import dataclasses

from xenha.cluster import allocation
from xenha.cluster.description import DescriptionError, Fencing, load
from xenha.provision.cluster import ProvisionError, Provisioner
from xenha.render.files import render_all
from xenha_lab.lab import layout as L
from xenha_lab.lab.backend import LabError


def lab_description(description):
    """The description with the lab's power switch as every node's fence device."""
    if description.test_cluster:
        return description
    fencing = Fencing(agent=L.FENCE_AGENT, options={},
                      devices={node.name: {"plug": node.name} for node in description.nodes})
    return dataclasses.replace(description, fencing=fencing)


def rendering(path: str):
    """(description as the lab uses it, slots, rendered files), or LabError."""
    try:
        description = lab_description(load(path))
        slots, _added = allocation.allocate(description, allocation.read(allocation.allocation_path(path)))
        return description, slots, render_all(description, slots)
    except DescriptionError as error:
        raise LabError(f"{path}: " + "; ".join(error.problems)) from None


def provision(lab, path: str, vms=None, progress=None, wait_started: float | None = 120.0):
    """Provision the lab's nodes from the description at `path` (all VMs, or those
    named); then, with `wait_started`, wait until every VM runs. The provisioner's
    Report; LabError when a step fails or is refused."""
    description, slots, files = rendering(path)
    missing = sorted({node.name for node in description.nodes} - set(lab.nodes))
    if missing:
        raise LabError(f"{path}: nodes {', '.join(missing)} are not in this lab")
    provisioner = Provisioner(lab, description, slots, files, vms=vms, progress=progress)
    try:
        report = provisioner.run()
    except ProvisionError as error:
        raise LabError(f"provisioning failed: {error}") from None
    if not description.test_cluster:
        node = lab.cluster.any_node()
        if lab.run(node, ["cibadmin", "--query", "--xpath", f"//primitive[@id='{L.FENCE_DEVICE}']"]).ok:
            lab.check(node, ["pcs", "stonith", "delete", L.FENCE_DEVICE])
    if wait_started:
        for vm in description.vms:
            if vms is None or vm.name in vms:
                lab.cluster.wait_started(vm.name, timeout=wait_started)
    return report
