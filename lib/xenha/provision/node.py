"""The node side of provisioning: `xenha provision-node`, steps read as JSON on stdin.

    {"timeout": 300, "steps": [{"op": "volume", "vg": "vg0", "lv": "vm_shaolin", "size": 536870912}, ...]}

answered on stdout with one JSON object, {"ok": bool, "results": [{"op", "target",
"outcome", "detail", ...}]}, outcome one of

    created     the step made something (a file written, an LV created, meta-data, ...)
    unchanged   it was there already, as asked
    refused     it is there with other settings, or holds data this did not create:
                nothing was touched, and the steps after it are not run
    failed      a tool failed (its words in `detail`); the steps after it are not run

Every step looks at the current state first, so running the same steps again changes
nothing and an interrupted run resumes. The ops:

    file               a rendered file (DRBD resource, xl config): written when absent,
                       refused when it exists with other content; with "replace_rendered"
                       (xl configs), a file xenha rendered (its header says so) is replaced
                       by the new rendering (a VM's memory changed in the description)
    volume             the LV: created (tagged LV_TAG) when absent; refused when it exists
                       with another size or without the tag; activated when inactive
    drbd-metadata      `drbdadm create-md` only when the backing device holds none
                       (never over existing meta-data: drbdmeta is never forced)
    drbd-up            `drbdadm up` when the resource is not configured; refused when it is
                       configured with another minor or backing device
    drbd-state         read only: role, disk, connections, peer disks, resync progress
    drbd-initial-sync  the initial sync's source: `drbdadm primary --force`, then
                       `secondary`, only while every disk is Inconsistent and every peer
                       connected; unchanged when a replica already has UpToDate data.
                       With "skip": no sync, `drbdadm new-current-uuid --clear-bitmap`
                       (every replica UpToDate at once: only for new, empty volumes)
    drbd-wait-sync     until no disk is Inconsistent or syncing here (bounded), with the state
    pcs-script         a pcs command script against a copy of the live CIB, the difference
                       pushed in one transaction (xenha.tools.pcs); unchanged when the
                       script changes nothing

Tools are reached through the drivers of xenha.tools only; values come from a rendered,
checked description, and are checked here once more (paths, names) before any use.
"""

from __future__ import annotations

import json
import os
import time

from xenha.tools.drbd import Drbd, DrbdError
from xenha.tools.lvm import Lvm, LvmError

LV_TAG = "xenha"
# the start of the first line of every file xenha renders (xenha.render.HEADER)
RENDERED_MARK = "# rendered by xenha from "
DEFAULT_TIMEOUT = 300.0
OUTCOMES = ("created", "unchanged", "refused", "failed")
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_.-")


class StepError(Exception):
    """A step cannot go on: `outcome` is "refused" or "failed"."""

    def __init__(self, outcome: str, detail: str):
        super().__init__(detail)
        self.outcome = outcome


def refuse(detail: str) -> StepError:
    return StepError("refused", detail)


def fail(detail: str) -> StepError:
    return StepError("failed", detail)


class Budget:
    """The time left for the whole request."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise fail("out of time")
        return left


def _name(value, what: str) -> str:
    text = str(value)
    if not text or text[0] == "-" or not set(text) <= NAME_CHARS:
        raise fail(f"{what} {text!r} is not a name")
    return text


def _path(value) -> str:
    text = str(value)
    if not text.startswith("/") or os.path.normpath(text) != text or "\0" in text or "\n" in text:
        raise fail(f"{text!r} is not an absolute, normalised path")
    return text


# --- the steps ---------------------------------------------------------------------------------------------------

def step_file(step: dict, budget: Budget) -> tuple[str, str]:
    from xenha.render.files import WriteError, commit

    path, text = _path(step["path"]), str(step["text"])
    try:
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
    except FileNotFoundError:
        current = None
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"{path}: cannot read: {error}") from None
    if current == text:
        return "unchanged", f"{path} as rendered"
    replacing = (current is not None and step.get("replace_rendered") is True
                 and current.startswith(RENDERED_MARK) and text.startswith(RENDERED_MARK))
    if current is not None and not replacing:
        raise refuse(f"{path} exists with other content; not replacing it")
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        commit([(path, text)])
    except (OSError, WriteError) as error:
        raise fail(f"{path}: {error}") from None
    return "created", (f"{path} (replaced an older rendering)" if replacing else path)


def step_volume(step: dict, budget: Budget) -> tuple[str, str]:
    vg, lv, size = _name(step["vg"], "volume group"), _name(step["lv"], "logical volume"), int(step["size"])
    lvm = Lvm()
    try:
        group = lvm.volume_group(vg, budget.left())
        if group is None:
            raise fail(f"volume group {vg} does not exist on this node")
        extent = group.extent_size or 1
        wanted = -(-size // extent) * extent
        found = lvm.logical_volumes(vg, [lv], budget.left())
        if not found:
            lvm.create_volume(vg, lv, size, [LV_TAG], budget.left())
            return "created", f"{vg}/{lv} ({wanted} bytes)"
        volume = found[0]
        if volume.size != wanted:
            raise refuse(f"{vg}/{lv} exists with {volume.size} bytes, the description wants {wanted}")
        if LV_TAG not in volume.tags:
            raise refuse(f"{vg}/{lv} exists and was not made by xenha provision (no tag {LV_TAG}): "
                         "it may hold someone's data")
        if volume.active is False:
            lvm.activate(vg, [lv], "complete", budget.left())
            return "unchanged", f"{vg}/{lv} (activated)"
        return "unchanged", f"{vg}/{lv}"
    except LvmError as error:
        raise fail(f"{vg}/{lv}: {error}") from None


def _drbd(step: dict) -> Drbd:
    return Drbd(_name(step["resource"], "DRBD resource"))


def step_metadata(step: dict, budget: Budget) -> tuple[str, str]:
    drbd = _drbd(step)
    try:
        state = drbd.state(budget.left())
        if state is not None and state.devices and all(d.disk != "Diskless" for d in state.devices.values()):
            return "unchanged", f"{drbd.resource} is attached (its meta-data is in use)"
        if drbd.has_metadata(budget.left()):
            return "unchanged", f"{drbd.resource}: meta-data present"
        drbd.create_metadata(budget.left())
    except DrbdError as error:
        raise fail(f"{drbd.resource}: {error.drbd_said}") from None
    return "created", f"{drbd.resource}: meta-data"


def step_up(step: dict, budget: Budget) -> tuple[str, str]:
    drbd = _drbd(step)
    minor, disk = int(step["minor"]), _path(step["disk"])
    try:
        state = drbd.state(budget.left())
        if state is None:
            drbd.up(budget.left())
            return "created", f"{drbd.resource} up"
    except DrbdError as error:
        raise fail(f"{drbd.resource}: {error.drbd_said}") from None
    for device in state.devices.values():
        if device.minor != minor or (device.backing_dev and device.backing_dev != disk):
            raise refuse(f"{drbd.resource} is up with minor {device.minor} on {device.backing_dev or 'no disk'}, "
                         f"the description wants minor {minor} on {disk}")
    return "unchanged", f"{drbd.resource} is up"


def describe_state(state) -> dict:
    """The parts of a ResourceState that provisioning decides on (JSON)."""
    if state is None:
        return {"configured": False}
    names = {peer: c.name or str(peer) for peer, c in state.connections.items()}
    return {"configured": True, "role": state.role, "disks": state.disks(),
            "connections": {names[peer]: c.state for peer, c in state.connections.items()},
            "peer_disks": {names.get(peer, str(peer)): p.peer_disk for (peer, _vol), p in state.peer_devices.items()},
            "replication": {names.get(peer, str(peer)): p.replication for (peer, _vol), p in state.peer_devices.items()},
            "done": min((p.done for p in state.peer_devices.values() if p.resyncing and p.done is not None),
                        default=None)}


def step_state(step: dict, budget: Budget) -> tuple[str, str, dict]:
    drbd = _drbd(step)
    try:
        state = drbd.state(budget.left())
    except DrbdError as error:
        raise fail(f"{drbd.resource}: {error.drbd_said}") from None
    return "unchanged", drbd.resource, describe_state(state)


def step_initial_sync(step: dict, budget: Budget) -> tuple[str, str, dict]:
    drbd = _drbd(step)
    try:
        state = drbd.state(budget.left())
        info = describe_state(state)
        if state is None:
            raise fail(f"{drbd.resource} is not up")
        disks = state.disks() + [p.peer_disk for p in state.peer_devices.values()]
        if "UpToDate" in disks:
            return "unchanged", f"{drbd.resource}: a replica has UpToDate data already", info
        if any(c.state != "Connected" for c in state.connections.values()) or not state.connections:
            raise fail(f"{drbd.resource}: not every peer is connected ({info['connections']})")
        if any(disk != "Inconsistent" for disk in disks):
            raise refuse(f"{drbd.resource}: disks are {', '.join(sorted(set(disks)))}: only a new resource "
                         "(every disk Inconsistent) gets an initial sync")
        if step.get("skip"):
            drbd.skip_initial_sync(budget.left())
            return ("created", f"{drbd.resource}: initial sync skipped (new-current-uuid --clear-bitmap)",
                    describe_state(drbd.state(budget.left())))
        drbd.primary(budget.left(), force=True)
        drbd.secondary(budget.left())
        return "created", f"{drbd.resource}: initial sync started from here", describe_state(drbd.state(budget.left()))
    except DrbdError as error:
        raise fail(f"{drbd.resource}: {error.drbd_said}") from None


def step_wait_sync(step: dict, budget: Budget) -> tuple[str, str, dict]:
    deadline = time.monotonic() + min(float(step.get("wait", 1.0)), budget.left())
    while True:
        outcome, target, info = step_state(step, budget)
        settled = (info.get("configured") and all(d == "UpToDate" for d in info["disks"])
                   and all(d == "UpToDate" for d in info["peer_disks"].values()))
        if settled or time.monotonic() >= deadline:
            return outcome, target, info
        time.sleep(0.2)


def step_pcs_script(step: dict, budget: Budget) -> tuple[str, str]:
    from xenha.tools.pcs import Pcs, PcsError

    try:
        pushed = Pcs().apply_script(str(step["text"]), budget.left())
    except PcsError as error:
        raise fail(str(error)) from None
    return ("created", "the configuration pushed to the CIB") if pushed else ("unchanged", "the CIB has it all")


STEPS = {"file": step_file, "volume": step_volume, "drbd-metadata": step_metadata, "drbd-up": step_up,
         "drbd-state": step_state, "drbd-initial-sync": step_initial_sync, "drbd-wait-sync": step_wait_sync,
         "pcs-script": step_pcs_script}


def target_of(step: dict) -> str:
    if "path" in step:
        return str(step["path"])
    if step.get("op") == "pcs-script":
        return "pacemaker"
    if "lv" in step:
        return f"{step.get('vg')}/{step.get('lv')}"
    return str(step.get("resource", ""))


def apply(request: dict) -> dict:
    """Run the steps in order; stop at the first refusal or failure."""
    budget = Budget(float(request.get("timeout", DEFAULT_TIMEOUT)))
    results = []
    for step in request.get("steps", ()):
        op = step.get("op") if isinstance(step, dict) else None
        entry = {"op": op, "target": target_of(step) if isinstance(step, dict) else ""}
        started = time.monotonic()
        try:
            if op not in STEPS:
                raise fail(f"unknown step {op!r}")
            answer = STEPS[op](step, budget)
            entry.update(outcome=answer[0], detail=answer[1])
            if len(answer) > 2:
                entry["state"] = answer[2]
        except StepError as error:
            entry.update(outcome=error.outcome, detail=str(error))
        except (KeyError, TypeError, ValueError) as error:
            entry.update(outcome="failed", detail=f"malformed step: {error!r}")
        entry["seconds"] = round(time.monotonic() - started, 3)
        results.append(entry)
        if entry["outcome"] in ("refused", "failed"):
            break
    return {"ok": all(r["outcome"] in ("created", "unchanged") for r in results), "results": results}


def main(text: str, out) -> int:
    """`xenha provision-node`: the request's JSON in, the answer's JSON out; exit 0 when
    every step ended created or unchanged, 1 otherwise, 2 for a request that is not JSON."""
    try:
        request = json.loads(text)
        if not isinstance(request, dict) or not isinstance(request.get("steps", []), list):
            raise ValueError("not an object with a list of steps")
    except ValueError as error:
        out.write(json.dumps({"ok": False, "results": [], "error": f"bad request: {error}"}) + "\n")
        return 2
    answer = apply(request)
    out.write(json.dumps(answer) + "\n")
    return 0 if answer["ok"] else 1
