"""The process behind a simulated domain: a guest that keeps a little "memory".

argv: STATE_DIR DOMID [--paused]

The guest counts ticks and writes `boot_id` and `ticks` to `domains/<id>.mem`, so a live
migration that carries the memory over is visible (same boot_id, ticks keep growing) and
a restart is too (new boot_id, ticks from 0). A guest with a DRBD disk does disk I/O
when the environment gives it a log directory (`xenha_lab.sim.guest_io`): an increasing
sequence written through the simulated DRBD device of the node it runs on, its counter
(`io_seq`) and log (`io_log`) kept in the same memory. Signals play the hypervisor's requests:
SIGTERM is a shutdown request (ACPI or PV), SIGUSR1 a reboot request, SIGSTOP/SIGCONT
pause and unpause. How the guest answers a shutdown request comes from the host's
`guest-shutdown` fault: normally it powers off at once; `slow:N` takes N seconds;
`ignore` never does. Killing the process is a crash.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid

from xenha_lab.sim.xen.state import SIGSTOP, SimHost, read_kv, write_atomic, write_kv

TICK_SECONDS = 0.5


class Guest:
    def __init__(self, root: str, domid: int):
        self.host = SimHost(root)
        self.domid = domid
        self.mem_path = os.path.join(root, "domains", f"{domid}.mem")
        self.exit_path = os.path.join(root, "domains", f"{domid}.exit")
        self.cfg_path = os.path.join(root, "domains", f"{domid}.cfg")
        self.record_path = os.path.join(root, "domains", str(domid))
        self.memory = read_kv(self.mem_path)
        self.boot_id = self.memory.get("boot_id") or uuid.uuid4().hex
        self.ticks = int(self.memory.get("ticks") or 0)
        self.leaving = None

    def request(self, reason: str) -> None:
        behaviour = self.host.fault("guest-shutdown")
        if behaviour == "ignore":
            return
        delay = float(behaviour.split(":", 1)[1]) if behaviour.startswith("slow:") else 0.0
        self.leaving = (reason, time.monotonic() + delay)

    def save(self) -> None:
        self.memory.update(boot_id=self.boot_id, ticks=self.ticks)
        write_atomic(self.mem_path, "".join(f"{k}={v}\n" for k, v in self.memory.items()))

    def disk_io(self):
        """The guest's disk I/O (`guest_io.GuestDisk`, its helper started), or None."""
        try:
            with open(self.cfg_path, encoding="utf-8", errors="surrogateescape") as handle:
                config = handle.read()
        except OSError:
            return None
        if not (os.environ.get("XENHA_SIM_GUEST_IO") or self.memory.get("io_log")):
            return None
        from xenha_lab.sim.guest_io import GuestDisk

        disk = GuestDisk(self.memory, config, read_kv(self.record_path).get("name", ""), self.boot_id)
        if not disk.enabled:
            return None
        disk.start()
        return disk

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.request("poweroff"))
        signal.signal(signal.SIGUSR1, lambda *_: self.request("reboot"))
        # xl spawned us with these blocked; requests sent meanwhile are delivered now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGUSR1})
        self.save()
        disk = self.disk_io()
        next_io = time.monotonic()
        next_tick = next_io + TICK_SECONDS
        while True:
            if self.leaving and time.monotonic() >= self.leaving[1]:
                write_kv(self.exit_path, {"reason": self.leaving[0]})
                return 0
            if disk is not None and time.monotonic() >= next_io:
                try:
                    disk.step(self.save)
                except OSError:
                    return 1  # the host's state is gone (cleanup), or the I/O helper died
                next_io = time.monotonic() + disk.interval
            wake = min(next_tick, next_io) if disk is not None else next_tick
            time.sleep(max(0.0, wake - time.monotonic()))
            if time.monotonic() >= next_tick:
                next_tick += TICK_SECONDS
                self.ticks += 1
                try:
                    self.save()
                except OSError:
                    return 1  # the host's state is gone (cleanup): the guest dies with it


def main() -> int:
    root, domid = sys.argv[1], int(sys.argv[2])
    if "--paused" in sys.argv[3:]:
        os.kill(os.getpid(), SIGSTOP)
    return Guest(root, domid).run()


if __name__ == "__main__":
    sys.exit(main())
