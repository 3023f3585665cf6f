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
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lab"))
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
        work = Path(directory) / "cli"
        work.mkdir(exist_ok=True)
        shutil.copy(TRIO, work / "trio.toml")       # its allocation file is written next to it
        backend.description_copy = str(work / "trio.toml")
        yield backend
    finally:
        traces.note(backend)
        backend.down()


def xenha(lab, *args, node: str = "n1", timeout: float = 300.0):
    return lab.run(node, ["xenha", *args], timeout=timeout)


def status_json(lab, node: str = "n1") -> tuple[int, dict]:
    result = xenha(lab, "status", "--json", node=node, timeout=60)
    assert result.returncode in (0, 3), result.describe()
    return result.returncode, json.loads(result.stdout)


def wait_for(lab, what, predicate, timeout=60.0):
    return lab.cluster.wait(what, predicate, timeout=timeout, interval=0.5)


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
