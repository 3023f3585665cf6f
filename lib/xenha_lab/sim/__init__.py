"""Simulators of what this machine's kernel lacks, one sub-package per simulated tool:

    xen/    the xl toolstack (guests are real processes: killing one is a crash,
            SIGSTOP is a pause; live migration over a transport)
    drbd/   the DRBD kernel behind the real drbdadm and drbdmeta
    lvm/    LVM activation and device-mapper behind the real lvm2

They follow the real tools' command lines, output formats, exit codes and error texts
(shared/reference/tools.md, the samples, and notes on the tools' sources), so that the
agents and the lab run the same commands against them as against the real thing. Each
sub-package has its front ends (the installed tools' main()), the modules they share
below them, and its world (the test API that builds a simulated environment: `SimHosts`
in xen/hosts.py, `DrbdWorld` in drbd/world.py, `LvmWorld` in lvm/world.py).
`holders` is the block-device holders registry DRBD writes and LVM reads; `procs`
what a recorded pid still means (start time, pid namespace); `guest_io`
the simulated guests' disk I/O through DRBD, its log of acknowledged writes and the
checks made on it (nothing acknowledged lost, the pause of a live migration).

In the lab, time passes on its own: each node runs the DRBD kernel process
(`drbd/kernel.py`, `xenha-sim-drbd-kernel`), whose TCP links decide when DRBD
connections drop and come back; a power cut reaches each world through its
`node_power_off` (drbd/world.py, lvm/world.py, xen/hosts.py).
"""
