"""The DRBD agent's decisions as pure functions of parsed events2 state."""

import pytest

from xenha.agents.drbd_resource import monitor_verdict, parse_scores, promote_refusal, promotion_score
from xenha.ocf import codes
from xenha.ocf.codes import OcfError
from xenha.tools.drbd import parse_events2

SCORES = (1000, 10000)


def state(role="Secondary", disk="UpToDate", connection="Connected", peer_role="Secondary", replication="Established",
          peer_disk="UpToDate", suspended="no", quorum="yes", done=None):
    lines = [
        f"exists resource name:r role:{role} suspended:{suspended} force-io-failures:no may_promote:no promotion_score:0",
        f"exists device name:r volume:0 minor:1 backing_dev:/dev/vg0/vm_r disk:{disk} client:no open:no quorum:{quorum}",
        f"exists connection name:r peer-node-id:1 conn-name:mk2 connection:{connection} role:{peer_role}",
        f"exists peer-device name:r peer-node-id:1 conn-name:mk2 volume:0 replication:{replication} "
        f"peer-disk:{peer_disk} peer-client:no resync-suspended:no" + (f" done:{done}" if done else ""),
        "exists -",
    ]
    return parse_events2("\n".join(lines))["r"]


# (state arguments, expected monitor code, words in the reason)
TABLE = [
    ({}, codes.SUCCESS, "healthy"),
    ({"role": "Primary"}, codes.RUNNING_PROMOTED, "healthy"),
    ({"connection": "Connecting", "peer_role": "Unknown", "peer_disk": "DUnknown", "replication": "Off"},
     codes.DEGRADED, "mk2 not connected (Connecting)"),
    ({"role": "Primary", "connection": "Connecting", "peer_role": "Unknown", "peer_disk": "DUnknown",
      "replication": "Off"}, codes.DEGRADED_PROMOTED, "not connected"),
    ({"replication": "SyncSource", "peer_disk": "Inconsistent", "done": "37.50"}, codes.DEGRADED,
     "resync SyncSource with mk2 37.5% done"),
    ({"disk": "Inconsistent", "replication": "SyncTarget", "done": "10.00"}, codes.DEGRADED, "local disk Inconsistent"),
    ({"peer_disk": "Outdated"}, codes.DEGRADED, "mk2 disk Outdated"),
    ({"disk": "Outdated", "connection": "Connecting", "peer_disk": "DUnknown", "replication": "Off"},
     codes.DEGRADED, "local disk Outdated"),
    ({"role": "Primary", "suspended": "fencing"}, codes.DEGRADED_PROMOTED, "I/O suspended"),
    ({"quorum": "no"}, codes.DEGRADED, "no quorum"),
    ({"connection": "StandAlone", "peer_role": "Unknown", "peer_disk": "DUnknown", "replication": "Off"},
     codes.ERR_GENERIC, "StandAlone towards mk2"),
    ({"role": "Primary", "connection": "StandAlone", "peer_disk": "DUnknown", "replication": "Off"},
     codes.FAILED_PROMOTED, "split brain"),
    ({"disk": "Diskless"}, codes.ERR_GENERIC, "no local disk (Diskless)"),
    ({"role": "Primary", "disk": "Failed"}, codes.FAILED_PROMOTED, "local disk Failed"),
]


@pytest.mark.parametrize("arguments,expected,words", TABLE, ids=[str(t[0]) for t in TABLE])
def test_monitor_table(arguments, expected, words):
    code, reason = monitor_verdict(state(**arguments))
    assert code == expected and words in reason


def test_not_configured_is_7():
    assert monitor_verdict(None) == (codes.NOT_RUNNING, "not configured")


@pytest.mark.parametrize("arguments,score", [
    ({}, 10000),
    ({"role": "Primary"}, 10000),
    ({"peer_disk": "Outdated"}, 10000),                      # we are the good copy
    ({"connection": "Connecting", "peer_disk": "DUnknown", "replication": "Off"}, 1000),
    ({"replication": "SyncSource", "peer_disk": "Inconsistent"}, 10000),
    ({"disk": "Inconsistent", "replication": "SyncTarget"}, None),
    ({"disk": "Outdated"}, None),
    ({"disk": "Consistent"}, None),
    ({"disk": "Diskless"}, None),
    ({"quorum": "no"}, None),
])
def test_promotion_scores(arguments, score):
    assert promotion_score(state(**arguments), SCORES) == score


def test_promotion_score_of_unconfigured_is_none():
    assert promotion_score(None, SCORES) is None


def test_promote_refusals():
    assert promote_refusal(state()) is None
    assert promote_refusal(state(peer_role="Primary")) is None, "live migration: both UpToDate and connected"
    assert "without UpToDate data" in promote_refusal(state(disk="Outdated"))
    assert "split brain" in promote_refusal(state(peer_role="Primary", connection="Connecting", peer_disk="DUnknown"))
    assert "dual-primary needs both UpToDate" in promote_refusal(state(peer_role="Primary", peer_disk="Inconsistent",
                                                                       replication="SyncSource"))
    assert promote_refusal(state(connection="Connecting", peer_role="Unknown", peer_disk="DUnknown")) is None
    assert promote_refusal(None) == "the resource is not up on this node"


@pytest.mark.parametrize("text,expected", [("1000 10000", (1000, 10000)), ("0 10 1000 10000", (1000, 10000))])
def test_scores_parameter(text, expected):
    assert parse_scores(text) == expected


@pytest.mark.parametrize("text", ["10000 1000", "1 2 3", "a b"])
def test_bad_scores(text):
    with pytest.raises(OcfError):
        parse_scores(text)
