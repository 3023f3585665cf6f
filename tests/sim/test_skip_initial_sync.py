"""`new-current-uuid` in the simulated DRBD kernel beyond what test_drbdsetup_sim proves
(the skip on a connected new pair, the plain form refused, no second skip): the skipped
pair is usable as any UpToDate pair, what else the kernel refuses, a peer away (DRBD 9's
single-node bootstrap), --force-resync, the DRBD 8.4 path (drbdadm-84 -> drbdsetup-84),
and the skip with kernel processes as in the lab.

Facts from LINBIT's drbd_nl.c drbd_adm_new_c_uuid (9.0.0 to 9.2, and the 8.4 one in
Linux), read for facts only. The resync rate is slow (1 MiB/s for 16 MiB): a resync,
had one started, would still be running when the states are read, and the SyncTarget's
before-resync-target helper would be in its node's helper log.
"""

from __future__ import annotations

import pytest

from test_drbd_kernel import record, repl, synced, up_with_kernels, wired  # noqa: F401 - wired is a fixture
from test_drbdsetup_sim import DRBD84, drbd84_resource, new_world

JUST_CREATED = "0000000000000004"


@pytest.fixture
def world(tmp_path):
    w = new_world(tmp_path, resync_rate_kib=1024)
    try:
        yield w
    finally:
        w.cleanup()


def new_pair(world) -> None:
    world.write_config("r0", size_mib=16)
    world.up_all("r0")
    assert world.wait_for(lambda: all(states(world, n) == ("Inconsistent", "Established", "Inconsistent")
                                      for n in world.names), 10)


def current_uuid(world, name: str) -> str:
    return world.drbdsetup(name, "get-gi", "r0", str(1 - world.names.index(name)), "0").stdout.split(":")[0]


def states(world, name: str) -> tuple[str, str, str]:
    """(disk, replication, peer disk) of r0 on a node; every look advances its kernel."""
    ev = world.events(name, "r0")
    peer = ev["peer-device"][0] if ev.get("peer-device") else {}
    return ev["device"][0]["disk"], peer.get("replication", "Off"), peer.get("peer-disk", "DUnknown")


def resync_helpers(world, name: str) -> list[str]:
    return [line for line in world.helper_log(name) if "resync" in line]


def test_the_skipped_pair_is_usable_at_once_and_replicates(world):
    new_pair(world)
    done = world.drbdadm("alice", "new-current-uuid", "--clear-bitmap", "r0")    # the driver's argv
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    # on the node that ran it, before bob even looked: both disks UpToDate
    assert states(world, "alice") == ("UpToDate", "Established", "UpToDate")
    assert states(world, "bob") == ("UpToDate", "Established", "UpToDate")
    # drbdsetup(8) step 4: "Make one side primary and create a file system" - on either side
    assert world.drbdadm("bob", "primary", "r0").returncode == 0
    assert world.write("bob", "r0", 3, b"x" * 4096) == "ack"
    assert world.read("alice", "r0", 3) == b"x" * 4096
    assert world.drbdadm("bob", "secondary", "r0").returncode == 0
    for name in world.names:
        assert resync_helpers(world, name) == []


def test_refusals_change_nothing(world):
    new_pair(world)
    unknown = world.drbdsetup("alice", "new-current-uuid", "9", "--clear-bitmap")
    assert (unknown.returncode, unknown.stderr) == (10, "9: Failure: (127) Device minor not allocated\n")
    # a primary --force started the initial sync: bob is SyncTarget, not Established, and
    # its meta-data are still just created: refused all the same
    assert world.drbdadm("alice", "primary", "--force", "r0").returncode == 0
    assert world.wait_for(lambda: states(world, "bob")[1] == "SyncTarget", 10)
    refused = world.drbdsetup("bob", "new-current-uuid", "1", "--clear-bitmap")
    assert (refused.returncode, refused.stderr) == (10, "1: Failure: (151) Need to be StandAlone\n")
    assert states(world, "bob")[:2] == ("Inconsistent", "SyncTarget")
    assert current_uuid(world, "bob") == JUST_CREATED


def test_a_peer_away_is_not_skipped(world):
    """DRBD 9 with the peer disconnected: the command succeeds and this disk is UpToDate
    (drbd_nl.c sets D_UP_TO_DATE on every --clear-bitmap); the peer, still just created,
    gets a full sync when it connects."""
    new_pair(world)
    assert world.drbdadm("bob", "disconnect", "r0").returncode == 0
    assert states(world, "alice")[1] == "Off"
    done = world.drbdsetup("alice", "new-current-uuid", "1", "--clear-bitmap")
    assert (done.returncode, done.stderr) == (0, "")
    assert states(world, "alice")[0] == "UpToDate"
    assert current_uuid(world, "alice") != JUST_CREATED
    assert states(world, "bob")[0] == "Inconsistent" and current_uuid(world, "bob") == JUST_CREATED
    assert world.drbdadm("bob", "connect", "r0").returncode == 0
    assert world.wait_for(lambda: states(world, "bob")[:2] == ("Inconsistent", "SyncTarget"), 10)
    assert states(world, "alice")[1] == "SyncSource"


def test_force_resync_starts_the_initial_sync_from_here(world):
    new_pair(world)
    done = world.drbdadm("alice", "new-current-uuid", "--force-resync", "r0")
    assert done.returncode == 0, done.stderr
    assert states(world, "alice")[:2] == ("UpToDate", "SyncSource")
    assert world.wait_for(lambda: states(world, "bob")[:2] == ("Inconsistent", "SyncTarget"), 10)
    assert any("before-resync-target" in line for line in resync_helpers(world, "bob"))
    assert world.role("alice", "r0") == "Secondary"       # unlike primary --force, no promotion


def test_drbd84_clear_bitmap(world, tmp_path):
    conf = drbd84_resource(world, tmp_path)

    def adm(name, *args):
        return world.drbdadm(name, *args, config=conf, env=DRBD84)

    # the driver's argv (xenha.tools.drbd.Drbd.skip_initial_sync) through real drbdadm-84
    dry = adm("alice", "-d", "new-current-uuid", "--clear-bitmap", "r84")
    assert dry.stdout.splitlines() == ["drbdsetup-84 new-current-uuid 2 --clear-bitmap"]
    plain = adm("alice", "new-current-uuid", "r84")
    assert plain.returncode == 10 and "2: Failure: (151) Need to be StandAlone" in plain.stderr
    assert adm("bob", "dstate", "r84").stdout == "Inconsistent/Inconsistent\n"
    done = adm("alice", "new-current-uuid", "--clear-bitmap", "r84")
    assert done.returncode == 0, done.stderr
    for name in world.names:
        assert (adm(name, "cstate", "r84").stdout, adm(name, "dstate", "r84").stdout) == (
            "Connected\n", "UpToDate/UpToDate\n")
        assert resync_helpers(world, name) == []
    # 8.4 refuses also while only waiting for the peer (not StandAlone)
    assert adm("bob", "disconnect", "r84").returncode == 0
    assert adm("alice", "cstate", "r84").stdout == "WFConnection\n"
    waiting = adm("alice", "new-current-uuid", "r84")
    assert waiting.returncode == 10 and "2: Failure: (151) Need to be StandAlone" in waiting.stderr
    forced = world.drbdsetup("alice", "new-current-uuid", "2", "--force-resync", env=DRBD84)
    assert forced.returncode == 20 and "unrecognized option '--force-resync'" in forced.stderr


def test_drbd84_clear_bitmap_standalone_leaves_the_disk_state(world, tmp_path):
    """8.4 makes the disk UpToDate only when it skipped the peer's sync (DRBD 9 always)."""
    conf = drbd84_resource(world, tmp_path)

    def adm(name, *args):
        return world.drbdadm(name, *args, config=conf, env=DRBD84)

    assert adm("alice", "disconnect", "r84").returncode == 0
    assert adm("alice", "cstate", "r84").stdout == "StandAlone\n"
    done = adm("alice", "new-current-uuid", "--clear-bitmap", "r84")
    assert done.returncode == 0, done.stderr
    assert adm("alice", "dstate", "r84").stdout == "Inconsistent/DUnknown\n"


def test_with_kernel_processes_the_peer_takes_the_uuid_with_no_command_run_there(wired):  # noqa: F811 - the fixture
    """As in the lab: each node's kernel process moves it on; bob runs no command."""
    up_with_kernels(wired)
    assert wired.wait_for(lambda: repl(wired, "alice") == repl(wired, "bob") == "Established", 15)
    done = wired.drbdadm("alice", "new-current-uuid", "--clear-bitmap", "r0")
    assert done.returncode == 0, done.stderr
    seen = set()

    def both_up_to_date():
        seen.update(repl(wired, name) for name in wired.names)
        return synced(wired)
    assert wired.wait_for(both_up_to_date, 10, interval=0.1), (record(wired, "alice").dump(), record(wired, "bob").dump())
    assert seen == {"Established"}                     # no resync at any moment (4 MiB/s: it would show)
    assert [line for name in wired.names for line in wired.helper_log(name) if "resync" in line] == []
