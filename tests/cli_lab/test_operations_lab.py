"""The operator commands end to end against a live cluster: one 3-node lab for the whole
module (tests/cli_lab/trio.toml: five small VMs on n1/n2, `big` and `c1` on n2/n3),
provisioned by `xenha provision` itself, then, in order: provision again (nothing
changes), status (healthy, degraded, failed), migrate (each pre-flight refusal with its
reason, then a live one), drain of n1 with five VMs under migration-limit=1 against its
dry-run plan, undrain, apply after a description edit, simulate --live, bad input.
`xenha` runs inside node n1, as an administrator runs it on a cluster node; the other
nodes are reached by root ssh."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lab"))
from xenha_lab.lab.layout import NODE_SHARED  # noqa: E402
from lab_support import lab_dir, record, require_lab, traces_of  # noqa: E402,F401 - traces_of is a fixture

TRIO = Path(__file__).resolve().parent / "trio.toml"
SMALL = ["a1", "a2", "a3", "a4", "a5"]


@pytest.fixture(scope="module")
def lab(traces_of):  # noqa: F811 - the fixture imported above
    require_lab()
    from xenha_lab.lab.namespace import NamespaceLab

    directory = lab_dir("cli")
    backend = NamespaceLab.from_description(directory, str(TRIO), lifetime_s=1800)
    traces = traces_of(backend.lay.dir)
    try:
        timings = backend.up(timeout=180)
        record("cli lab: 3 nodes online", timings["online"] - timings["cleanup"])
        # the lab's nodes share two busy cores: without this, Pacemaker throttles itself to
        # one action at a time ("High CPU load detected") and starting 7 VMs takes minutes
        backend.cluster.set_property("load-threshold", "2000%")
        # in the lab's shared directory: the nodes see it (at NODE_SHARED), whatever they
        # hide of the host (a node's /root is its own, and the checkout may be under /root)
        work = Path(backend.lay.shared) / "cli"
        work.mkdir(exist_ok=True)
        shutil.copy(TRIO, work / "trio.toml")       # its allocation file is written next to it
        backend.description_copy = str(work / "trio.toml")
        backend.node_paths = (str(work), f"{NODE_SHARED}/cli")
        yield backend
    finally:
        traces.note(backend)
        backend.down()


def in_node(lab, argv) -> list[str]:
    """argv with the host's paths of the shared work directory as the nodes see them."""
    host, node = lab.node_paths
    return [node + str(a)[len(host):] if str(a).startswith(host) else str(a) for a in argv]


def xenha(lab, *args, node: str = "n1", timeout: float = 300.0):
    return lab.run(node, in_node(lab, ["xenha", *args]), timeout=timeout)


def status_json(lab, node: str = "n1") -> tuple[int, dict]:
    result = xenha(lab, "status", "--json", node=node, timeout=60)
    assert result.returncode in (0, 3), result.describe()
    return result.returncode, json.loads(result.stdout)


def wait_for(lab, what, predicate, timeout=60.0):
    return lab.cluster.wait(what, predicate, timeout=timeout, interval=0.5)


def healthy(lab, timeout: float = 90.0) -> dict:
    """Until `xenha status` says all is well (failed actions cleaned up first)."""
    lab.cluster.run(["crm_resource", "--cleanup"], timeout=60)
    last = {}

    def ok():
        code, data = status_json(lab)
        last["attention"] = data["attention"]
        return data if code == 0 else None
    try:
        return wait_for(lab, "a healthy cluster", ok, timeout)
    except Exception as error:
        raise AssertionError(f"{error}; still: {[a['text'] for a in last.get('attention', [])]}") from None


def vm_view(data: dict, name: str) -> dict:
    return next(vm for vm in data["vms"] if vm["name"] == name)


def domid(lab, node: str, name: str) -> str | None:
    for line in lab.check(node, ["xl", "list"]).stdout.splitlines()[1:]:
        if line.split()[0] == name:
            return line.split()[1]
    return None


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- provision ------------------------------------------------------------------------------------------------------
def test_provision_from_nothing(lab):
    started = time.monotonic()
    result = xenha(lab, "provision", lab.description_copy, timeout=600)
    assert result.ok, result.describe()
    assert "provisioned" in result.stdout and "created" in result.stdout
    for vm in SMALL + ["big", "c1"]:
        lab.cluster.wait_started(vm, timeout=180)
    record("cli: xenha provision of 7 VMs until all run", time.monotonic() - started)
    lab.cluster.wait_idle(timeout=120)


def test_provision_again_changes_nothing(lab):
    before = lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout
    result = xenha(lab, "provision", lab.description_copy, timeout=300)
    assert result.ok, result.describe()
    assert "nothing to do" in result.stdout and "created" not in result.stdout
    assert lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout == before


# --- status ---------------------------------------------------------------------------------------------------------
def test_status_healthy(lab):
    code, data = status_json(lab)
    assert code == 0 and data["ok"] and data["attention"] == [], data["attention"]
    assert data["schema"] == 1 and data["quorum"] and data["dc"] in ("n1", "n2", "n3")
    vms = {vm["name"]: vm for vm in data["vms"]}
    assert sorted(vms) == sorted(SMALL + ["big", "c1"])
    for name in SMALL:
        assert vms[name]["state"] == "running" and vms[name]["node"] == "n1"
        assert [r["node"] for r in vms[name]["replicas"]] == ["n1", "n2"]
        for replica in vms[name]["replicas"]:
            assert replica["role"] == "Primary" and replica["disk"] == "UpToDate"
            assert set(replica["connections"].values()) == {"Connected"}
    assert vms["big"]["node"] == "n3" and vms["c1"]["node"] == "n2"
    on_n1 = next(r for r in vms["a1"]["replicas"] if r["node"] == "n1")
    assert [d["name"] for d in on_n1["domain"]] == ["a1"] and on_n1["domain"][0]["state"] in ("running", "blocked")
    text = xenha(lab, "status", timeout=60)
    assert text.returncode == 0 and "all healthy" in text.stdout
    watched = lab.run("n1", ["timeout", "--preserve-status", "-s", "INT", "6", "xenha", "status", "--watch",
                             "--json", "--interval", "1"], timeout=60)
    assert watched.returncode == 0, watched.describe()            # Ctrl-C ends it with the last verdict
    views = [json.loads(line) for line in watched.stdout.splitlines() if line.strip()]
    assert len(views) >= 2 and all(v["ok"] for v in views)


def test_status_and_provision_with_an_unreachable_node(lab):
    bad_ssh = "XENHA_SSH=ssh -o BatchMode=yes -o ConnectTimeout=2 -p 1"
    result = lab.run("n1", ["env", bad_ssh, "xenha", "status", "--json"], timeout=60)
    assert result.returncode == 3, result.describe()
    data = json.loads(result.stdout)
    unreachable = {a["subject"] for a in data["attention"] if a["kind"] == "node-unreachable"}
    assert unreachable == {"n2", "n3"}
    assert [n["reachable"] for n in data["nodes"]] == [True, False, False]
    before = lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout
    refused = lab.run("n1", in_node(lab, ["env", bad_ssh, "xenha", "provision", lab.description_copy]), timeout=120)
    assert refused.returncode == 1 and "provisioning stopped" in one_line_error(refused)
    assert lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout == before


def test_bad_input_is_one_line_and_changes_nothing(lab):
    before = lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout
    for args, words in ((("migrate", "nope", "n2"), "unknown VM 'nope'"), (("migrate", "a1", "n9"), "unknown node 'n9'"),
                        (("drain", "n9"), "unknown node 'n9'"), (("undrain", "n9"), "unknown node 'n9'"),
                        (("apply", "/nonexistent.toml"), "no such file"),
                        (("provision", "/nonexistent.toml"), "no such file"),
                        (("simulate", "--live", "standby n9"), "unknown node 'n9'")):
        result = xenha(lab, *args, timeout=60)
        assert result.returncode == 2, (args, result.describe())
        assert words in one_line_error(result), (args, result.stderr)
    broken = Path(lab.description_copy).with_name("broken.toml")
    broken.write_text(Path(lab.description_copy).read_text().replace('replicas = ["n2", "n3"]', 'replicas = ["n2", "n7"]'))
    result = xenha(lab, "apply", str(broken), timeout=60)
    assert result.returncode == 2 and "n7" in one_line_error(result)
    assert lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout == before


# --- migrate --------------------------------------------------------------------------------------------------------
def refused(lab, vm, node, check):
    result = xenha(lab, "migrate", vm, node, timeout=120)
    assert result.returncode == 3, result.describe()
    line = one_line_error(result)
    assert line.startswith(f"xenha: not migrating {vm} to {node}: "), line
    failing = [row.split()[1] for row in result.stdout.splitlines() if row.strip().startswith("FAIL")]
    assert check in failing, result.stdout
    return line, result.stdout


def test_migrate_refused_by_each_check(lab):
    line, _out = refused(lab, "a1", "n3", "replica")
    assert "n3 is not a replica of a1" in line
    line, out = refused(lab, "big", "n2", "memory")
    assert "MiB free, big needs 15000 MiB" in line
    lab.check("n2", ["mv", "/etc/xen/a1.cfg", "/etc/xen/a1.cfg.aside"])
    try:
        line, _out = refused(lab, "a1", "n2", "config")
        assert "/etc/xen/a1.cfg is missing on n2" in line
    finally:
        lab.check("n2", ["mv", "/etc/xen/a1.cfg.aside", "/etc/xen/a1.cfg"])
    # a1's migration transport pointed at a port where n2 has no sshd (a reloadable
    # parameter: a1 keeps running): the migration address does not answer through it
    # from the source, and that check alone fails (the CLI itself still reaches n2)
    a1 = ["crm_resource", "--resource", "a1"]
    before = lab.cluster.run([*a1, "--get-parameter", "migration_transport"]).stdout.strip()
    assert before.startswith("ssh"), before
    lab.cluster.run([*a1, "--set-parameter", "migration_transport", "--parameter-value", f"{before} -p 2"])
    try:
        line, out = refused(lab, "a1", "n2", "migration-address")
        assert f"n2 does not answer from n1 through `{before} -p 2`" in line, line
        failing = [row.split()[1] for row in out.splitlines() if row.strip().startswith("FAIL")]
        assert failing == ["migration-address"], out
    finally:
        lab.cluster.run([*a1, "--set-parameter", "migration_transport", "--parameter-value", before])
    lab.cluster.wait_idle(timeout=60)
    lab.check("n2", ["drbdadm", "disconnect", "vm_a2"])
    try:
        line, _out = refused(lab, "a2", "n2", "drbd")
        assert "DRBD vm_a2 on n2 is not connected" in line
    finally:
        # connect, the inverse of the disconnect (the simulator's `drbdadm adjust` here runs
        # drbdmeta apply-al on the attached disk and fails: noted for the simulator's owner).
        # Pacemaker may have restarted drbd_a2 on n2 meanwhile (the fence-peer race: n1's
        # constraint demotes n2), which connects it again: then this connect is refused,
        # and the wait below is what counts
        lab.run("n2", ["drbdadm", "connect", "vm_a2"])
    wait_for(lab, "vm_a2 connected again", lambda: all(
        set(r.get("connections", {}).values()) == {"Connected"} for r in vm_view(status_json(lab)[1], "a2")["replicas"]))
    # with fencing resource-and-stonith both Primaries froze I/O and ran fence-peer; the one
    # whose handler lost stays frozen until the peer is back: DRBD then resumes it itself
    wait_for(lab, "vm_a2's I/O resumed", lambda: ("drbd-io-suspended", "a2") not in {
        (a["kind"], a["subject"]) for a in status_json(lab)[1]["attention"]})
    lab.cluster.run(["crm_resource", "--fail", "--resource", "a3", "--node", "n1"])
    wait_for(lab, "a3's failure recorded", lambda: any(
        f["resource"] == "a3" for f in status_json(lab)[1]["failed_actions"]))
    # (while Pacemaker recovers a3 the "running on one node" check may fail first: the
    # one-line error names the first failing check, the table lists them all)
    _line, out = refused(lab, "a3", "n2", "no-failures")
    assert "failed actions pending: a3" in " ".join(out.split())
    lab.cluster.wait_started("a3", timeout=60)
    healthy(lab)
    line, _out = refused(lab, "a1", "n1", "elsewhere")
    assert "a1 already runs on n1" in line
    lab.cluster.run(["crm_resource", "--ban", "--resource", "a4", "--node", "n2"])
    try:
        line, _out = refused(lab, "a4", "n2", "no-moves")
        assert "cli-ban-a4-on-n2" in line
    finally:
        lab.cluster.run(["crm_resource", "--clear", "--resource", "a4"])
    lab.cluster.run(["crm_resource", "--resource", "a5", "--meta", "--set-parameter", "target-role",
                     "--parameter-value", "Stopped"])
    try:
        wait_for(lab, "a5 stopped", lambda: vm_view(status_json(lab)[1], "a5")["state"] == "stopped")
        line, _out = refused(lab, "a5", "n2", "running")
        assert "a5 is stopped" in line
    finally:
        lab.cluster.run(["crm_resource", "--resource", "a5", "--meta", "--delete-parameter", "target-role"])
    lab.cluster.wait_started("a5", timeout=60, on="n1")
    healthy(lab)


def test_migrate_live_and_back(lab):
    data = healthy(lab)
    assert vm_view(data, "a1")["node"] == "n1"
    dry = xenha(lab, "migrate", "a1", "n2", "--dry-run", "--json", timeout=120)
    assert dry.ok, dry.describe()
    assert all(check["ok"] for check in json.loads(dry.stdout)["checks"])
    assert domid(lab, "n1", "a1") is not None and domid(lab, "n2", "a1") is None       # nothing moved
    result = xenha(lab, "migrate", "a1", "n2", timeout=300)
    assert result.ok, result.describe()
    assert "a1 runs on n2" in result.stdout and "cleared cli-prefer-a1" in result.stdout
    data = status_json(lab)[1]
    assert vm_view(data, "a1")["node"] == "n2" and data["move_constraints"] == []
    assert domid(lab, "n2", "a1") is not None and domid(lab, "n1", "a1") is None
    back = xenha(lab, "migrate", "a1", "n1", "--json", timeout=300)
    assert back.ok, back.describe()
    record("cli: xenha migrate a1 n2 -> n1 (move, wait, clear)", json.loads(back.stdout)["seconds"])
    assert vm_view(healthy(lab), "a1")["node"] == "n1"


# --- drain ----------------------------------------------------------------------------------------------------------
def test_drain_follows_its_plan(lab):
    data = healthy(lab)
    # when n2 disconnected vm_a2 above, n2's fence-peer may have won the race: Pacemaker then
    # followed its constraint and moved a2 to n2. The drain starts from all five on n1.
    for vm in SMALL:
        if vm_view(data, vm)["node"] != "n1":
            back = xenha(lab, "migrate", vm, "n1", timeout=300)
            assert back.ok, back.describe()
    healthy(lab)
    dry = xenha(lab, "drain", "n1", "--dry-run", "--json", timeout=120)
    assert dry.ok, dry.describe()
    planned = json.loads(dry.stdout)
    plan = {p["resource"]: (p["action"], p["from"], p["to"]) for p in planned["plan"]["vms"]}
    assert plan == {vm: ("Migrate", "n1", "n2") for vm in SMALL}, json.dumps(planned, indent=1)
    assert status_json(lab)[0] == 0                               # the dry run changed nothing
    started = time.monotonic()
    # a bounded wait first (10 s: five migrations one after the other take longer here),
    # then `xenha drain` again follows what is left: the drain is the cluster's
    first = xenha(lab, "drain", "n1", "--json", "--timeout", "10", timeout=120)
    assert first.returncode in (0, 3), first.describe()
    first_report = json.loads(first.stdout)
    happened = {m["vm"]: (m["from"], m["to"], m["outcome"]) for m in first_report["moves"] if m["outcome"] != "pending"}
    assert set(m["vm"] for m in first_report["moves"]) == set(SMALL) and not first_report["already_in_standby"]
    if first.returncode == 3:
        assert not first_report["empty"] and not first_report["ok"]
        result = xenha(lab, "drain", "n1", "--json", timeout=600)
        assert result.ok, result.describe()
        report = json.loads(result.stdout)
        # what is still on n1 (a VM that finished moving in between is in neither report)
        assert report["already_in_standby"] and set(m["vm"] for m in report["moves"]) <= set(SMALL) - set(happened)
        happened.update({m["vm"]: (m["from"], m["to"], m["outcome"]) for m in report["moves"]})
    else:
        report = first_report
    record("cli: xenha drain of n1 (5 VMs, migration-limit=1)", time.monotonic() - started)
    assert report["empty"] and report["ok"]
    assert all(happened[vm] == ("n1", plan[vm][2], "moved") for vm in happened)
    assert {vm: vm_view(status_json(lab)[1], vm)["node"] for vm in SMALL} == {vm: plan[vm][2] for vm in SMALL}
    # status while drained: n1 in standby, the DRBD peers on n1 are down (degraded)
    code, data = status_json(lab)
    kinds = {(a["kind"], a["subject"]) for a in data["attention"]}
    assert code == 3 and ("node-standby", "n1") in kinds and ("drbd-connection", "a1") in kinds
    assert next(n for n in data["nodes"] if n["name"] == "n1")["standby"]
    again = xenha(lab, "drain", "n1", "--json", timeout=120)
    assert again.ok and json.loads(again.stdout)["already_in_standby"]
    line, _out = refused(lab, "a1", "n1", "target-available")
    assert "n1 is in standby" in line
    undrained = xenha(lab, "undrain", "n1", timeout=60)
    assert undrained.ok and "n1 is out of standby" in undrained.stdout
    assert "nothing changed" in xenha(lab, "undrain", "n1", timeout=60).stdout
    wait_for(lab, "n1's DRBD peers connected again", lambda: all(
        set(r.get("connections", {}).values()) == {"Connected"} for vm in SMALL
        for r in vm_view(status_json(lab)[1], vm)["replicas"]), timeout=120)
    data = healthy(lab, timeout=120)
    assert {vm_view(data, vm)["node"] for vm in SMALL} == {"n2"}     # stickiness keeps them there


# --- status in degraded and failed states ----------------------------------------------------------------------------
def test_status_fencing_constraint_and_failure(lab):
    constraint = ('<rsc_location rsc="drbd_c1-clone" id="drbd-fence-by-handler-vm_c1-drbd_c1-clone">'
                  '<rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-vm_c1-rule-drbd_c1-clone">'
                  '<expression attribute="#uname" operation="ne" value="n2" '
                  'id="drbd-fence-by-handler-vm_c1-expr-1-drbd_c1-clone"/></rule></rsc_location>')
    lab.cluster.run(["cibadmin", "--create", "-o", "constraints", "-X", constraint])
    try:
        code, data = status_json(lab)
        assert code == 3
        assert [(c["id"], c["node"]) for c in data["fencing_constraints"]] == [
            ("drbd-fence-by-handler-vm_c1-drbd_c1-clone", "n2")]
        assert "fencing-constraint" in {a["kind"] for a in data["attention"]}
    finally:
        lab.cluster.run(["cibadmin", "--delete", "-X",
                         '<rsc_location id="drbd-fence-by-handler-vm_c1-drbd_c1-clone"/>'])
    lab.cluster.run(["crm_resource", "--fail", "--resource", "c1", "--node", "n2"])
    data = wait_for(lab, "c1's failure in the status", lambda: (
        lambda d: d if any(f["resource"] == "c1" for f in d["failed_actions"]) else None)(status_json(lab)[1]))
    assert not data["ok"] and "failed-action" in {a["kind"] for a in data["attention"]}
    text = xenha(lab, "status", timeout=60)
    assert text.returncode == 3 and "needs attention" in text.stdout and "c1" in text.stdout
    lab.cluster.wait_started("c1", timeout=60)
    healthy(lab)


# --- apply -----------------------------------------------------------------------------------------------------------
def test_apply_a_memory_change_without_restart(lab):
    path = Path(lab.description_copy)
    text = path.read_text()
    at = text.index('name = "a4"')
    path.write_text(text[:at] + text[at:].replace("memory = 64", "memory = 96", 1))
    node = vm_view(healthy(lab), "a4")["node"]
    before = domid(lab, node, "a4")
    dry = xenha(lab, "apply", str(path), "--dry-run", timeout=120)
    assert dry.ok and "~ resource a4: utilization memory 64 -> 96" in dry.stdout and "nothing changed" in dry.stdout
    assert 'value="64"' in lab.check("n1", ["cibadmin", "--query", "--xpath", "//primitive[@id='a4']/utilization"]).stdout
    result = xenha(lab, "apply", str(path), timeout=120)
    assert result.ok and "applied in one CIB transaction: 1 to change" in result.stdout, result.describe()
    assert 'value="96"' in lab.check("n1", ["cibadmin", "--query", "--xpath", "//primitive[@id='a4']/utilization"]).stdout
    lab.cluster.wait_idle(timeout=60)
    assert domid(lab, node, "a4") == before                      # not restarted, not moved
    assert "nothing to do" in xenha(lab, "apply", str(path), timeout=120).stdout


def test_apply_refuses_to_remove_a_running_vm(lab):
    path = Path(lab.description_copy)
    text = path.read_text()
    start = text.index('[[vms]]\nname = "a5"')
    end = text.index("[[vms]]", start + 5)
    fewer = path.with_name("fewer.toml")
    fewer.write_text(text[:start] + text[end:])
    shutil.copy(path.with_name("trio.alloc.toml"), path.with_name("fewer.alloc.toml"))
    before = lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout
    dry = xenha(lab, "apply", str(fewer), "--dry-run", timeout=120)
    assert dry.ok and "- resource a5" in dry.stdout and "- resource drbd_a5-clone" in dry.stdout
    result = xenha(lab, "apply", str(fewer), timeout=120)
    assert result.returncode == 3 and "refusing to remove running VMs a5" in one_line_error(result)
    assert lab.check("n1", ["cibadmin", "--query", "--scope", "configuration"]).stdout == before


# --- provision: interrupted, resumed --------------------------------------------------------------------------------
def test_provision_interrupted_then_resumed(lab):
    path = Path(lab.description_copy)
    path.write_text(path.read_text() + '\n[[vms]]\nname = "d1"\nmemory = 64\nvcpus = 1\nkernel = "/boot/vmlinuz-xen"\n'
                    'disk_size = "256M"\nreplicas = ["n1", "n3"]\npreferred_node = "n3"\n')
    killed = lab.run("n1", in_node(lab, ["timeout", "-s", "KILL", "4", "xenha", "provision", str(path), "d1"]), timeout=60)
    assert killed.returncode in (137, -9), killed.describe()         # killed half-way
    time.sleep(3)                                                   # what it had started on the nodes ends
    result = xenha(lab, "provision", str(path), "d1", timeout=600)
    assert result.ok, result.describe()
    assert lab.cluster.wait_started("d1", timeout=180) == "n3"
    data = healthy(lab, timeout=120)
    assert [r["disk"] for r in vm_view(data, "d1")["replicas"]] == ["UpToDate", "UpToDate"]
    # a4's memory was changed by test_apply_...: its xl config (xenha's older rendering) is replaced
    again = xenha(lab, "provision", str(path), timeout=300)
    assert again.ok and "n1: file /etc/xen/a4.cfg: created" in again.stdout, again.describe()
    assert "memory = 96" in lab.check("n2", ["cat", "/etc/xen/a4.cfg"]).stdout
    third = xenha(lab, "provision", str(path), timeout=300)
    assert third.ok and "nothing to do" in third.stdout, third.describe()


def test_provision_skipping_the_initial_sync(lab):
    path = Path(lab.description_copy)
    path.write_text(path.read_text() + '\n[[vms]]\nname = "e1"\nmemory = 64\nvcpus = 1\nkernel = "/boot/vmlinuz-xen"\n'
                    'disk_size = "64M"\nreplicas = ["n2", "n3"]\npreferred_node = "n2"\n')
    result = xenha(lab, "provision", str(path), "e1", "--skip-initial-sync", timeout=600)
    assert result.ok and "drbd-initial-sync vm_e1: created" in result.stdout, result.describe()
    assert lab.cluster.wait_started("e1", timeout=180) == "n2"
    data = healthy(lab, timeout=120)
    assert [r["disk"] for r in vm_view(data, "e1")["replicas"]] == ["UpToDate", "UpToDate"]
    # one data generation on both replicas, reached without a resync: neither node ever
    # ran a resync handler for vm_e1 (the simulated kernel's record of its helper calls)
    generations = {node: lab.check(node, ["drbdadm", "get-gi", "vm_e1"]).stdout.split(":")[0] for node in ("n2", "n3")}
    assert len(set(generations.values())) == 1 and "0000000000000004" not in generations.values(), generations
    for node in ("n2", "n3"):
        helpers = lab.check(node, ["cat", "/run/xenha-sim/drbd/helpers"]).stdout
        assert not [line for line in helpers.splitlines() if "name:vm_e1 " in line and "resync-target" in line]
    again = xenha(lab, "provision", str(path), "e1", "--skip-initial-sync", timeout=300)
    assert again.ok and "nothing to do" in again.stdout, again.describe()


# --- simulate --live --------------------------------------------------------------------------------------------------
def test_simulate_live(lab):
    result = xenha(lab, "simulate", "--live", "standby n2", timeout=120)
    assert result.ok, result.describe()
    assert "Transition Summary:" in result.stdout and re.search(r"\* Migrate\s+c1\s+\(\s*n2 -> n3 \)", result.stdout)
    assert status_json(lab)[0] == 0                                # the live cluster did not change
