"""Simulators of what this machine's kernel lacks (Xen today; DRBD and LVM activation later).

They follow the real tools' command lines, output formats, exit codes and error texts
(shared/reference/tools.md, the samples, and notes on xl's source), so that the agents
and the lab run the same commands against them as against the real thing. Guests are
real processes: killing one is a crash, SIGSTOP is a pause.
"""
