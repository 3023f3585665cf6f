"""`make demo`'s scenario answers as expected (both parts), run in-process."""

from conftest import need_tool
from xenha_lab import demo_agents as demo


def test_demo_agent_part(sim_hosts):
    events = []
    assert demo.run(lambda kind, payload: events.append((kind, payload)))
    steps = [p for kind, p in events if kind == "step"]
    assert [s.call.rc for s in steps] == [7, 7, 0, 0, 0, 0, 0, 0, 1, 0, 7, 0, 7]
    notes = [p for kind, p in events if kind == "note"]
    assert "the same guest kept running (live migration)" in notes[0]


def test_demo_scheduler_part():
    need_tool("crm_simulate")
    events = []
    assert demo.run_scheduler(lambda kind, payload: events.append((kind, payload)))
    transitions = {p["step"]: p["lines"] for kind, p in events if kind == "transition"}
    assert any(line.startswith("Migrate    shaolin") for line in transitions["standby mk1"])
    assert transitions["fail mk2"][0].startswith("Fence (reboot) mk2")
