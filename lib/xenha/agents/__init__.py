"""The OCF resource agents of provider `xenha`, registered once.

`AGENTS` is the one list: `make install` writes a launcher for each entry (from
agents/agent.in), the Pacemaker renderer reads each agent's advertised actions through
it, and the tests iterate over it. Every launcher imports this package first, so it
stays a plain dictionary: nothing is imported until `agent_class` is asked.
"""

# agent type (ocf:xenha:<type>) -> (module, class); each module also has main()
AGENTS = {
    "xen-domain": ("xenha.agents.xen_domain", "XenDomainAgent"),
    "lvm-volume": ("xenha.agents.lvm_volume", "LvmVolumeAgent"),
    "drbd-resource": ("xenha.agents.drbd_resource", "DrbdResourceAgent"),
}


def agent_class(agent_type: str):
    """The ResourceAgent subclass of an agent type; KeyError for an unknown one."""
    from importlib import import_module

    module, name = AGENTS[agent_type]
    return getattr(import_module(module), name)
