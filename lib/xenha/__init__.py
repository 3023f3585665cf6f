"""xenha: highly available Xen domains on DRBD-replicated LVM volumes, run by Pacemaker.

This package is the product, what `make install` puts on every cluster node. Its layers,
each importing only those below it:

    ocf/         the OCF 1.1 layer                         (standard library only)
    tools/       one driver per external tool              (standard library only)
    hypervisor/  domain records and states
    agents/      the OCF agents' decisions and actions     (standard library only)
    handlers/    programs DRBD runs
    cluster/     the cluster description
    render/      DRBD, xl and Pacemaker configuration from the description
    cli/         the operator command (click)

The simulators, the lab, the demo and the bench are development tooling, in the
sibling package `xenha_lab` (`make install-lab`); nothing here imports it.
"""

__version__ = "0.1.0"
