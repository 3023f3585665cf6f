"""A lab ends by itself: after its lifetime the supervisor (the power switch with it) stops
every node and exits, so a forgotten lab cannot run for ever."""

from __future__ import annotations

import json
import time

from lab_support import lab_dir, record, require_lab, traces_of  # noqa: F401 - traces_of is a fixture
from xenha_lab.lab import linux


def test_the_lab_stops_by_itself_after_its_lifetime(traces_of):  # noqa: F811
    require_lab()
    from xenha_lab.lab.namespace import NamespaceLab

    lab = NamespaceLab.create(lab_dir("lifetime"), ["n1"], lifetime_s=15.0)
    traces = traces_of(lab.lay.dir)
    try:
        lab.up(timeout=60)
        started = lab.status()["started"]
        traces.note(lab)
        supervisor = lab.supervisor_process()
        inits = [linux.ProcessId.from_json(n["init"]) for n in lab.status()["nodes"]]
        assert supervisor is not None and all(linux.is_alive(p) for p in inits)
        assert linux.wait_gone(supervisor, 60.0), "the supervisor outlived its lifetime"
        record("1 node: lifetime 15 s -> supervisor gone after", time.time() - started)
        assert not any(linux.is_alive(p) for p in inits)
        with open(lab.lay.state_file, encoding="utf-8") as handle:
            events = json.load(handle)["events"]
        assert [e["by"] for e in events if e["what"] == "shutdown"] == ["lifetime over"]
        assert [e["node"] for e in events if e["what"] == "off" and e["by"] == "shutdown"] == ["n1"]
    finally:
        lab.down()
    assert traces.leftovers() == []
