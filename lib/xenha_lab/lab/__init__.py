"""The lab: a real Pacemaker/Corosync cluster of nodes on this machine.

- backend.py    what a scenario needs from a node (the NodeBackend interface)
- namespace.py  nodes as namespaces on this machine (NamespaceLab), run by
- supervisor.py the host-side process: the lab network, the nodes, the power switch
- node_init.py  PID 1 of a namespace node (its file system view, corosync, pacemakerd)
- layout.py     the lab directory, corosync.conf, /etc/hosts, the pre-seeded CIB
- fence_agent.py fence_xenha_lab, the fence agent asking the power switch
- hooks.py      what the simulators do when a node loses power
- cluster.py    Pacemaker's view (crm_mon), bounded waits
- scenario.py   the scenario driver and its invariants, backend-agnostic

Kept empty of imports: the fence agent imports xenha_lab.lab.protocol on every call.
"""
