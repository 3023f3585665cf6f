"""xenha_lab: xenha's development tooling, packaged apart from the product.

What runs on a cluster node is the `xenha` package (agents, drivers, handlers,
renderers, the operator CLI), installed by `make install`. This package holds what
proves it: the simulators of what this machine's kernel lacks (`sim.xen`, `sim.drbd`,
`sim.lvm`, each with its world), the harness that runs an agent as pacemaker-execd
does, the demo and the benchmarks. `make install-lab` installs it in a directory of its
own, which no agent has on its import path.

It may import `xenha`; `xenha` never imports it (the `xenha` launcher adds the lab's
commands, such as `demo`, when the lab is installed; tests/test_import_graph.py checks).
"""
