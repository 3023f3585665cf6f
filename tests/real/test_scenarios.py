"""The lab's scenarios on the real-kernel tier: Xen 4.17 dom0s in QEMU, the kernel's DRBD
8.4, device-mapper/LVM, Pacemaker/Corosync, the installed xenha agents; a PV guest whose
disk is the DRBD device writes an acknowledged sequence. One cluster for the module, the
scenarios in order (each starts where the previous left the guest):

    first start -> live migration by `pcs resource move` -> drain by standby (and back
    online) -> a migration that fails on the target -> power cut of the guest's node,
    fenced, the guest restarted on the survivor with every acknowledged write.

Invariants sampled throughout each scenario, from the nodes' own state: the domain runs
(by `xl list`) on at most one node; DRBD is never Primary on data that is not UpToDate.
`make test-real-ci` runs the first, the live migration and the power cut.
"""

from __future__ import annotations

import time

from real_support import VM, record, say
from real_support import cluster  # noqa: F401 - a fixture (the tests below take it: F811)

PCS_TIMEOUT = 900          # pcs costs 10-12 s a call in an idle emulated node, minutes in a busy one; `move` waits
POLL = 3.0                 # between two looks at both nodes' `xl list` (each costs the nodes CPU)


def _drbd_promoted_everywhere(real) -> bool:
    states = [real.drbd(node) for node in real.lab.nodes]
    return all(s.get("role") == "Primary" and s.get("disk") == "UpToDate" and s.get("peer_disk") == "UpToDate"
               and s.get("cs") == "Connected" for s in states)


def test_first_start(cluster):  # noqa: F811 - the fixture
    """The guest starts on its preferred node; DRBD Promoted (Primary) on both replicas,
    UpToDate/UpToDate; the guest's writes are acknowledged."""
    started = time.monotonic()
    with cluster.scenario("first start") as sc:
        sc.wait_until("guest1 running on n1 (its preferred node)", lambda: cluster.running_on() == "n1",
                      timeout=300, interval=POLL)
        record("first start: CIB applied -> guest running (xl)", time.monotonic() - started)
        sc.wait_until("DRBD Primary/Primary, UpToDate/UpToDate, Connected", lambda: _drbd_promoted_everywhere(cluster),
                      timeout=120, interval=POLL)
        cluster.log.wait_acks(10, timeout=180)
        record("first start: CIB applied -> 10 acknowledged writes", time.monotonic() - started)
        status = cluster.status()
        sc.check("Pacemaker sees guest1 on n1", status.located(VM) == ("n1",))
        sc.check("one boot of the guest", len(cluster.guest_boots()) == 1)


def test_live_migration_by_pcs_resource_move(cluster):  # noqa: F811 - the fixture
    """`pcs resource move` live-migrates the running guest with a real `xl migrate`
    (migrate_to on the source, migrate_from on the target): same boot (its memory moved),
    its writes continue, the temporary constraint is gone afterwards."""
    source = cluster.running_on()
    assert source, f"guest1 is not running on exactly one node: {cluster.domains()}"
    target = next(n for n in cluster.lab.nodes if n != source)
    boots = cluster.guest_boots()
    with cluster.scenario("live migration") as sc:
        begin = time.time()
        sc.pcs("resource", "move", VM, target, node=source, timeout=PCS_TIMEOUT)
        sc.wait_until(f"guest1 running on {target}", lambda: cluster.running_on() == target, timeout=120, interval=POLL)
        end = time.time()
        cluster.log.wait_acks(10, timeout=120)
        record("pcs resource move -> guest running on the target", end - begin)
        record("live migration: the agent's migrate_to (xl migrate), CIB exec-time", cluster.exec_seconds("migrate_to"))
        record("live migration: the agent's migrate_from, CIB exec-time", cluster.exec_seconds("migrate_from"))
        pause = record("live migration: guest's longest pause between acknowledged writes",
                       cluster.log.longest_gap(begin, end))
        say(f"guest pause during the migration: {pause:.1f} s")
        sc.check("migrate_to ran on the source", cluster.pacemaker_log(
            source, f"Result of migrate_to operation for {VM} on {source}: ok"))
        sc.check("migrate_from ran on the target", cluster.pacemaker_log(
            target, f"Result of migrate_from operation for {VM} on {target}: ok"))
        sc.check("no new boot of the guest (a live migration)", cluster.guest_boots() == boots)
        sc.check("writes acknowledged on the target with the same boot",
                 {tag for _t, _n, tag in cluster.acks_since(end)} == {boots[-1]})
        sc.check("the move's constraint is cleared", not [c for c in cluster.location_constraints()
                                                          if c.startswith(("cli-prefer", "cli-ban"))])


def test_drain_by_standby(cluster):  # noqa: F811 - the fixture
    """`pcs node standby` drains the guest's node by live migration; `unstandby` brings it
    back without moving the guest back (stickiness); DRBD resyncs the returning replica and
    promotes it only once UpToDate."""
    source = cluster.running_on()
    assert source, f"guest1 is not running on exactly one node: {cluster.domains()}"
    target = next(n for n in cluster.lab.nodes if n != source)
    boots = cluster.guest_boots()
    migrations = len(cluster.pacemaker_log(target, f"Result of migrate_from operation for {VM} on {target}: ok"))
    with cluster.scenario("drain by standby") as sc:
        begin = time.time()
        sc.pcs("node", "standby", source, node=target, timeout=PCS_TIMEOUT)
        try:
            sc.wait_until(f"guest1 running on {target}", lambda: cluster.running_on() == target, timeout=300,
                          interval=POLL)
            record("pcs node standby -> guest running on the other node", time.time() - begin)
            # xl shows the guest on the target as soon as migrate_to's `xl migrate` ends; the
            # target's migrate_from (the live migration's second half) is logged a moment later
            sc.wait_until("the drain was a live migration (migrate_from ok on the target)", lambda: len(
                cluster.pacemaker_log(target, f"Result of migrate_from operation for {VM} on {target}: ok"))
                == migrations + 1, timeout=120, interval=POLL)
            sc.check("no new boot of the guest", cluster.guest_boots() == boots)
            sc.wait_idle(timeout=300)
        finally:   # the next scenarios need both nodes, whatever happened here
            back = time.time()
            sc.pcs("node", "unstandby", source, node=target, timeout=PCS_TIMEOUT)
        sc.wait_until("DRBD Primary/Primary, UpToDate/UpToDate again (the returning replica resynced)",
                      lambda: _drbd_promoted_everywhere(cluster), timeout=300, interval=POLL)
        sc.wait_idle(timeout=300)
        record("pcs node unstandby -> both replicas Promoted again", time.time() - back)
        sc.check(f"guest1 stays on {target} (no unrequested move back)", cluster.running_on() == target)
        cluster.log.wait_acks(5, timeout=60)


def test_failed_migration(cluster):  # noqa: F811 - the fixture
    """A migration that the target cannot complete (its guest bridge is gone: the vif
    cannot be plugged when `xl migrate-receive` builds the domain): the guest never runs
    on two nodes, ends on exactly one with every acknowledged write, and the failure is
    reported with its reason."""
    source = cluster.running_on()
    assert source, f"guest1 is not running on exactly one node: {cluster.domains()}"
    target = next(n for n in cluster.lab.nodes if n != source)
    with cluster.scenario("failed migration") as sc:
        sc.run(target, "ip", "link", "del", "xenbr0")
        try:
            before = cluster.log.acknowledged()
            sc.crm("crm_resource", "--move", "--resource", VM, "--node", target, node=source)
            sc.wait_until("migrate_to failed on the source", lambda: cluster.pacemaker_log(
                source, f"Result of migrate_to operation for {VM} on {source}: error"), timeout=300, interval=POLL)
            reason = cluster.pacemaker_log(source, f"{VM} migrate_to")
            say(f"migrate_to's failure: {reason[-1][-300:] if reason else '?'}")
            sc.wait_until("guest1 running on exactly one node", cluster.running_on, timeout=300, interval=POLL)
            sc.wait_idle(timeout=300)
            where = cluster.running_on()
            sc.check("guest1 runs on exactly one node after the failure", where is not None)
            cluster.log.wait_acks(5, timeout=120)
            sc.check("every write acknowledged before the failure is on the disk",
                     not cluster.writes_intact(where, before))
        finally:   # the target repaired, the move forgotten, the failures cleaned up
            sc.run(target, "sh", "-c", "ip link add xenbr0 type bridge && ip addr add 10.98.0.1/24 dev xenbr0 && "
                                       "ip link set xenbr0 up")
            sc.crm("crm_resource", "--clear", "--resource", VM, node=source)
            sc.crm("crm_resource", "--cleanup", "--resource", VM, node=source)
        sc.wait_idle(timeout=300)
        sc.check("guest1 still runs on exactly one node", cluster.running_on() is not None)
        say(f"after the failed migration the guest runs on {cluster.running_on()} "
            f"(boots so far: {len(cluster.log.boots)})")


def test_power_cut_failover(cluster):  # noqa: F811 - the fixture
    """A power cut of the guest's node: fenced through the host (QMP), the guest restarted
    on the survivor, every acknowledged write on its disk; the fenced node reboots, rejoins
    and its DRBD replica resyncs."""
    holder = cluster.running_on()
    assert holder, f"guest1 is not running on exactly one node: {cluster.domains()}"
    survivor = next(n for n in cluster.lab.nodes if n != holder)
    with cluster.scenario("power cut") as sc:
        cluster.log.wait_acks(5, timeout=60)
        sc.power("off", holder)
        cut = time.time()
        acknowledged = cluster.log.acknowledged()      # nothing after the cut can be acknowledged
        boots = len(cluster.log.boots)
        sc.wait_until(f"{holder} fenced", lambda: any(
            e["what"] in ("off", "on") and e["node"] == holder and e["by"].startswith("fence-agent")
            for e in cluster.lab.events()), timeout=120)
        record("power cut -> fenced (the fence agent's request reached the host)", time.time() - cut)
        sc.wait_until(f"guest1 running on {survivor}", lambda: cluster.running_on() == survivor, timeout=300, interval=POLL)
        record("power cut -> guest running on the survivor (xl)", time.time() - cut)
        cluster.log.wait_acks(3, timeout=180, since=cut)
        record("power cut -> the restarted guest's first acknowledged writes", time.time() - cut)
        sc.check("the guest booted again on the survivor", len(cluster.log.boots) == boots + 1)
        resumed = cluster.log.resumes[-1]
        sc.check(f"the guest resumed after its last acknowledged write ({max(acknowledged)})",
                 resumed[2] is not None and resumed[2] >= max(acknowledged))
        lost = cluster.writes_intact(survivor, acknowledged)
        sc.check(f"every acknowledged write ({len(acknowledged)}) on the survivor's disk: {lost[:5]}", not lost)
        status = cluster.status(survivor)
        sc.check("the fencing is in Pacemaker's history", any(
            f.get("target") == holder and f.get("status") == "success" for f in status.fencing))
        back = time.time()
        cluster.lab.cluster.wait_online(cluster.lab.nodes, timeout=300)
        sc.wait_until("DRBD Primary/Primary, UpToDate/UpToDate again", lambda: _drbd_promoted_everywhere(cluster),
                      timeout=300, interval=POLL)
        record("fenced node rebooted -> online, DRBD resynced and Promoted", time.time() - back)
        sc.check(f"guest1 stays on {survivor}", cluster.running_on() == survivor)
