"""`make bench`, real-kernel part: what a live migration and a failover cost on real Xen
4.17 and DRBD 8.4 (two QEMU/Xen dom0 nodes, the lab's description, its PV guest writing).

Three measurements on the same nodes, one after the other:
- Pacemaker live-migrates the guest (`crm_resource --move`): wall time from the request
  to the guest running on the target (by `xl list`), the agent's migrate_to and
  migrate_from (their exec-time in the CIB), and the guest's pause (the longest gap
  between two acknowledged writes);
- the same `xl migrate` by hand (the agent's transport, the resource unmanaged
  meanwhile): wall time and pause, so the difference is what the cluster adds;
- a power cut of the guest's node: time until the fence agent's request, until the
  guest runs on the survivor, until its first acknowledged write there.

Emulated nodes are several times slower than hardware and the machine may be shared, so
the figures are for comparing the two migrations with each other, not with hardware;
nothing here asserts. Runs only where the real tier can (xenha_lab.realkernel.backend.
missing_prerequisites), else says why and returns.
"""

from __future__ import annotations

import sys
import tempfile
import time
import xml.etree.ElementTree as ET

from xenha_lab.lab.backend import LabError
from xenha_lab.realkernel import provision
from xenha_lab.realkernel.backend import QemuLab, missing_prerequisites
from xenha_lab.realkernel.guest import WriteLog, running, xl_domains

VM = "guest1"
TRANSPORT = "ssh -o BatchMode=yes -o ConnectTimeout=10"      # the agent's default


def where(lab) -> str | None:
    found = [n for n in lab.nodes if running((xl_domains(lab, n) or {}).get(VM, ""))]
    return found[0] if len(found) == 1 else None


def wait(what: str, predicate, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return value


def exec_seconds(lab, node: str, operation: str) -> float | None:
    """The last `operation` of the guest's resource recorded in the CIB: its exec-time (s)."""
    result = lab.run(node, ["cibadmin", "--query", "--xpath",
                            f"//lrm_resource[@id='{VM}']/lrm_rsc_op[@operation='{operation}']"], timeout=60)
    if not result.ok:
        return None
    root = ET.fromstring(f"<x>{result.stdout}</x>")
    times = [int(op.get("exec-time", "0")) for op in root.iter("lrm_rsc_op")]
    return max(times) / 1000 if times else None


def run(say) -> list[tuple[str, float | None]]:
    rows: list[tuple[str, float | None]] = []
    directory = tempfile.mkdtemp(prefix="xenha-bench-real-")
    lab = QemuLab.from_description(directory, provision.default_description(), lifetime_s=3600)
    log = None
    try:
        started = time.monotonic()
        lab.up(progress=lambda m: say(f"lab: {m}"))
        provision.provision(lab, say=lambda m: say(f"provision: {m}"))
        log = WriteLog(lab.lay.share, VM).start()
        source = wait("the guest running", lambda: where(lab), 600, 3.0)
        log.wait_acks(10, timeout=300)
        rows.append(("lab up, provisioned, guest writing", time.monotonic() - started))
        first = lab.powered()[0]
        target = next(n for n in lab.nodes if n != source)

        say(f"Pacemaker live migration {source} -> {target}")
        begin = time.time()
        lab.check(first, ["crm_resource", "--move", "--resource", VM, "--node", target], timeout=120)
        wait(f"the guest on {target}", lambda: where(lab) == target, 900, 1.0)
        end = time.time()
        log.wait_acks(3, timeout=120)
        lab.check(first, ["crm_resource", "--clear", "--resource", VM], timeout=120)
        lab.check(first, ["crm_resource", "--wait", "--timeout=600s"], timeout=660)
        rows += [("Pacemaker: crm_resource --move -> guest running on the target", end - begin),
                 ("  the agent's migrate_to (CIB exec-time)", exec_seconds(lab, first, "migrate_to")),
                 ("  the agent's migrate_from (CIB exec-time)", exec_seconds(lab, first, "migrate_from")),
                 ("  guest pause (longest gap between acknowledged writes)", log.longest_gap(begin, end))]

        say(f"xl migrate by hand {target} -> {source}")
        lab.check(first, ["crm_resource", "--resource", VM, "--meta", "--set-parameter", "is-managed",
                          "--parameter-value", "false"], timeout=120)
        begin = time.time()
        result = lab.check(target, ["xl", "migrate", "-s", TRANSPORT, VM, source], timeout=900)
        end = time.time()
        log.wait_acks(3, timeout=120)
        rows += [("by hand: xl migrate (same nodes, same transport)", result.seconds),
                 ("  guest pause (longest gap between acknowledged writes)", log.longest_gap(begin, end))]
        lab.check(first, ["crm_resource", "--resource", VM, "--meta", "--delete-parameter", "is-managed"],
                  timeout=120)
        lab.check(first, ["crm_resource", "--refresh", "--resource", VM], timeout=120)
        lab.check(first, ["crm_resource", "--wait", "--timeout=600s"], timeout=660)

        holder = wait("the guest running", lambda: where(lab), 300, 3.0)
        survivor = next(n for n in lab.nodes if n != holder)
        say(f"power cut of {holder}")
        cut = time.time()
        lab.power(holder, "off")
        wait("fencing", lambda: any(e["node"] == holder and e["by"].startswith("fence-agent")
                                    for e in lab.events()), 300, 0.5)
        fenced = time.time()
        wait(f"the guest on {survivor}", lambda: where(lab) == survivor, 600, 1.0)
        restarted = time.time()
        log.wait_acks(1, timeout=300, since=cut)
        rows += [("power cut -> fence agent's request at the host", fenced - cut),
                 ("power cut -> guest running on the survivor", restarted - cut),
                 ("power cut -> its first acknowledged write", time.time() - cut)]
    finally:
        if log is not None:
            log.stop()
        lab.down()
    return rows


def report(out=sys.stdout) -> int:
    problems = missing_prerequisites(2)
    if problems:
        print(f"real-kernel bench: not run here: {'; '.join(problems)}", file=out)
        return 0

    def say(message: str) -> None:
        print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)
    try:
        rows = run(say)
    except LabError as error:
        print(f"real-kernel bench: failed: {error}", file=out)
        return 1
    print("real-kernel bench: Xen 4.17 PV dom0s in QEMU (TCG), DRBD 8.4, the lab's PV guest (96 MiB) writing",
          file=out)
    for name, seconds in rows:
        print(f"{name:62} {'-' if seconds is None else f'{seconds:8.1f} s'}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(report())
