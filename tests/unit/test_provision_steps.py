"""Provisioning's initial-sync step (xenha.provision.node, "drbd-initial-sync" with and
without "skip") and phase (cluster.Provisioner.initial_sync): when a new resource's
initial sync is started or skipped (`--skip-initial-sync`), when a second run is
`unchanged`, what is refused or failed. The DRBD driver is a stand-in that keeps the
replicas' disk states; the provisioner's requests go through node.apply as JSON, as
over ssh."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from conftest import REPO
from xenha.provision import cluster, node
from xenha.tools.drbd import DrbdError, parse_events2

TRIO = REPO / "tests" / "cli_lab" / "trio.toml"


def events(resource, disk, connection, peer, peer_disk, replication):
    """`drbdsetup events2 --now RES` of one replica with one peer."""
    return (f"exists resource name:{resource} role:Secondary suspended:no\n"
            f"exists connection name:{resource} peer-node-id:1 conn-name:{peer} connection:{connection} "
            "role:Secondary\n"
            f"exists device name:{resource} volume:0 minor:10 disk:{disk} client:no quorum:yes\n"
            f"exists peer-device name:{resource} peer-node-id:1 conn-name:{peer} volume:0 "
            f"replication:{replication} peer-disk:{peer_disk} peer-client:no resync-suspended:no\nexists -\n")


class Finished:
    """A finished command as runner.CommandResult carries it (what DrbdError reads)."""

    def __init__(self, returncode, stderr):
        self.returncode, self.stderr, self.stdout, self.timed_out = returncode, stderr, "", False

    def describe(self):
        return f"exit {self.returncode}"


class Replicas:
    """The disks of a two-replica resource (node -> disk state) as their DRBD drivers
    would find them; `here.node` is the node a step runs on (the transport sets it per
    thread). A sync started (primary --force) has ended by the next look."""

    def __init__(self, nodes=("n1", "n2")):
        self.disks = dict.fromkeys(nodes, "Inconsistent")
        self.connected = True
        self.syncing = False
        self.calls = []
        self.refusal = None        # a DrbdError the next change answers with
        self.here = threading.local()

    def driver(self, resource):
        replicas = self

        class Driver:
            def __init__(self):
                self.resource = resource
                self.node = replicas.here.node

            def state(self, timeout):
                if replicas.syncing:
                    replicas.disks = dict.fromkeys(replicas.disks, "UpToDate")
                peer = next(name for name in replicas.disks if name != self.node)
                up = replicas.connected
                text = events(resource, replicas.disks[self.node], "Connected" if up else "Connecting", peer,
                              replicas.disks[peer] if up else "DUnknown", "Established" if up else "Off")
                return parse_events2(text)[resource]

            def _change(self, *call):
                replicas.calls.append((self.node, *call))
                if replicas.refusal is not None:
                    raise replicas.refusal

            def skip_initial_sync(self, timeout):
                self._change("skip_initial_sync")
                replicas.disks = dict.fromkeys(replicas.disks, "UpToDate")

            def primary(self, timeout, force=False):
                self._change("primary", force)
                replicas.disks[self.node] = "UpToDate"       # the initial sync's source
                replicas.syncing = True

            def secondary(self, timeout):
                self._change("secondary")
        return Driver()


@pytest.fixture
def replicas(monkeypatch):
    found = Replicas()
    monkeypatch.setattr(node, "Drbd", found.driver)
    found.here.node = "n1"
    return found


def initial_sync(skip: bool, resource="r0") -> dict:
    return node.apply({"steps": [{"op": "drbd-initial-sync", "resource": resource, "skip": skip}]})["results"][0]


# --- the step, through node.apply ------------------------------------------------------------------------------------
def test_the_skip_makes_a_new_resource_uptodate_once_without_a_sync(replicas):
    first = initial_sync(skip=True)
    assert first["outcome"] == "created" and "initial sync skipped" in first["detail"]
    assert replicas.calls == [("n1", "skip_initial_sync")]          # no primary --force: no sync
    assert first["state"]["disks"] == ["UpToDate"] and first["state"]["peer_disks"] == {"n2": "UpToDate"}
    again = initial_sync(skip=True)
    assert (again["outcome"], again["detail"]) == ("unchanged", "r0: a replica has UpToDate data already")
    started = initial_sync(skip=False)             # nor is a sync started over skipped data
    assert started["outcome"] == "unchanged" and replicas.calls == [("n1", "skip_initial_sync")]


def test_without_skip_the_step_starts_the_sync_from_here(replicas):
    started = initial_sync(skip=False)
    assert started["outcome"] == "created" and "initial sync started from here" in started["detail"]
    assert replicas.calls == [("n1", "primary", True), ("n1", "secondary")]


@pytest.mark.parametrize("skip", [True, False])
def test_the_step_touches_nothing_unless_every_disk_is_inconsistent_and_every_peer_connected(replicas, skip):
    replicas.connected = False
    waiting = initial_sync(skip)
    assert waiting["outcome"] == "failed" and "not every peer is connected ({'n2': 'Connecting'})" in waiting["detail"]
    replicas.connected = True
    replicas.disks["n2"] = "Outdated"
    outdated = initial_sync(skip)
    assert outdated["outcome"] == "refused"
    assert "disks are Inconsistent, Outdated: only a new resource" in outdated["detail"]
    replicas.disks["n2"] = "Consistent"
    assert initial_sync(skip)["outcome"] == "refused"
    assert replicas.calls == []


def test_drbds_refusal_of_the_skip_fails_the_step_with_drbds_words(replicas):
    # every disk Inconsistent, but DRBD finds the meta-data not new (ERR_CONNECTED)
    wrapped = "Command 'drbdsetup new-current-uuid 10 --clear-bitmap' terminated with exit code 10"
    replicas.refusal = DrbdError("x", Finished(10, f"10: Failure: (151) Need to be StandAlone\n{wrapped}\n"))
    refused = initial_sync(skip=True)
    assert (refused["outcome"], refused["detail"]) == ("failed", "r0: 10: Failure: (151) Need to be StandAlone")
    assert replicas.calls == [("n1", "skip_initial_sync")]
    after = node.apply({"steps": [{"op": "drbd-initial-sync", "resource": "r0", "skip": True},
                                  {"op": "drbd-state", "resource": "r0"}]})
    assert not after["ok"] and [r["op"] for r in after["results"]] == ["drbd-initial-sync"]   # stops there


def test_a_resource_that_is_not_up_or_a_bad_name_fails(replicas, monkeypatch):
    monkeypatch.setattr(node, "Drbd", lambda resource: type("Down", (), {"resource": resource,
                                                                         "state": lambda self, t: None})())
    down = initial_sync(skip=True)
    assert (down["outcome"], down["detail"]) == ("failed", "r0 is not up")
    bad = initial_sync(skip=True, resource="-r0")
    assert bad["outcome"] == "failed" and "is not a name" in bad["detail"]


# --- the phase: Provisioner.initial_sync over a transport ----------------------------------------------------------
class Transport:
    """Runs each request's steps with node.apply, as `xenha provision-node` on that node."""

    def __init__(self, replicas):
        self.replicas = replicas
        self.steps = []

    def run(self, name, argv, timeout=60.0, input=None):
        self.replicas.here.node = name
        request = json.loads(input)
        self.steps += [(name, step.get("skip")) for step in request["steps"] if step["op"] == "drbd-initial-sync"]
        return Answer(json.dumps(node.apply(request)) + "\n")


class Answer:
    def __init__(self, stdout):
        self.stdout, self.stderr, self.returncode, self.timed_out = stdout, "", 0, False


@pytest.mark.parametrize("skip", [True, False])
def test_the_phase_skips_or_starts_the_sync_on_the_preferred_node_and_waits_for_uptodate(tmp_path, monkeypatch,
                                                                                           skip):
    from xenha.render import files

    shutil.copy(TRIO, tmp_path / "trio.toml")
    rendering = files.prepare(str(tmp_path / "trio.toml"))
    found = Replicas(("n2", "n3"))
    monkeypatch.setattr(node, "Drbd", found.driver)
    transport = Transport(found)
    provisioner = cluster.Provisioner(transport, rendering.description, rendering.slots, rendering.files,
                                      vms={"c1"})       # c1: replicas n2/n3, preferred n2
    seen = []
    provisioner.progress = lambda kind, **data: seen.append(data) if kind == "sync" else None
    by_node = {name: [r for r in provisioner.replicas if r.node == name] for name in ("n2", "n3")}
    provisioner.initial_sync(by_node, timeout=10, skip=skip)
    assert transport.steps == [("n2", skip)]                  # once, on the preferred node
    assert found.disks == {"n2": "UpToDate", "n3": "UpToDate"}
    assert found.syncing is not skip
    assert found.calls[0] == (("n2", "skip_initial_sync") if skip else ("n2", "primary", True))
    assert seen and all(d == ["Inconsistent"] for d in seen[0]["disks"].values())
