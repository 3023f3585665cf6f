"""Scheduler scenarios: the rendered configuration under Pacemaker's own scheduler.

Each folder here is one scenario (scenario.toml says what it proves). The last step's
crm_simulate text must equal `expected.summary` (golden, reviewed by a person: on a
difference the test fails and prints it; XENHA_BLESS=1 writes the new text for review),
and the checks in scenario.toml are verified on the transition graph and the placement.
"""

import difflib
import os
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO, need_tool
from xenha.cluster import description as desc
from xenha.scenario import Scenario

HERE = Path(__file__).parent
EXAMPLES = REPO / "cluster-config" / "examples"
FOLDERS = sorted(p for p in HERE.iterdir() if (p / "scenario.toml").exists())


# the keys of scenario.toml; anything else is a misspelling that would pass silently
FILE_KEYS = {"proves", "description", "steps", "checks"}


@pytest.fixture(scope="module", params=FOLDERS, ids=[p.name for p in FOLDERS])
def scenario(request):
    need_tool("crm_simulate")
    return Scenario.load(str(request.param), str(EXAMPLES))


@pytest.fixture(scope="module")
def outcome(scenario):
    """The scenario simulated once, for every test of it."""
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


OPERATIONS = {"start", "stop", "promote", "demote", "migrate_to", "migrate_from", "monitor"}


def resource_ids(simulation) -> set:
    root = ET.parse(simulation.cib).getroot()
    return {element.get("id") for element in root.find("configuration/resources").iter()
            if element.tag in ("primitive", "clone", "group")}


def words(simulation, item: str, *kinds) -> list:
    """The words of one check item, each a known operation, resource or node: a misspelt
    name would make a "must not" check pass silently."""
    found = item.split()
    assert len(found) == len(kinds), f"{item!r}: expected {' '.join(kinds)}"
    for word, kind in zip(found, kinds):
        known = {"op": OPERATIONS, "rsc": resource_ids(simulation), "node": set(simulation.nodes)}[kind]
        assert word in known, f"{item!r}: no {kind} {word!r} (known: {sorted(known)})"
    return found


def check_migrations(simulation, last, items):
    for item in items:
        vm, source, target = words(simulation, item, "rsc", "node", "node")
        assert actions(last, "migrate_to", vm, source), f"no migrate_to of {vm} on {source}"
        assert actions(last, "migrate_from", vm, target), f"no migrate_from of {vm} on {target}"


def check_no_migrations(simulation, last, vms):
    for item in vms:
        (vm,) = words(simulation, item, "rsc")
        assert not actions(last, "migrate_to", vm), f"{vm} must not migrate"


def check_no_start(simulation, last, vms):
    for item in vms:
        (vm,) = words(simulation, item, "rsc")
        assert not actions(last, "start", vm), f"{vm} must not be (re)started: {actions(last, 'start', vm)}"


def check_stops(simulation, last, items):
    for item in items:
        vm, node = words(simulation, item, "rsc", "node")
        assert actions(last, "stop", vm, node), f"{vm} must be stopped on {node}"


def check_fenced_before(simulation, last, items):
    for item in items:
        op, rsc, node = words(simulation, item, "op", "rsc", "node")
        (action_id,) = actions(last, op, rsc, node)
        fencing = {a.get("id") for a in last.graph.iter("crm_event") if a.get("operation") == "stonith"}
        assert fencing, "no fencing in the transition"
        assert fencing & ancestors(last, action_id), f"{op} {rsc} on {node} does not wait for fencing"


def check_after(simulation, last, items):
    for item in items:
        first, second = (words(simulation, part, "op", "rsc", "node") for part in item.split(">"))
        (later,) = actions(last, *first)
        (earlier,) = actions(last, *second)
        assert earlier in ancestors(last, later), f"{' '.join(first)} must wait for {' '.join(second)}"


def check_no_promote(simulation, last, items):
    for item in items:
        rsc, node = words(simulation, item, "rsc", "node")
        assert not actions(last, "promote", rsc, node), f"{rsc} must not be promoted on {node}"


def check_final_placement(simulation, last, items):
    placement = simulation.placement()
    for item in items:
        vm, node = words(simulation, item, "rsc", "node")
        assert [n for n, _role in placement.get(vm, [])] == [node], f"{vm} runs on {placement.get(vm)}"


def check_promoted_on(simulation, last, items):
    placement = simulation.placement()
    for item in items:
        rsc, node = words(simulation, item, "rsc", "node")
        assert (node, "Promoted") in placement.get(rsc, []), f"{rsc} not promoted on {node}: {placement.get(rsc)}"


def check_never_on(simulation, last, items):
    placement = simulation.placement()
    for item in items:
        vm, node = words(simulation, item, "rsc", "node")
        for transition in simulation.transitions:
            assert not actions(transition, "start", vm, node) and not actions(transition, "migrate_from", vm, node)
        assert node not in [n for n, _r in placement.get(vm, [])]


def check_graph_migration_limit(simulation, last, value):
    assert last.graph.get("migration-limit") == value


# scenario.toml [checks]: name -> check(simulation, last transition, value)
CHECKS = {
    "migrations": check_migrations, "no_migrations": check_no_migrations, "no_start": check_no_start,
    "stops": check_stops, "fenced_before": check_fenced_before, "after": check_after,
    "no_promote": check_no_promote, "final_placement": check_final_placement, "promoted_on": check_promoted_on,
    "never_on": check_never_on, "graph_migration_limit": check_graph_migration_limit,
}


def run_checks(simulation, last, checks: dict) -> None:
    """Every check named in `checks`; a name that is no check fails before any runs."""
    unknown = sorted(set(checks) - set(CHECKS))
    assert not unknown, f"unknown check(s) {unknown}; the checks are {sorted(CHECKS)}"
    for name, value in checks.items():
        CHECKS[name](simulation, last, value)


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_scenario_file_has_only_known_keys_and_some_checks(folder):
    with open(folder / "scenario.toml", "rb") as handle:
        data = tomllib.load(handle)
    assert set(data) <= FILE_KEYS, f"unknown key(s) {sorted(set(data) - FILE_KEYS)}; the keys are {sorted(FILE_KEYS)}"
    assert data.get("checks"), "a scenario without checks proves only its golden text"


def test_a_misspelt_check_or_name_fails_instead_of_passing(tmp_path):
    cib = tmp_path / "cib.xml"
    cib.write_text('<cib><configuration><resources><primitive id="shaolin"/></resources></configuration></cib>')
    simulation = SimpleNamespace(cib=str(cib), nodes=["mk1", "mk2"])
    with pytest.raises(AssertionError, match=r"unknown check\(s\) \['migration'\]"):
        run_checks(simulation, None, {"migration": ["shaolin mk1 mk2"]})
    with pytest.raises(AssertionError, match="no rsc 'shaoiln'"):
        run_checks(simulation, None, {"no_start": ["shaoiln"]})
    with pytest.raises(AssertionError, match="no node 'mk3'"):
        run_checks(simulation, None, {"no_promote": ["shaolin mk3"]})
    with pytest.raises(AssertionError, match="no op 'strat'"):
        run_checks(simulation, None, {"after": ["strat shaolin mk1 > stop shaolin mk2"]})


def test_checks(scenario, outcome):
    simulation, last = outcome
    run_checks(simulation, last, scenario.checks)


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
