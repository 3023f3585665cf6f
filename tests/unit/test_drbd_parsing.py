"""DRBD state parsing against the verbatim samples (events2 golden outputs of drbd-utils'
tests, a status --json capture, /proc/drbd captures)."""

import pytest

from conftest import sample
from xenha.tools.drbd import DrbdError, parse_events2, parse_proc_drbd



def block(name, marker, occurrence=0):
    text = sample(name)
    found = [i for i, line in enumerate(text.splitlines()) if line.startswith("$ ") and marker in line]
    lines = text.splitlines()[found[occurrence] + 1:]
    out = []
    for line in lines:
        if line.strip() in ("0", "1") or line.startswith(("$ ", "#", "=====")):
            break
        out.append(line)
    return "\n".join(out)


def test_resource_exists_line():
    (state,) = parse_events2(block("drbd9_events2.txt", "resource_exists")).values()
    assert (state.name, state.role, state.may_promote, state.promotion_score) == ("some-resource", "Secondary",
                                                                                  False, 0)


def test_create_change_stream_replays_to_the_final_state():
    state = parse_events2(block("drbd9_events2.txt", "events2-all-create-change.msgs | drbdsetup_instrumented events2;"))[
        "some-resource"]
    assert state.primary and state.all_local_up_to_date()
    assert state.devices[0].minor == 1000 and state.devices[0].backing_dev == "/dev/sda"
    (connection,) = state.connections.values()
    assert connection.connected and connection.peer_role == "Secondary" and connection.name == "some-peer"
    (peer,) = state.peer_devices.values()
    assert (peer.replication, peer.peer_disk) == ("Established", "UpToDate")


def test_diff_form_keeps_new_values():
    state = parse_events2(block("drbd9_events2.txt", "--diff"))["some-resource"]
    assert state.role == "Primary" and state.devices[0].disk == "UpToDate"
    assert state.promotion_score == 10102


def test_resync_progress_from_upstream_golden():
    state = parse_events2(block("drbd_12_upstream_golden_outputs.txt", "drbdsetup_events2_instrumented; echo"))[
        "some-resource"]
    (peer,) = state.peer_devices.values()
    assert peer.resyncing and peer.replication == "SyncSource" and peer.peer_disk == "Inconsistent"
    assert peer.done == 37.5


def test_helper_and_timestamp_lines_are_tolerated():
    text = block("drbd_12_upstream_golden_outputs.txt", "--timestamps").replace("TIME ", "2026-11-25T10:00:00.000000+00:00 ")
    state = parse_events2(text)["some-resource"]
    assert state.connections[1].state == "StandAlone"


def test_older_golden_without_open_key():
    state = parse_events2(block("drbd_12_upstream_golden_outputs.txt", "events2-all-create-helper.msgs | drbdsetup_events2_instrumented; echo"))[
        "some-resource"]
    assert state.devices[0].open is None and state.devices[0].disk == "Diskless"


def test_garbage_is_an_error():
    with pytest.raises(DrbdError):
        parse_events2("No currently configured DRBD found.\n")


def test_proc_drbd_84():
    text = sample("drbd84_proc_drbd.txt")
    a = text.split("## (A)")[1].split("## (B)")[0]
    states = parse_proc_drbd(a)
    assert sorted(states) == [0, 1, 4, 6, 8]
    assert states[0].primary and states[0].connections[1].connected
    assert states[4].connections[1].state == "Connecting" and states[4].peer_devices[(1, 0)].peer_disk == "DUnknown"
    assert states[6].devices[0].disk == "Diskless"
    assert states[8].connections[1].state == "StandAlone"
    b = parse_proc_drbd(text.split("## (B)")[1].split("## (C)")[0])
    assert b[5].peer_devices[(1, 0)].resyncing and b[5].peer_devices[(1, 0)].done == 68.5
    c = parse_proc_drbd(text.split("## (C)")[1].split("## (D)")[0])
    assert c[0].primary and c[0].connections[1].peer_role == "Primary"
    assert parse_proc_drbd(text.split("## (D)")[1]) == {}
