"""The pure parts of xenha.operate on captured outputs (tests/cli/samples, from the lab;
tests/samples, verbatim from shared/): crm_mon XML + CIB + DRBD + xl -> the status view
and what needs attention, the migration pre-flight, crm_simulate's plan, the apply diff."""

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO, installed, need_root, need_tool
from xenha.operate import apply as A
from xenha.operate import drain as D
from xenha.operate import migrate as M
from xenha.operate import state as S
from xenha.operate.env import OperationError

SAMPLES = Path(__file__).resolve().parent / "samples"
TRIO = REPO / "tests" / "cli_lab" / "trio.toml"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def facts(node: str, drbd_file: str, xl_file: str, free: int | None = None) -> S.NodeFacts:
    return S.NodeFacts(node, drbd=S.parse_drbd_status(node, sample(drbd_file)),
                       domains=S.parse_domains(sample(xl_file)), free_memory_mib=free)


def view(mon: str, cib: str, node_facts: dict) -> S.ClusterView:
    return S.join("n1", S.parse_crm_mon(sample(mon)), S.parse_cib(sample(cib)), node_facts)


# --- crm_mon, CIB, DRBD, xl -------------------------------------------------------------------------------------
def test_crm_mon_standby_and_placement():
    mon = S.parse_crm_mon(sample("crm_mon_n1_standby.xml"))
    assert list(mon.nodes) == ["n1", "n2", "n3"] and mon.dc and mon.quorum
    assert mon.nodes["n1"].standby and not mon.nodes["n1"].available and mon.nodes["n2"].available
    for vm in ("a1", "a2", "a3", "a4", "a5"):
        assert mon.where(vm) == ["n2"] and S.vm_state(mon, vm) == ("running", ("n2",), False)
    assert mon.where("drbd_a1") == ["n2"] and mon.roles("drbd_a1") == {"n2": "Promoted"}
    assert mon.where("big") == ["n3"] and [f.resource for f in mon.failures] == ["drbd_a1"]


def test_crm_mon_failures_name_their_resource():
    mon = S.parse_crm_mon(sample("crm_mon_failed_c1.xml"))
    by_resource = {(f.resource, f.operation) for f in mon.failures}
    assert ("c1", "asyncmon") in by_resource and ("drbd_a1", "monitor") in by_resource
    degraded = next(f for f in mon.failures if f.resource == "drbd_a1")
    assert degraded.exit_code == 191 and degraded.interval_ms == 29000 and "not connected" in degraded.exit_reason


def test_crm_mon_from_the_lab_tests_and_bad_input():
    mon = S.parse_crm_mon((REPO / "tests" / "lab" / "samples" / "crm_mon_two_nodes.xml").read_text())
    assert mon.dc == "n2" and mon.where("d1") == ["n1"]
    with pytest.raises(S.StateError):
        S.parse_crm_mon("error: Could not connect to the CIB: Transport endpoint is not connected")
    with pytest.raises(S.StateError):
        S.parse_crm_mon("<cib/>")
    # what crm_mon 2.1.5 prints (exit 0) on a machine where the cluster does not run
    offline = ('<pacemaker-result api-version="2.25" request="crm_mon --one-shot --inactive --output-as=xml">\n'
               '  <status code="0" message="OK">\n    <errors>\n'
               '      <error>error: Could not connect to launcher: Connection refused</error>\n'
               '      <error>crm_mon: Connection to cluster failed: Connection refused</error>\n'
               '    </errors>\n  </status>\n</pacemaker-result>\n')
    with pytest.raises(S.StateError, match="Connection to cluster failed: Connection refused"):
        S.parse_crm_mon(offline)


def test_status_off_a_cluster_is_one_line(capsys):
    from conftest import need_tool
    from xenha.cli.main import main

    need_tool("crm_mon")
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("xenha: crm_mon cannot show the cluster: ") and "Traceback" not in err


def test_cib_vms_replicas_drbd_and_memory():
    cib = S.parse_cib(sample("cib_n1_standby.xml"))
    assert sorted(cib.vms) == ["a1", "a2", "a3", "a4", "a5", "big", "c1"] and cib.nodes == ("n1", "n2", "n3")
    a1 = cib.vms["a1"]
    assert (a1.drbd_resource, a1.drbd_clone, a1.drbd_primitive, a1.lv_clone) == (
        "vm_a1", "drbd_a1-clone", "drbd_a1", "lv_a1-clone")
    assert a1.banned == ("n3",) and a1.config == "/etc/xen/a1.cfg"
    assert a1.memory_mib is None         # this lab was provisioned before domains had a memory utilization
    assert cib.vms["big"].banned == ("n1",)
    assert cib.fencing == () and cib.moves == ()
    later = S.parse_cib(sample("cib_constraints_left.xml")).vms
    assert (later["a1"].memory_mib, later["a2"].memory_mib, later["big"].memory_mib) == (64, 128, 15000)


def test_cib_constraints_left_behind():
    cib = S.parse_cib(sample("cib_constraints_left.xml"))
    assert [c.to_json() for c in cib.fencing] == [
        {"id": "drbd-fence-by-handler-vm_big-drbd_big-clone", "kind": "fencing", "resource": "drbd_big-clone",
         "node": "n3", "score": "-INFINITY", "expires": None}]
    moves = {c.id: c for c in cib.moves}
    assert set(moves) == {"cli-prefer-c1", "cli-ban-a3-on-n2"}
    assert moves["cli-prefer-c1"].kind == "prefer" and moves["cli-prefer-c1"].node == "n3"
    assert moves["cli-prefer-c1"].expires and moves["cli-prefer-c1"].expires.startswith("2026-12-04")
    assert (moves["cli-ban-a3-on-n2"].kind, moves["cli-ban-a3-on-n2"].node) == ("ban", "n2")
    assert cib.vms["a3"].banned == ("n3",)        # the cli-ban does not make n2 a non-replica


def test_drbd_status_upstream_sample_and_lab_sample():
    text = "\n".join(line for line in (REPO / "tests" / "samples" / "drbd9_status_json.txt").read_text().splitlines()
                     if not line.startswith("#"))
    found = S.parse_drbd_status("node2", text)
    first = found["1-single-0"]
    assert first.role == "Secondary" and first.up_to_date and first.connected and not first.resyncing
    assert first.peer_roles == {"SLE15-sp1-gm-drbd1145296-node1": "Primary"} and first.suspended == ()
    n2 = S.parse_drbd_status("n2", sample("drbdsetup_status_n2.json"))
    a1 = n2["vm_a1"]
    assert a1.role == "Primary" and a1.up_to_date and not a1.connected
    assert a1.connections == {"n1": "Connecting"} and a1.suspended == ("fencing",)
    with pytest.raises(S.StateError):
        S.parse_drbd_status("n2", "{not json")


def _node_facts_with(tmp_path, drbdsetup_body: str):
    """status.node_facts against stand-in drbdsetup/xl run by the real sh."""
    import subprocess
    from types import SimpleNamespace

    from xenha.operate import status

    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True)
    (bindir / "drbdsetup").write_text(f"#!/bin/sh\n{drbdsetup_body}\n")
    (bindir / "xl").write_text(f"#!/bin/sh\ncat {SAMPLES / 'xl_list_n2.txt'}\n")
    for tool in ("drbdsetup", "xl"):
        (bindir / tool).chmod(0o755)

    class Env:
        def on_node(self, node, argv, timeout):
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env={"PATH": f"{bindir}:/usr/bin:/bin"})
            return SimpleNamespace(stdout=done.stdout, stderr=done.stderr, returncode=done.returncode, timed_out=False)
    return status.node_facts(Env(), "n2")


def test_node_facts_on_drbd_9_and_on_drbd_84(tmp_path):
    nine = _node_facts_with(tmp_path / "9", f'[ "$1" = status ] && exec cat {SAMPLES / "drbdsetup_status_n2.json"}')
    assert nine.error is None and nine.drbd["vm_a1"].connections == {"n1": "Connecting"} and nine.domains
    # DRBD 8.4 (the real outputs in tests/sim/real_samples/drbd84_kernel.txt): no status --json
    lines = (REPO / "tests" / "sim" / "real_samples" / "drbd84_kernel.txt").read_text().splitlines()
    events = tmp_path / "events2-84.txt"
    events.write_text("\n".join(lines[82:87]) + "\n")
    assert lines[81] == "$ drbdsetup events2 --now vm_guest1" and lines[86] == "exists -"
    eight = _node_facts_with(tmp_path / "84", "case $1 in status) echo \"status: unrecognized option '--json'\" >&2; "
                             f"exit 20;; events2) cat {events};; esac")
    assert eight.error is None, eight.error
    replica = eight.drbd["vm_guest1"]
    assert replica.role == "Primary" and replica.up_to_date and replica.connected
    assert replica.connections == {"peer": "Connected"} and replica.peer_disks == {"peer": "UpToDate"}
    assert replica.replication == {"peer": "Established"} and not replica.resyncing and replica.suspended == ()
    assert eight.domains == nine.domains
    broken = _node_facts_with(tmp_path / "none", "echo 'drbdsetup: no kernel' >&2; exit 20")
    assert broken.drbd is None and broken.error.startswith("drbdsetup status failed")


# --- the joined view ---------------------------------------------------------------------------------------------
def test_view_after_a_drain_needs_attention():
    seen = view("crm_mon_n1_standby.xml", "cib_n1_standby.xml",
                {"n2": facts("n2", "drbdsetup_status_n2.json", "xl_list_n2.txt"), "n1": S.NodeFacts("n1")})
    assert not seen.ok
    kinds = {(a.kind, a.subject) for a in seen.attention}
    assert ("node-standby", "n1") in kinds and ("drbd-connection", "a1") in kinds
    assert ("drbd-io-suspended", "a1") in kinds
    document = seen.to_json()
    json.dumps(document)
    a1 = next(v for v in document["vms"] if v["name"] == "a1")
    assert a1["state"] == "running" and a1["node"] == "n2" and a1["drbd_resource"] == "vm_a1"
    on_n2 = next(r for r in a1["replicas"] if r["node"] == "n2")
    assert on_n2["role"] == "Primary" and on_n2["connections"] == {"n1": "Connecting"}
    assert [d["name"] for d in on_n2["domain"]] == ["a1"] and on_n2["io_suspended"] == ["fencing"]
    assert set(document) >= {"schema", "ok", "nodes", "vms", "failed_actions", "fencing_constraints",
                             "move_constraints", "attention"}


def test_view_while_a_resync_runs(tmp_path):
    """status during a resync: the replica says how far it is and how long it has left
    (DRBD's own percent-resync-done / estimated-seconds-to-finish), and the view needs
    attention until it ends. The DRBD state is live: the simulated kernel behind the real
    drbdadm, a 16 MiB resource resyncing at 1 MiB/s from n1 to n2."""
    import os

    from xenha_lab.sim.drbd.world import DrbdWorld, default_simbindir

    need_root()
    need_tool("drbdadm")
    installed(os.path.join(default_simbindir(), "drbdsetup"))
    world = DrbdWorld(tmp_path / "drbd", {"n1": "10.97.0.1", "n2": "10.97.0.2"}, resync_rate_kib=1024)
    try:
        world.write_config("vm_a1", size_mib=16)
        world.up_all("vm_a1")
        world.drbdadm("n1", "primary", "--force", "vm_a1", check=True)
        text = world.drbdsetup("n2", "status", "--json", "vm_a1").stdout
    finally:
        world.cleanup()
    replica = S.parse_drbd_status("n2", text)["vm_a1"]
    assert replica.resyncing and replica.replication == {"n1": "SyncTarget"}
    assert 0.0 <= replica.sync_done < 100.0 and 0.0 < replica.sync_eta_s <= 17.0
    seen = view("crm_mon_n1_standby.xml", "cib_n1_standby.xml",
                {"n2": S.NodeFacts("n2", drbd={"vm_a1": replica}, domains=S.parse_domains(sample("xl_list_n2.txt"))),
                 "n1": S.NodeFacts("n1")})
    assert not seen.ok
    resync = [a.text for a in seen.attention if (a.kind, a.subject) == ("drbd-resync", "a1")]
    assert len(resync) == 1 and "vm_a1 on n2 is resyncing" in resync[0] and "% done" in resync[0] \
        and "s left" in resync[0], resync
    on_n2 = next(r for r in next(v for v in seen.to_json()["vms"] if v["name"] == "a1")["replicas"]
                 if r["node"] == "n2")
    assert on_n2["sync_done_percent"] == replica.sync_done and on_n2["sync_eta_s"] == replica.sync_eta_s


# --- a resync seen from both ends (after `xenha undrain n1`): progress, ETA, exit 3 --------------------------------
def undrained(kind: str) -> S.ClusterView:
    """crm_mon right after the undrain (a1 on n2, n1's DRBD starting again) with DRBD on
    n1 and n2 during the resync ("resync") or after it ("synced")."""
    return view("crm_mon_failed_c1.xml", "cib_n1_standby.xml",
                {"n1": facts("n1", f"drbdsetup_status_{kind}_n1.json", "xl_list_n3.txt"),
                 "n2": facts("n2", f"drbdsetup_status_{kind}_n2.json", "xl_list_n2.txt")})


def test_view_of_a_resync_from_both_ends_and_after_it():
    """Beyond test_view_while_a_resync_runs (the target alone): the source's replica
    (Primary, SyncSource, its own percent) needs attention too, and once the resync has
    ended the view has no DRBD item left for the VM; nothing else differs."""
    resync, synced = undrained("resync"), undrained("synced")
    assert not resync.ok
    mine = [(a.kind, a.text) for a in resync.attention if a.subject == "a1" and a.kind.startswith("drbd")]
    assert mine == [("drbd-resync", "a1: DRBD vm_a1 on n1 is resyncing 38.0% done, about 10 s left"),
                    ("drbd-resync", "a1: DRBD vm_a1 on n2 is resyncing 38.1% done, about 10 s left")]
    # the captures hold vm_a1 only: the other VMs' DRBD is "not up" in both views
    assert [a for a in synced.attention if a.subject == "a1" and a.kind.startswith("drbd")] == []
    assert [a for a in resync.attention if a.kind != "drbd-resync"] == list(synced.attention)
    a1 = next(v for v in resync.to_json()["vms"] if v["name"] == "a1")
    assert (a1["state"], a1["node"]) == ("running", "n2")
    replicas = {r["node"]: r for r in a1["replicas"]}
    assert (replicas["n1"]["replication"], replicas["n1"]["sync_done_percent"], replicas["n1"]["sync_eta_s"]) == (
        {"n2": "SyncTarget"}, 37.99, 10.0)
    assert (replicas["n2"]["role"], replicas["n2"]["replication"], replicas["n2"]["sync_done_percent"]) == (
        "Primary", {"n1": "SyncSource"}, 38.11)
    done = {r["node"]: r for r in next(v for v in synced.to_json()["vms"] if v["name"] == "a1")["replicas"]}
    assert done["n1"]["disk"] == "UpToDate" and done["n1"]["sync_done_percent"] is None


def stand_in(directory: Path, name: str, text: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.out").write_text(text)
    (directory / name).write_text(f"#!/bin/sh\ncat '{directory / name}.out'\n")
    (directory / name).chmod(0o755)


def test_status_cli_exits_3_with_the_resync_in_its_json_and_table(tmp_path, monkeypatch, capsys):
    """`xenha status` on n1 over the captures: crm_mon and cibadmin here, the node script
    (drbdsetup status --json, xl list) through sh on n1 and through a transport to n2."""
    from xenha.cli import operate
    from xenha.cli.main import main
    from xenha.operate.env import Environment
    from xenha.tools import runner

    for node, xl in (("n1", "xl_list_n3.txt"), ("n2", "xl_list_n2.txt")):
        stand_in(tmp_path / node, "drbdsetup", sample(f"drbdsetup_status_resync_{node}.json"))
        stand_in(tmp_path / node, "xl", sample(xl))
    stand_in(tmp_path / "n1", "crm_mon", sample("crm_mon_failed_c1.xml"))
    stand_in(tmp_path / "n1", "cibadmin", sample("cib_n1_standby.xml"))

    class ToN2:
        def run(self, node, argv, timeout=60.0, input=None):
            assert node == "n2"
            return runner.run(argv, timeout, env={"PATH": f"{tmp_path / 'n2'}:/usr/bin:/bin"})

    env = Environment(ToN2(), local_node="n1", environ={"PATH": f"{tmp_path / 'n1'}:/usr/bin:/bin"})
    monkeypatch.setattr(operate, "_env", lambda: env)
    assert main(["status", "--json"]) == 3
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert {a["text"] for a in document["attention"] if a["kind"] == "drbd-resync"} == {
        "a1: DRBD vm_a1 on n1 is resyncing 38.0% done, about 10 s left",
        "a1: DRBD vm_a1 on n2 is resyncing 38.1% done, about 10 s left"}
    a1 = next(v for v in document["vms"] if v["name"] == "a1")
    assert [(r["node"], r["sync_done_percent"], r["sync_eta_s"]) for r in a1["replicas"]] == [
        ("n1", 37.99, 10.0), ("n2", 38.11, 10.0)]
    assert main(["status"]) == 3
    table = capsys.readouterr().out
    assert "n1: Secondary/Inconsistent Connected sync 38%" in table and "about 10 s left" in table


def test_view_failed_vm_and_constraints():
    seen = view("crm_mon_constraints_left.xml", "cib_constraints_left.xml",
                {"n3": facts("n3", "drbdsetup_status_n3.json", "xl_list_n3.txt")})
    kinds = {a.kind for a in seen.attention}
    assert {"failed-action", "fencing-constraint", "move-constraint"} <= kinds
    failed = [f for f in seen.to_json()["failed_actions"] if f["resource"] == "c1"]
    assert {f["operation"] for f in failed} >= {"migrate_to", "start"}
    assert any("failed to free memory" in f["exit_reason"] for f in failed)


# --- migration pre-flight ----------------------------------------------------------------------------------------
def test_preflight_refusals_with_reasons():
    seen = view("crm_mon_n1_standby.xml", "cib_n1_standby.xml",
                {"n2": facts("n2", "drbdsetup_status_n2.json", "xl_list_n2.txt"), "n1": S.NodeFacts("n1", drbd={})})
    probes = M.Probes(config_present=False, address="n1", address_reachable=True, free_memory_mib=100)
    checks = {c.name: c for c in M.preflight(seen, "a1", "n1", probes)}
    assert checks["running"].ok and checks["replica"].ok
    assert not checks["target-available"].ok and "in standby" in checks["target-available"].reason
    assert not checks["drbd"].ok and "not up on n1" in checks["drbd"].reason
    assert not checks["config"].ok and "/etc/xen/a1.cfg is missing on n1" in checks["config"].reason
    assert checks["memory"].ok and checks["migration-address"].ok
    unreachable = dataclasses.replace(probes, address_reachable=False, address_error="Connection refused")
    address = {c.name: c for c in M.preflight(seen, "a1", "n1", unreachable)}["migration-address"]
    assert not address.ok and address.reason.startswith("n1 does not answer from n2 through `ssh")
    assert address.reason.endswith(": Connection refused")
    not_replica = {c.name: c for c in M.preflight(seen, "a1", "n3", probes)}
    assert not not_replica["replica"].ok and "not a replica" in not_replica["replica"].reason
    memory = {c.name: c for c in M.preflight(seen, "a1", "n1", dataclasses.replace(probes, free_memory_mib=10))}
    assert not memory["memory"].ok and "10 MiB free, a1 needs 64 MiB" in memory["memory"].reason
    with pytest.raises(OperationError) as unknown:
        M.preflight(seen, "nope", "n1", probes)
    assert unknown.value.code == 2 and "unknown VM 'nope'" in str(unknown.value)
    with pytest.raises(OperationError):
        M.preflight(seen, "a1", "n9", probes)


def test_preflight_failed_actions_and_moves():
    seen = view("crm_mon_constraints_left.xml", "cib_constraints_left.xml", {})
    probes = M.Probes(config_present=True, address="n3", address_reachable=True, free_memory_mib=100000)
    checks = {c.name: c for c in M.preflight(seen, "c1", "n3", probes)}
    assert not checks["no-failures"].ok and "c1 start on n3" in checks["no-failures"].reason
    assert not checks["no-moves"].ok and "cli-prefer-c1" in checks["no-moves"].reason
    assert not checks["drbd"].ok and "cannot be asked" in checks["drbd"].reason


# --- the drain plan ---------------------------------------------------------------------------------------------
def test_plan_from_crm_simulate():
    planned = D.parse_summary(sample("crm_simulate_standby_n1.txt"))
    migrations = [(p.resource, p.source, p.target) for p in planned if p.action == "Migrate"]
    assert migrations == [(vm, "n1", "n2") for vm in ("a1", "a2", "a3", "a4", "a5")]
    stops = {(p.resource, p.source) for p in planned if p.action == "Stop"}
    assert ("drbd_a1", "n1") in stops and ("lv_a5", "n1") in stops
    moves = [p for p in planned if p.action == "Move"]
    assert moves and all(p.source == "n1" for p in moves)
    assert D.parse_summary("no summary here") == []


def test_plan_line_shapes():
    text = ("Transition Summary:\n"
            "  * Restart    web1     (            n2 )  due to required drbd_web1-clone running\n"
            "  * Promote    drbd_web1:0 ( Unpromoted -> Promoted n3 )\n"
            "  * Start      web2     (            n3 )\n"
            "\nExecuting Cluster Transition:\n  * Resource action: web1 stop on n2\n")
    planned = D.parse_summary(text)
    assert [(p.action, p.resource, p.source, p.target) for p in planned] == [
        ("Restart", "web1", "n2", "n2"), ("Promote", "drbd_web1", "n3", "n3"), ("Start", "web2", None, "n3")]
    assert planned[0].note.startswith("due to required")


# --- apply ------------------------------------------------------------------------------------------------------
def a2_memory(text: str, mib: int) -> str:
    at = text.index('name = "a2"')
    return text[:at] + text[at:].replace("memory = 64", f"memory = {mib}", 1)


def trio_rendering(tmp_path, edit=None):
    """trio.toml as the sample CIB was made from it (a2's memory raised to 128 by `xenha apply`)."""
    from xenha.render import files

    text = a2_memory(TRIO.read_text(), 128)
    if edit:
        text = edit(text)
    path = tmp_path / "trio.toml"
    path.write_text(text)
    return files.prepare(str(path))


def live_root() -> ET.Element:
    return ET.fromstring(sample("cib_constraints_left.xml"))


def test_apply_nothing_to_do_on_what_was_provisioned(tmp_path):
    want = A.rendered_configuration(trio_rendering(tmp_path))
    assert A.diff(live_root(), want) == []     # lab-fence, cli-* and the fencing constraint are not xenha's


def test_apply_memory_changes_only_utilization(tmp_path):
    want = A.rendered_configuration(trio_rendering(tmp_path, lambda text: text.replace("memory = 128", "memory = 256")))
    changes = A.diff(live_root(), want)
    assert [c.text() for c in changes] == ["~ resource a2: utilization memory 128 -> 256"]
    new = A.patched(live_root(), want, changes)
    assert A.diff(new, want) == []
    primitive = new.find(".//primitive[@id='a2']")
    before = ET.fromstring(sample("cib_constraints_left.xml")).find(".//primitive[@id='a2']")
    assert ET.tostring(primitive.find("instance_attributes")) == ET.tostring(before.find("instance_attributes"))


def test_apply_removes_a_vm_with_its_constraints_and_refuses_if_running(tmp_path):
    def without_a5(text):
        start = text.index('[[vms]]\nname = "a5"')
        end = text.index("[[vms]]", start + 5)
        return text[:start] + text[end:]
    want = A.rendered_configuration(trio_rendering(tmp_path, without_a5))
    changes = A.diff(live_root(), want)
    removed = {(c.kind, c.id) for c in changes if c.action == "remove"}
    assert {("resource", "a5"), ("resource", "lv_a5-clone"), ("resource", "drbd_a5-clone"),
            ("constraint", "location-a5-prefers-n1")} <= removed
    assert ("tag", "xenha-vms") in {(c.kind, c.id) for c in changes if c.action == "change"}
    assert A.removed_vms_running(changes, live_root(), {"a5": ["n1"]}) == ["a5"]
    new = A.patched(live_root(), want, changes)
    assert new.find(".//primitive[@id='a5']") is None
    assert not [e for e in new.iter() if "a5" in (e.get("rsc") or "") + (e.get("then") or "")]
    assert A.diff(new, want) == []


def test_apply_creates_a_new_vm(tmp_path):
    def with_a6(text):
        return text + ('\n[[vms]]\nname = "a6"\nmemory = 64\nvcpus = 1\nkernel = "/boot/vmlinuz-xen"\n'
                       'disk_size = "16M"\nreplicas = ["n1", "n3"]\npreferred_node = "n3"\n')
    want = A.rendered_configuration(trio_rendering(tmp_path, with_a6))
    changes = A.diff(live_root(), want)
    created = {(c.kind, c.id) for c in changes if c.action == "create"}
    assert {("resource", "a6"), ("resource", "drbd_a6-clone"), ("resource", "lv_a6-clone"),
            ("constraint", "colocation-a6-with-promoted-drbd")} <= created
    assert A.diff(A.patched(live_root(), want, changes), want) == []


def test_apply_for_some_vms_adds_only_those(tmp_path):
    def with_a6_a7(text):
        vm = '\n[[vms]]\nname = "{}"\nmemory = 64\nvcpus = 1\nkernel = "/boot/vmlinuz-xen"\ndisk_size = "16M"\n' \
             'replicas = ["n1", "n3"]\n'
        return text + vm.format("a6") + vm.format("a7")
    rendering = trio_rendering(tmp_path, with_a6_a7)
    live = S.parse_cib(sample("cib_constraints_left.xml")).vms
    want = A.rendered_configuration(rendering, only={"a6"} | set(live))
    created = {c.id for c in A.diff(live_root(), want) if c.action == "create" and c.kind == "resource"}
    assert created == {"a6", "lv_a6-clone", "drbd_a6-clone"}
    assert not [c for c in A.diff(live_root(), want) if c.action == "remove"]


# --- provisioning's file step ---------------------------------------------------------------------------------------
def test_file_step_replaces_only_an_older_xenha_rendering(tmp_path):
    from xenha.provision import node

    old = "# rendered by xenha from trio.toml; do not edit\nmemory = 64\n"
    new = "# rendered by xenha from trio.toml; do not edit\nmemory = 96\n"
    path = tmp_path / "a4.cfg"
    path.write_text(old)
    plain = node.apply({"steps": [{"op": "file", "path": str(path), "text": new}]})
    assert plain["results"][0]["outcome"] == "refused" and path.read_text() == old
    replaced = node.apply({"steps": [{"op": "file", "path": str(path), "text": new, "replace_rendered": True}]})
    assert replaced["results"][0]["outcome"] == "created" and "replaced" in replaced["results"][0]["detail"]
    assert path.read_text() == new
    again = node.apply({"steps": [{"op": "file", "path": str(path), "text": new, "replace_rendered": True}]})
    assert again["results"][0]["outcome"] == "unchanged"
    path.write_text("name = 'mine'\nmemory = 64\n")               # someone's own file: never replaced
    foreign = node.apply({"steps": [{"op": "file", "path": str(path), "text": new, "replace_rendered": True}]})
    assert foreign["results"][0]["outcome"] == "refused" and path.read_text() == "name = 'mine'\nmemory = 64\n"
