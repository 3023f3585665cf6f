"""Scheduler scenarios: the rendered configuration under Pacemaker's own scheduler.

Each folder here is one scenario (scenario.toml says what it proves). The last step's
crm_simulate text must equal `expected.summary` (golden, reviewed by a person: on a
difference the test fails and prints it; XENHA_BLESS=1 writes the new text for review),
and the checks in scenario.toml are verified on the transition graph and the placement.
"""

import difflib
import os
from pathlib import Path

import pytest

from conftest import REPO, need_tool
from xenha.cluster import description as desc
from xenha.scenario import Scenario

HERE = Path(__file__).parent
EXAMPLES = REPO / "cluster-config" / "examples"
FOLDERS = sorted(p for p in HERE.iterdir() if (p / "scenario.toml").exists())


@pytest.fixture(params=FOLDERS, ids=[p.name for p in FOLDERS])
def scenario(request):
    need_tool("crm_simulate")
    return Scenario.load(str(request.param), str(EXAMPLES))


@pytest.fixture
def outcome(scenario):
    simulation, last = scenario.run(desc.load(scenario.description_file))
    try:
        yield simulation, last
    finally:
        simulation.cleanup()


def actions(transition, operation=None, rsc=None, node=None):
    found = []
    for _sid, tag, op, name, target, action_id, _inputs in transition.actions():
        if tag != "rsc_op":
            continue
        if (operation is None or op == operation) and (rsc is None or name == rsc) and (node is None or target == node):
            found.append(action_id)
    return found


def ancestors(transition, action_id):
    """Every action id that `action_id` waits for, directly or through others."""
    inputs = {}
    for synapse in transition.graph.iter("synapse"):
        triggers = {child.get("id") for trigger in synapse.iter("trigger") for child in trigger}
        for action in synapse.find("action_set"):
            inputs.setdefault(action.get("id"), set()).update(triggers)
    seen, todo = set(), [action_id]
    while todo:
        for parent in inputs.get(todo.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_summary_matches_golden(scenario, outcome):
    _simulation, last = outcome
    actual = last.summary
    golden = Path(scenario.golden_path)
    if os.environ.get("XENHA_BLESS") == "1":
        golden.write_text(actual)
    if not golden.exists():
        pytest.fail(f"no golden summary for {scenario.name}; review this and bless it:\n{actual}")
    expected = golden.read_text()
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            "expected.summary", "crm_simulate"))
        pytest.fail(f"{scenario.name}: the scheduler decides differently now:\n{diff}")


def test_checks(scenario, outcome):
    simulation, last = outcome
    checks = scenario.checks
    placement = simulation.placement()
    for item in checks.get("migrations", []):
        vm, source, target = item.split()
        assert actions(last, "migrate_to", vm, source), f"no migrate_to of {vm} on {source}"
        assert actions(last, "migrate_from", vm, target), f"no migrate_from of {vm} on {target}"
    for vm in checks.get("no_migrations", []):
        assert not actions(last, "migrate_to", vm), f"{vm} must not migrate"
    for vm in checks.get("no_start", []):
        assert not actions(last, "start", vm), f"{vm} must not be (re)started: {actions(last, 'start', vm)}"
    for item in checks.get("stops", []):
        vm, node = item.split()
        assert actions(last, "stop", vm, node), f"{vm} must be stopped on {node}"
    for item in checks.get("fenced_before", []):
        op, rsc, node = item.split()
        (action_id,) = actions(last, op, rsc, node)
        fencing = {a.get("id") for a in last.graph.iter("crm_event") if a.get("operation") == "stonith"}
        assert fencing, "no fencing in the transition"
        assert fencing & ancestors(last, action_id), f"{op} {rsc} on {node} does not wait for fencing"
    for item in checks.get("after", []):
        first, second = (part.split() for part in item.split(">"))
        (later,) = actions(last, *first)
        (earlier,) = actions(last, *second)
        assert earlier in ancestors(last, later), f"{' '.join(first)} must wait for {' '.join(second)}"
    for item in checks.get("no_promote", []):
        rsc, node = item.split()
        assert not actions(last, "promote", rsc, node), f"{rsc} must not be promoted on {node}"
    for item in checks.get("final_placement", []):
        vm, node = item.split()
        assert [n for n, _role in placement.get(vm, [])] == [node], f"{vm} runs on {placement.get(vm)}"
    for item in checks.get("promoted_on", []):
        rsc, node = item.split()
        assert (node, "Promoted") in placement.get(rsc, []), f"{rsc} not promoted on {node}: {placement.get(rsc)}"
    for item in checks.get("never_on", []):
        vm, node = item.split()
        for transition in simulation.transitions:
            assert not actions(transition, "start", vm, node) and not actions(transition, "migrate_from", vm, node)
        assert node not in [n for n, _r in placement.get(vm, [])]
    if "graph_migration_limit" in checks:
        assert last.graph.get("migration-limit") == checks["graph_migration_limit"]


def test_at_the_end_every_vm_is_active_on_at_most_one_of_its_replicas(scenario, outcome):
    simulation, _last = outcome
    description = desc.load(scenario.description_file)
    placement = simulation.placement()
    for vm in description.vms:
        nodes = [n for n, _role in placement.get(vm.name, [])]
        assert len(nodes) <= 1, f"{vm.name} active on {nodes}"
        assert set(nodes) <= set(vm.replicas), f"{vm.name} on a non-replica node: {nodes}"


def test_the_final_cluster_state_verifies(scenario, outcome):
    import subprocess
    simulation, _last = outcome
    checked = subprocess.run(["crm_verify", "-x", simulation.cib, "-V"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
