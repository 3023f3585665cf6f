"""The simulated DRBD kernel behind real drbdadm 9.22: formats, exit codes, state machine,
and the data path (no acknowledged write is lost across disconnects, failover, resync).

Every test that involves drbdadm runs the real /usr/sbin/drbdadm inside a network
namespace per node (drbdadm checks the node's address), with the staged simulated
drbdsetup first on PATH. Worlds clean up namespaces, loop devices and helper processes
even when a test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import installed, need_root, need_tool, sample
from xenha_lab.sim.drbd.world import DrbdWorld, default_simbindir

NODES = {"alice": "10.99.0.1", "bob": "10.99.0.2"}
LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lib")


def shared_sample(name: str) -> str:
    """A verbatim sample (tests/samples: copies of shared/samples, checked to match)."""
    return sample(name)


def new_world(tmp_path, **options) -> DrbdWorld:
    """alice and bob (the caller cleans up), once the prerequisites are there."""
    need_root()
    need_tool("ip")
    need_tool("losetup")
    need_tool("drbdadm")
    installed(os.path.join(default_simbindir(), "drbdsetup"))
    return DrbdWorld(tmp_path / "drbd", NODES, **options)


@pytest.fixture
def world(tmp_path):
    w = new_world(tmp_path)
    try:
        yield w
    finally:
        w.cleanup()


def handler(tmp_path, name: str, rc: int = 7, sleep: float = 0.0) -> str:
    """A fence/unfence handler that records its environment and exits with rc."""
    path = tmp_path / f"{name}.sh"
    path.write_text(f"#!/bin/sh\nenv | sort > {tmp_path}/{name}-$$.env\nsleep {sleep}\n"
                    f"exit $(cat {tmp_path}/{name}.rc 2>/dev/null || echo {rc})\n")
    path.chmod(0o755)
    return str(path)


def handler_envs(tmp_path, name: str) -> list[dict]:
    envs = []
    for entry in sorted(tmp_path.glob(f"{name}-*.env")):
        envs.append(dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line))
    return envs


def up_pair(world, tmp_path, net=None, fence_rc=7, fence_sleep=0.0):
    fence = handler(tmp_path, "fence", fence_rc, fence_sleep)
    unfence = handler(tmp_path, "unfence", 0)
    world.write_config("r0", net=net, handlers=f'fence-peer "{fence}"; unfence-peer "{unfence}";', size_mib=16)
    world.up_all("r0")
    return fence


def synced_pair(world, tmp_path, **kw):
    up_pair(world, tmp_path, **kw)
    world.drbdadm("alice", "primary", "--force", "r0", check=True)
    assert world.wait_sync("r0")


def block(tag: str) -> bytes:
    return tag.encode().ljust(4096, b".")


# --- formats and exit codes without anything configured ----------------------------------------
def test_nothing_configured(world):
    status = world.drbdsetup("alice", "status")
    assert (status.returncode, status.stdout) == (0, "# No currently configured DRBD found.\n")
    assert world.drbdsetup("alice", "status", "--json").stdout.split() == ["[", "]"]
    assert world.drbdsetup("alice", "events2", "--now", "all").stdout == "exists -\n"
    assert world.drbdsetup("alice", "show").stdout == "# No currently configured DRBD found.\n"
    role = world.drbdsetup("alice", "role", "r9")
    assert (role.returncode, role.stderr) == (10, "r9: No such resource\n")
    cstate = world.drbdsetup("alice", "cstate", "r9", "1")
    assert (cstate.returncode, cstate.stderr) == (10, "r9: No such connection\n")
    dstate = world.drbdsetup("alice", "dstate", "7")
    assert (dstate.returncode, dstate.stderr) == (10, "7: No such device\n")
    primary = world.drbdsetup("alice", "primary", "r9")
    assert (primary.returncode, primary.stderr) == (10, "r9: Failure: (158) Unknown resource\n")
    assert world.drbdsetup("alice", "down", "r9").returncode == 0
    absent = world.drbdsetup("alice", "status", env={"XENHA_SIM_DRBD_MODULE": "absent"})
    assert (absent.returncode, absent.stderr) == (20, "Failed to modprobe drbd (No such file or directory)\n")


def test_attach_without_metadata_fails_like_the_kernel(world):
    world.write_config("r0", size_mib=16)
    up = world.drbdadm("alice", "up", "r0")
    # real drbdmeta's apply-al refuses first; the kernel would refuse the attach too
    assert up.returncode != 0 and "No valid meta data found" in up.stderr
    assert world.drbdsetup("alice", "dstate", "1").stdout == "Diskless/DUnknown\n"
    disk = world.loops["alice"][0][0]
    attach = world.drbdsetup("alice", "attach", "1", disk, disk, "internal")
    assert attach.returncode == 10
    assert attach.stderr == ("1: Failure: (119) No valid meta-data signature found.\n\n"
                             "\t==> Use 'drbdadm create-md res' to initialize meta-data area. <==\n\n")
    missing = world.drbdsetup("alice", "attach", "1", "/dev/nonexistent", "/dev/nonexistent", "internal")
    assert (missing.returncode, missing.stderr) == (10, "1: Failure: (104) Can not open backing device.\n")


def test_up_status_events_and_json_match_the_real_formats(world, tmp_path):
    up_pair(world, tmp_path)
    # events2 --now: the keys of drbdsetup 9.22 (golden v9.22 tests, samples/drbd_12*)
    golden = {}
    for line in shared_sample("drbd_12_upstream_golden_outputs.txt").splitlines():
        words = line.split()
        if len(words) > 2 and words[0] in ("create", "exists") and words[1] != "-" and ":" in words[2]:
            golden.setdefault(words[1], [w.split(":", 1)[0] for w in words[2:]])
    now = world.drbdsetup("alice", "events2", "--now", "r0")
    assert now.returncode == 0 and now.stdout.endswith("exists -\n")
    seen = {}
    for line in now.stdout.splitlines()[:-1]:
        words = line.split()
        assert words[0] == "exists"
        seen[words[1]] = [w.split(":", 1)[0] for w in words[2:]]
    for kind in ("resource", "device", "connection", "peer-device", "path"):
        assert seen[kind] == golden[kind], kind
    ev = world.events("alice", "r0")
    assert ev["connection"][0]["connection"] == "Connected" and ev["connection"][0]["conn-name"] == "bob"
    assert ev["device"][0]["disk"] == "Inconsistent" and ev["peer-device"][0]["peer-disk"] == "Inconsistent"
    assert ev["path"][0] == {"name": "r0", "peer-node-id": "1", "conn-name": "bob",
                             "local": "ipv4:10.99.0.1:7789", "peer": "ipv4:10.99.0.2:7789", "established": "yes"}
    # --statistics adds the fields in the golden order
    stats = world.drbdsetup("alice", "events2", "--now", "--statistics", "r0").stdout
    assert "force-io-failures:no write-ordering:flush may_promote:no promotion_score:0" in stats
    assert " size:16344 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 " \
           "al-suspended:no blocked:no" in stats
    # status --json has the keys of the sample (and the 9.22 additions)
    data = json.loads(world.drbdsetup("alice", "status", "--json", "r0").stdout)
    sample = json.loads(shared_sample("drbd9_status_json.txt").split("\n\n", 1)[1])[0]
    assert set(sample) <= set(data[0])
    assert set(sample["devices"][0]) <= set(data[0]["devices"][0])
    assert set(sample["connections"][0]) <= set(data[0]["connections"][0])
    assert set(sample["connections"][0]["peer_devices"][0]) <= set(data[0]["connections"][0]["peer_devices"][0])
    assert data[0]["role"] == "Secondary" and data[0]["node-id"] == 0
    assert data[0]["connections"][0]["connection-state"] == "Connected"
    # text status, as drbdadm status shows it (samples/drbd9_status_text.txt (C))
    text = world.drbdadm("alice", "status", "r0").stdout
    assert text == "r0 role:Secondary\n  disk:Inconsistent\n  bob role:Secondary\n    peer-disk:Inconsistent\n\n"
    assert world.drbdadm("alice", "role", "r0").stdout == "Secondary\n"
    assert world.drbdadm("alice", "cstate", "r0").stdout == "Connected\n"
    assert world.drbdadm("alice", "dstate", "r0").stdout == "Inconsistent/Inconsistent\n"


def test_initial_sync_progress_and_promotion_rules(world, tmp_path):
    world.rate = 2048                      # KiB/s: 16 MiB take about 8 s
    up_pair(world, tmp_path)
    refused = world.drbdadm("alice", "primary", "r0")
    assert refused.returncode == 17
    assert "r0: State change failed: (-2) Need access to UpToDate data" in refused.stderr
    assert world.drbdadm("alice", "primary", "--force", "r0").returncode == 0
    time.sleep(1.2)
    ev_a, ev_b = world.events("alice", "r0"), world.events("bob", "r0")
    assert ev_a["peer-device"][0]["replication"] == "SyncSource"
    assert ev_b["peer-device"][0]["replication"] == "SyncTarget"
    assert ev_b["device"][0]["disk"] == "Inconsistent" and ev_a["peer-device"][0]["peer-disk"] == "Inconsistent"
    done = float(ev_a["peer-device"][0]["done"])
    assert 5.0 < done < 60.0
    data = json.loads(world.drbdsetup("bob", "status", "--json", "r0").stdout)
    pd = data[0]["connections"][0]["peer_devices"][0]
    assert pd["replication-state"] == "SyncTarget" and pd["has-sync-details"] is True
    assert 0 < pd["estimated-seconds-to-finish"] < 9 and pd["percent-resync-done"] > done - 1
    assert pd["out-of-sync"] > 0
    text = world.drbdsetup("alice", "status", "r0").stdout
    assert "replication:SyncSource peer-disk:Inconsistent done:" in text
    # a SyncTarget may be promoted: it has access to UpToDate data through its peer
    assert world.drbdadm("bob", "primary", "r0").returncode == 0
    assert world.drbdadm("bob", "secondary", "r0").returncode == 0
    world.rate = None
    assert world.wait_sync("r0", timeout=15)
    assert world.drbdadm("bob", "dstate", "r0").stdout == "UpToDate/UpToDate\n"


def test_two_primaries_rule(world, tmp_path):
    synced_pair(world, tmp_path, net="protocol C; fencing resource-and-stonith;")
    second = world.drbdadm("bob", "primary", "r0")
    assert second.returncode == 11
    assert "r0: State change failed: (-1) Multiple primaries not allowed by config" in second.stderr
    assert world.drbdsetup("alice", "net-options", "r0", "1", "--allow-two-primaries=yes").returncode == 0
    assert world.drbdsetup("bob", "net-options", "r0", "0", "--allow-two-primaries=yes").returncode == 0
    assert world.drbdadm("bob", "primary", "r0").returncode == 0
    assert world.events("alice", "r0")["connection"][0]["role"] == "Primary"
    clear = world.drbdsetup("alice", "net-options", "r0", "1", "--allow-two-primaries=no")
    assert clear.returncode == 10 and "(164) Can not clear allow_two_primaries" in clear.stderr
    # demote refused while the device is held open
    world.open_device("bob", "r0")
    busy = world.drbdadm("bob", "secondary", "r0")
    assert busy.returncode == 11 and "(-12) Device is held open by someone" in busy.stderr


def test_a_command_run_while_a_query_waits_for_a_helper_is_kept(world, tmp_path):
    # `drbdsetup status` advances every resource under the node lock, which is released
    # while a SyncTarget's before-resync-target runs: here that handler promotes another
    # resource. The query must not save its own older copy of that resource afterwards
    # (it did: a `primary --force` lost that way left provisioning waiting forever).
    promote = tmp_path / "promote-r1.sh"
    promote.write_text("#!/bin/sh\ndrbdsetup primary r1\n")
    promote.chmod(0o755)
    world.write_config("r0", minor=1, port=7789, size_mib=16, handlers=f'before-resync-target "{promote}";')
    world.write_config("r1", minor=2, port=7790, size_mib=16)
    both = tmp_path / "both.res"
    both.write_text(open(world.configs["r0"]).read() + open(world.configs["r1"]).read().replace(
        "global { usage-count no; }\n", ""))
    for name in world.names:
        world.set_usermode_helper(name, str(both))
    for res in ("r1", "r0"):
        for name in world.names:
            world.drbdadm(name, "create-md", "--force", res, config=str(both), check=True)
            world.drbdadm(name, "up", res, config=str(both), check=True)
    world.drbdadm("alice", "primary", "--force", "r1", config=str(both), check=True)
    assert world.wait_sync("r1")
    assert world.drbdsetup("bob", "role", "r1").stdout == "Secondary\n"
    world.drbdadm("alice", "primary", "--force", "r0", config=str(both), check=True)   # bob: SyncTarget
    assert world.drbdsetup("bob", "status").returncode == 0          # runs bob's before-resync-target
    assert any("helper:before-resync-target status:0" in line for line in world.helper_log("bob"))
    assert world.drbdsetup("bob", "role", "r1").stdout == "Primary\n"


def test_a_command_during_the_targets_own_before_resync_target_is_kept(world, tmp_path):
    # a command on the SyncTarget's resource while its before-resync-target runs with
    # the node lock released (here the handler suspends I/O; Pacemaker's promotion is
    # the case that matters): the kernel side that ran the helper goes on with its copy
    # of the resource and must keep what the command did
    suspend = tmp_path / "suspend.sh"
    suspend.write_text(f"#!/bin/sh\ndrbdsetup suspend-io 1; echo $? > {tmp_path}/suspend.rc\n")
    suspend.chmod(0o755)
    world.write_config("r0", size_mib=16, handlers=f'before-resync-target "{suspend}";')
    world.up_all("r0")
    world.drbdadm("alice", "primary", "--force", "r0", check=True)
    assert world.wait_for(lambda: world.drbdsetup("bob", "status").returncode == 0 and   # bob advances
                          (tmp_path / "suspend.rc").exists(), 10)
    assert (tmp_path / "suspend.rc").read_text().strip() == "0"
    assert world.events("bob", "r0")["resource"][0]["suspended"] == "user"


def test_new_current_uuid_with_clear_bitmap_skips_the_initial_sync(world, tmp_path):
    # DRBD's "skip initial sync" for a new resource: both replicas connected and
    # Inconsistent with fresh meta-data; new-current-uuid --clear-bitmap on one of them
    up_pair(world, tmp_path)
    assert world.wait_for(lambda: all(world.events(n, "r0")["connection"][0]["connection"] == "Connected"
                                      for n in world.names), 10)
    plain = world.drbdadm("alice", "new-current-uuid", "r0")
    assert plain.returncode == 10 and "1: Failure: (151) Need to be StandAlone" in plain.stderr
    assert world.events("alice", "r0")["device"][0]["disk"] == "Inconsistent"
    world.drbdadm("alice", "new-current-uuid", "--clear-bitmap", "r0", check=True)
    assert world.wait_sync("r0", timeout=10)
    assert not [line for n in world.names for line in world.helper_log(n) if "resync-target" in line]
    gi = {n: world.drbdadm(n, "get-gi", "r0").stdout.split(":")[0] for n in world.names}
    assert gi["alice"] == gi["bob"] and gi["alice"] != "0000000000000004", gi
    # the same generation on both: a reconnect finds them in sync (no resync)
    world.drbdadm("bob", "disconnect", "r0", check=True)
    world.drbdadm("bob", "connect", "r0", check=True)
    assert world.wait_sync("r0", timeout=10)
    assert not [line for n in world.names for line in world.helper_log(n) if "resync-target" in line]
    # not a new resource any more: refused while connected
    again = world.drbdadm("alice", "new-current-uuid", "--clear-bitmap", "r0")
    assert again.returncode == 10 and "1: Failure: (151) Need to be StandAlone" in again.stderr


def test_io_frozen_by_a_failed_fence_handler_resumes_when_the_peer_is_back(world, tmp_path):
    # a fence-peer that fails (exit 1, as when the other Primary's handler won the race)
    # leaves I/O frozen; the real kernel resumes it once the connection is established
    # again (after_state_ch, "case2"), and the frozen write then completes
    synced_pair(world, tmp_path, fence_rc=1)
    world.cut("alice", "bob")
    assert world.write("alice", "r0", 3, block("frozen"), wait=3) == "frozen"
    assert world.events("alice", "r0")["resource"][0]["suspended"] == "fencing"
    assert any("helper:fence-peer status:1" in line for line in world.helper_log("alice"))
    world.heal("alice", "bob")
    assert world.write("alice", "r0", 3, block("after-heal"), wait=30) == "ack"
    assert world.events("alice", "r0")["resource"][0]["suspended"] == "no"
    assert world.wait_sync("r0")
    assert world.disk_blocks("bob", "r0")[3] == block("after-heal")


def test_protocol_c_cut_fence_freeze_heal_resync(world, tmp_path):
    synced_pair(world, tmp_path, fence_sleep=1.5)
    acked = {}
    for n in range(4):
        assert world.write("alice", "r0", n, block(f"a{n}")) == "ack"
        acked[n] = block(f"a{n}")
    # protocol C: acknowledged writes are on both disks
    assert world.disk_blocks("bob", "r0") == acked
    world.cut("alice", "bob")
    assert world.write("alice", "r0", 10, block("during-fence")) == "frozen"   # I/O frozen while fencing
    ev = world.events("alice", "r0")
    assert ev["resource"][0]["suspended"] == "fencing"
    assert ev["connection"][0]["connection"] == "Connecting"
    assert ev["peer-device"][0]["peer-disk"] == "DUnknown"
    assert world.drbdsetup("alice", "status", "--json", "r0").stdout.count('"suspended-fencing": true') == 1
    assert world.write("alice", "r0", 10, block("after-fence"), wait=10) == "ack"
    acked[10] = block("after-fence")
    ev = world.events("alice", "r0")
    assert ev["resource"][0]["suspended"] == "no" and ev["peer-device"][0]["peer-disk"] == "Outdated"
    fenced = handler_envs(tmp_path, "fence")
    assert len(fenced) == 1
    env = fenced[0]
    assert env["DRBD_RESOURCE"] == "r0" and env["DRBD_PEER_NODE_ID"] == "1" and env["DRBD_MY_NODE_ID"] == "0"
    assert env["DRBD_PEER_ADDRESS"] == "10.99.0.2" and env["DRBD_MY_AF"] == "ipv4"
    assert env["UP_TO_DATE_NODES"] == "0x00000001" and env["DRBD_CSTATE"] == "Connecting"
    assert env["DRBD_MINOR_0"] == "1" and env["HOME"] == "/" and env["TERM"] == "linux"
    # the kernel's PATH, with the simulated tools put first by the node's usermode-helper wrapper
    assert env["PATH"] == world.simbindir + ":/sbin:/usr/sbin:/bin:/usr/bin"
    assert any("response helper name:r0 peer-node-id:1 conn-name:bob helper:fence-peer status:7" in line
               for line in world.helper_log("alice"))
    # bob still has the old data only; heal: bitmap-based resync alice -> bob
    assert 10 not in world.disk_blocks("bob", "r0")
    assert world.events("bob", "r0")["connection"][0]["connection"] == "Connecting"
    world.heal("alice", "bob")
    assert world.wait_sync("r0")
    assert world.disk_blocks("bob", "r0") == acked
    assert world.disk_blocks("alice", "r0") == acked
    assert world.wait_for(lambda: handler_envs(tmp_path, "unfence"), 5)


def test_failover_after_crash_loses_no_acknowledged_write(world, tmp_path):
    synced_pair(world, tmp_path)
    acked = {}
    for n in range(6):
        assert world.write("alice", "r0", n, block(f"before-crash-{n}")) == "ack"
        acked[n] = block(f"before-crash-{n}")
    world.crash("alice")
    assert world.drbdsetup("alice", "status").stdout == "# No currently configured DRBD found.\n"
    # the survivor notices, fences (the handler says: peer STONITHed) and is promoted
    promote = world.drbdadm("bob", "primary", "r0")
    assert promote.returncode == 0, promote.stderr
    assert handler_envs(tmp_path, "fence")[0]["DRBD_PEER_NODE_ID"] == "0"
    for n, data in acked.items():
        assert world.read("bob", "r0", n) == data
    assert world.write("bob", "r0", 20, block("on-bob")) == "ack"
    acked[20] = block("on-bob")
    # alice comes back: its disk kept its data and meta-data; it resyncs from bob
    up = world.drbdadm("alice", "up", "r0")
    assert up.returncode == 0, up.stderr
    assert world.wait_sync("r0")
    assert world.disk_blocks("alice", "r0") == acked
    assert world.role("alice", "r0") == "Secondary" and world.role("bob", "r0") == "Primary"


def test_promotion_refused_without_fencing_success(world, tmp_path):
    synced_pair(world, tmp_path, fence_rc=1)
    world.crash("alice")
    refused = world.drbdadm("bob", "primary", "r0")
    assert refused.returncode == 11
    assert "r0: State change failed: (-7) Refusing to be Primary while peer is not outdated" in refused.stderr
    assert world.drbdadm("bob", "primary", "--force", "r0").returncode == 0


def test_split_brain_keeps_both_histories(world, tmp_path):
    synced_pair(world, tmp_path)
    assert world.write("alice", "r0", 1, block("common")) == "ack"
    world.cut("alice", "bob")
    assert world.write("alice", "r0", 2, block("alice-only"), wait=10) == "ack"
    assert world.drbdadm("bob", "primary", "r0").returncode == 0     # fenced by rc 7, but it was a lie
    assert world.write("bob", "r0", 3, block("bob-only")) == "ack"
    world.heal("alice", "bob")
    for name in world.names:
        assert world.wait_for(lambda n=name: world.events(n, "r0")["connection"][0]["connection"] == "StandAlone", 5)
    assert world.disk_blocks("alice", "r0").get(3) is None and world.disk_blocks("bob", "r0").get(2) is None
    assert world.drbdadm("bob", "cstate", "r0").stdout == "StandAlone\n"
    # resolve: bob discards its data, alice's history wins
    assert world.drbdadm("bob", "secondary", "r0").returncode == 0
    assert world.drbdadm("bob", "connect", "--discard-my-data", "r0").returncode == 0
    assert world.drbdadm("alice", "connect", "r0").returncode == 0
    assert world.wait_sync("r0")
    expected = {1: block("common"), 2: block("alice-only")}
    assert world.disk_blocks("bob", "r0") == expected == world.disk_blocks("alice", "r0")


def test_adjust_is_a_noop_when_up_and_applies_differences(world, tmp_path):
    up_pair(world, tmp_path)
    config = world.configs["r0"]
    same = world.drbdadm("alice", "-d", "adjust", "r0")
    assert same.returncode == 0 and same.stdout == ""
    changed = tmp_path / "changed.res"
    changed.write_text(open(config).read().replace("allow-two-primaries yes;", "allow-two-primaries no;"))
    diff = world.drbdadm("alice", "-d", "adjust", "r0", config=str(changed))
    assert diff.stdout.splitlines() == [
        "drbdsetup net-options r0 1 --set-defaults --_name=bob --fencing=resource-and-stonith "
        "--allow-two-primaries=no --protocol=C"]
    assert world.drbdadm("alice", "disconnect", "r0").returncode == 0
    assert world.drbdadm("alice", "cstate", "r0").stdout == "StandAlone\n"
    assert world.drbdadm("alice", "-d", "adjust", "r0").stdout == "drbdsetup connect r0 1\n"
    assert world.drbdadm("alice", "adjust", "r0").returncode == 0
    assert world.drbdadm("alice", "cstate", "r0").stdout == "Connected\n"
    assert world.drbdadm("alice", "down", "r0").returncode == 0
    assert world.drbdadm("alice", "-d", "adjust", "r0").stdout.splitlines()[0] == "drbdsetup new-resource r0 0"


def test_wait_connect_and_down_metadata(world, tmp_path):
    world.write_config("r0", size_mib=16, extra="    startup { wfc-timeout 1; }\n")
    world.create_md("alice", "r0")
    assert world.drbdadm("alice", "up", "r0").returncode == 0
    started = time.monotonic()
    waited = world.drbdadm("alice", "wait-connect", "r0")
    assert waited.returncode == 5 and 0.9 < time.monotonic() - started < 5
    assert world.drbdsetup("alice", "wait-connect-resource", "r0", "--wfc-timeout=1").returncode == 5
    assert world.drbdsetup("alice", "wait-sync-volume", "r0", "1", "0", "--wfc-timeout=1").returncode == 5
    world.create_md("bob", "r0")
    assert world.drbdadm("bob", "up", "r0").returncode == 0
    assert world.drbdsetup("alice", "wait-connect-resource", "r0", "--wfc-timeout=5").returncode == 0
    assert world.drbdadm("alice", "primary", "--force", "r0").returncode == 0
    assert world.drbdsetup("bob", "wait-sync-resource", "r0", "--wfc-timeout=10").returncode == 0
    assert world.drbdadm("bob", "dstate", "r0").stdout == "UpToDate/UpToDate\n"
    # after down, real drbdmeta reads the meta-data the simulated kernel wrote back
    # (a Secondary that leaves a Primary gracefully is outdated on the way out)
    assert world.drbdadm("bob", "down", "r0").returncode == 0
    assert world.drbdadm("bob", "dstate", "r0").stdout == "Outdated\n"
    assert world.drbdadm("alice", "dstate", "r0").stdout == "UpToDate/Outdated\n"
    assert world.drbdadm("bob", "up", "r0").returncode == 0
    assert world.wait_for(lambda: world.drbdadm("bob", "dstate", "r0").stdout == "UpToDate/UpToDate\n", 5)
    # both down: the meta-data says consistent and was-up-to-date, which real drbdmeta
    # (like the kernel without knowing its peers are outdated) reports as Consistent
    assert world.drbdadm("alice", "secondary", "r0").returncode == 0
    assert world.drbdadm("alice", "down", "r0").returncode == 0
    assert world.drbdadm("bob", "down", "r0").returncode == 0
    assert world.drbdadm("alice", "dstate", "r0").stdout == "Consistent\n"
    assert world.drbdadm("alice", "up", "r0").returncode == 0
    assert world.drbdadm("alice", "dstate", "r0").stdout == "Consistent/DUnknown\n"


def test_events2_stream_shows_changes_and_helpers(world, tmp_path):
    synced_pair(world, tmp_path)
    proc = subprocess.Popen(["ip", "netns", "exec", world.netns["alice"], "drbdsetup", "events2", "r0"],
                            env=world.env("alice"), stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("exists resource name:r0 role:Primary")
        world.cut("alice", "bob")
        lines = []
        end = time.monotonic() + 10
        while time.monotonic() < end and not any("helper:fence-peer status:" in line for line in lines):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        assert "exists -\n" in text
        assert "change connection name:r0 peer-node-id:1 conn-name:bob connection:Connecting role:Unknown" in text
        assert "call helper name:r0 peer-node-id:1 conn-name:bob helper:fence-peer" in text
        assert "response helper name:r0 peer-node-id:1 conn-name:bob helper:fence-peer status:7" in text
    finally:
        proc.kill()
        proc.wait()


DRBD84 = {"DRBD_DRIVER_VERSION_OVERRIDE": "8.4.11"}


def drbd84_resource(world, tmp_path) -> str:
    """An 8.4 resource r84 (minor 2) on every node of the world, created and up (drbdadm
    re-executes drbdadm-84, which runs the simulated drbdsetup-84); its config file."""
    installed(os.path.join(default_simbindir(), "drbdsetup-84"))
    disks = {n: world.make_disk(n, 16) for n in world.names}
    conf = tmp_path / "r84.res"
    conf.write_text("global { usage-count no; }\nresource r84 {\n"
                    "    net { allow-two-primaries yes; protocol C; }\n    disk { fencing resource-and-stonith; }\n"
                    + "".join(f"    on {n} {{ device /dev/drbd2 minor 2; disk {disks[n]}; address {world.nodes[n]}:7790;"
                              " meta-disk internal; }\n" for n in world.names) + "}\n")
    for name in world.names:   # the kernel's helper (drbdadm) reads this configuration
        world.set_usermode_helper(name, str(conf))
    dry = world.drbdadm("alice", "-d", "up", "r84", config=str(conf), env=DRBD84)
    assert dry.stdout.splitlines()[0] == "drbdsetup-84 new-resource r84"
    for name in world.names:
        assert world.drbdadm(name, "create-md", "--force", "r84", config=str(conf), env=DRBD84).returncode == 0
        assert world.drbdadm(name, "up", "r84", config=str(conf), env=DRBD84).returncode == 0
    return str(conf)


def test_drbd84_path(world, tmp_path):
    conf, env = drbd84_resource(world, tmp_path), DRBD84
    q = {c: world.drbdadm("alice", c, "r84", config=str(conf), env=env).stdout for c in ("role", "cstate", "dstate")}
    assert q == {"role": "Secondary/Secondary\n", "cstate": "Connected\n", "dstate": "Inconsistent/Inconsistent\n"}
    assert world.drbdadm("alice", "primary", "--force", "r84", config=str(conf), env=env).returncode == 0
    assert world.wait_for(lambda: world.drbdadm("bob", "dstate", "r84", config=str(conf), env=env).stdout
                          == "UpToDate/UpToDate\n", 10)
    assert world.drbdadm("bob", "role", "r84", config=str(conf), env=env).stdout == "Secondary/Primary\n"
    assert world.drbdadm("alice", "-d", "adjust", "r84", config=str(conf), env=env).stdout == ""
    assert world.drbdadm("alice", "disconnect", "r84", config=str(conf), env=env).returncode == 0
    assert world.drbdadm("alice", "cstate", "r84", config=str(conf), env=env).stdout == "StandAlone\n"
    assert world.drbdadm("bob", "cstate", "r84", config=str(conf), env=env).stdout == "WFConnection\n"
    assert world.drbdadm("alice", "down", "r84", config=str(conf), env=env).returncode == 0


def test_frequent_queries_have_a_lean_import_path(tmp_path):
    code = ("import sys; sys.path.insert(0, %r); sys.argv = ['drbdsetup', 'events2', '--now', 'all']\n"
            "from xenha_lab.sim.drbd import drbdsetup\ndrbdsetup.main()\n"
            "bad = {'json', 're', 'subprocess', 'enum', 'dataclasses', 'typing'} & set(sys.modules)\n"
            "print('BAD', sorted(bad))\n") % LIB
    env = {"XENHA_SIM_DRBD_STATE": str(tmp_path / "s"), "XENHA_SIM_DRBD_DISKS": str(tmp_path / "d"),
           "XENHA_SIM_DRBD_NET": str(tmp_path / "n"), "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-IS", "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["exists -", "BAD []"]
