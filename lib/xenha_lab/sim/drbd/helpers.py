"""Usermode helpers of the simulated DRBD kernel: the programs it runs as
`<usermode_helper> <cmd> <resource>` (fence-peer, unfence-peer, before- and
after-resync-target), and what it makes of their exit codes.

Facts (LINBIT/drbd drbd_nl.c drbd_khelper, conn_try_outdate_peer, drbd_sender.c
drbd_resync_finished): no file descriptor open (not even 0-2); the environment is HOME=/ TERM=linux
PATH=/sbin:/usr/sbin:/bin:/usr/bin, DRBD_MY_ADDRESS/AF, DRBD_PEER_ADDRESS/AF,
DRBD_PEER_NODE_ID, DRBD_CSTATE, DRBD_MINOR_<v>, DRBD_BACKING_DEV_<v> and, for
fence-peer/unfence-peer, UP_TO_DATE_NODES; fence-peer exit codes 3 (peer Inconsistent),
4 (peer Outdated), 5 (peer unreachable: Outdated if we are UpToDate), 6 (outdate
myself), 7 (peer STONITHed: Outdated), anything else leaves I/O frozen; I/O is
suspended (suspended:fencing) while the handler runs with `fencing
resource-and-stonith`; unfence-peer is called on the sync source once a resync ends
with all disks UpToDate. Each call and response is noted for events2 (`call helper
...`, `response helper ... status:N`).

Helpers the kernel waits for (fence-peer while promoting, before-resync-target) run
with the node lock released; the others run detached (the kernel's drbd_async_h) and
apply their exit code under the node lock when they end.
"""

from __future__ import annotations

import os
import sys

from xenha_lab.paths import child_code
from xenha_lab.sim.drbd import network, store
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.records import DRANK, Resource


def helper_env(node: Node, res: Resource, pid: int, cmd: str) -> dict:
    conn = res.conns[pid]
    env = {"HOME": "/", "TERM": "linux", "PATH": "/sbin:/usr/sbin:/bin:/usr/bin"}
    if conn.paths:
        local, peer = conn.paths[0]
        env.update(DRBD_MY_ADDRESS=network.addr_ip(local), DRBD_MY_AF=local.split(":", 1)[0],
                   DRBD_PEER_ADDRESS=network.addr_ip(peer), DRBD_PEER_AF=peer.split(":", 1)[0])
    env["DRBD_PEER_NODE_ID"] = str(pid)
    env["DRBD_CSTATE"] = conn.cstate
    for vnr, dev in sorted(res.devices.items()):
        env[f"DRBD_MINOR_{vnr}"] = str(dev.minor)
        if dev.backing:
            env[f"DRBD_BACKING_DEV_{vnr}"] = dev.backing
    if "fence" in cmd:
        mask = 1 << res.node_id if any(d.disk == "UpToDate" for d in res.devices.values()) else 0
        for p, c in res.conns.items():
            if all(pd.pdisk == "UpToDate" for pd in c.pd.values()) and c.pd:
                mask |= 1 << p
        env["UP_TO_DATE_NODES"] = "0x%08X" % mask
    if res.v84:
        # drbdadm finds an 8.4 module in /proc/drbd and runs drbdadm-84; here the
        # simulated module says so through drbd-utils' own override.
        env["DRBD_DRIVER_VERSION_OVERRIDE"] = "8.4.11"
    # the simulator's own locations, so that a helper's drbdsetup calls reach this node
    for key in ("XENHA_SIM_DRBD_STATE", "XENHA_SIM_DRBD_DISKS", "XENHA_SIM_DRBD_NET", "XENHA_SIM_DRBD_NODE"):
        if key in node.environ:
            env[key] = node.environ[key]
    env.setdefault("XENHA_SIM_DRBD_STATE", node.state)
    env.setdefault("XENHA_SIM_DRBD_DISKS", node.disks)
    env.setdefault("XENHA_SIM_DRBD_NET", node.net)
    env.setdefault("XENHA_SIM_DRBD_NODE", node.token)
    return env


def helper_key(res: Resource, pid: int) -> str:
    return f"name:{res.name} peer-node-id:{pid} conn-name:{res.conns[pid].name}"


def run_helper(helper: str, cmd: str, resname: str, env: dict) -> int:
    """Run `<helper> <cmd> <resource>` and return the exit status (the kernel's (r>>8)&0xff)."""
    try:
        child = os.fork()
    except OSError:
        return 0
    if child == 0:
        try:
            # the kernel's usermode helper starts with no file descriptors open at all
            # (the real DRBD 8.4 node showed it: a handler writing to stderr died)
            os.closerange(0, 3)
            os.execve(helper, [helper, cmd, resname], env)
        finally:
            os._exit(127)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 0


# --- helpers the kernel waits for -------------------------------------------------------
def resync_target_helper(node: Node, res: Resource, pid: int, vnr: int, cmd: str) -> int:
    """Run a device helper (before-resync-target) and wait for it, as drbd_start_resync
    does on the node that becomes SyncTarget; the node lock is released meanwhile. The
    kernel passes `<resource>/<volume>`; drbdadm then sets DRBD_RESOURCE, DRBD_VOLUME,
    DRBD_MINOR and DRBD_LL_DISK from the configuration."""
    helper = node.usermode_helper()
    env = helper_env(node, res, pid, cmd)
    key = f"{helper_key(res, pid)} volume:{vnr}"
    node.save(res)
    node.note_helper(f"call helper {key} helper:{cmd}")
    with node.unlocked():
        rc = run_helper(helper, cmd, res.helper_arg(vnr), env)
    node.note_helper(f"response helper {key} helper:{cmd} status:{rc}")
    fresh = node.load(res.name)
    if fresh is not None and fresh.inc == res.inc:
        # the caller goes on with `res` and saves it: what commands did to the resource
        # meanwhile (a promotion by Pacemaker, suspend/resume-io, an opener) is kept
        res.role, res.susp_user, res.openers = fresh.role, fresh.susp_user, fresh.openers
    return rc


def fence_sync(node: Node, res: Resource, pid: int) -> bool:
    """Run fence-peer and wait for it (promotion path); the node lock is released
    meanwhile, so `res` is reloaded afterwards. True when the peer is now known to be
    outdated (or worse)."""
    helper = node.usermode_helper()
    env = helper_env(node, res, pid, "fence-peer")
    key = helper_key(res, pid)
    node.save(res)
    node.note_helper(f"call helper {key} helper:fence-peer")
    with node.unlocked():
        rc = run_helper(helper, "fence-peer", res.name, env)
    node.note_helper(f"response helper {key} helper:fence-peer status:{rc}")
    fresh = node.load(res.name)
    if fresh is not None:
        res.take(fresh)
    if pid not in res.conns:
        return False
    return apply_fence_result(node, res, pid, None, rc)


def apply_fence_result(node: Node, res: Resource, pid: int, fence_id, rc: int) -> bool:
    """conn_try_outdate_peer: interpret the fence-peer exit code. True when the peer is
    now known to be outdated (or worse)."""
    conn = res.conns[pid]
    if fence_id is not None and conn.fence_id != fence_id:
        return False
    conn.fence_id = None
    if conn.epoch is not None:
        res.susp_fen = False     # connection re-established: do not fence
        return False
    new = None
    if rc == 3:
        new = "Inconsistent"
    elif rc in (4, 7):
        new = "Outdated"
    elif rc == 5:
        if any(d.disk == "UpToDate" for d in res.devices.values()):
            new = "Outdated"
    elif rc == 6:
        for dev in res.devices.values():
            if dev.backing and DRANK[dev.disk] > DRANK["Outdated"]:
                node.set_disk_state(dev, "Outdated")
    else:
        return False                # a broken handler leaves I/O frozen
    res.susp_fen = False
    if new:
        for vnr, pd in conn.pd.items():
            pd.pdisk = new
            dev = res.devices[vnr]
            if dev.backing:
                disk = node.disk(dev.backing)
                disk.peer_outdated[pid] = True
                disk.sync_md()
    return all(DRANK[pd.pdisk] <= DRANK["Outdated"] for pd in conn.pd.values())


# --- helpers that run by themselves -------------------------------------------------------
def spawn_helper(node: Node, res: Resource, pid: int, cmd: str, fence_id: str | None = None,
                 arg: str | None = None) -> None:
    """Run the usermode helper asynchronously (the kernel's drbd_async_h thread): a
    detached process runs it and then applies its exit code under the node lock."""
    node.note_helper(f"call helper {helper_key(res, pid)} helper:{cmd}")
    env = helper_env(node, res, pid, cmd)
    payload = repr((node.state, node.disks, node.net, node.token, res.name, res.inc, pid, cmd, fence_id,
                    node.usermode_helper(), env, arg))
    code = child_code(f"from xenha_lab.sim.drbd import helpers; helpers.helper_main({payload})")
    pid_child = os.fork()
    if pid_child == 0:
        try:
            if os.fork() != 0:
                os._exit(0)
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execve(sys.executable, [sys.executable, "-IS", "-c", code], dict(os.environ))
        finally:
            os._exit(127)
    os.waitpid(pid_child, 0)


def helper_main(args) -> None:
    """The detached process of `spawn_helper`."""
    state, disks, net, token, resname, inc, pid, cmd, fence_id, helper, env, arg = args
    node = Node(state, disks, net, token, environ=env)
    store.makedirs(os.path.join(state, "helpers.d"))
    mark = os.path.join(state, "helpers.d", str(os.getpid()))
    with open(mark, "w") as handle:
        handle.write(f"{cmd} {resname}\n")
    try:
        rc = run_helper(helper, cmd, arg or resname, env)
    finally:
        store.unlink(mark)
    with node:
        res = node.load(resname)
        key = f"name:{resname} peer-node-id:{pid} conn-name:{res.conns[pid].name if res and pid in res.conns else ''}"
        node.note_helper(f"response helper {key} helper:{cmd} status:{rc}")
        if res is None or res.inc != inc or pid not in res.conns:
            return
        if cmd == "fence-peer":
            apply_fence_result(node, res, pid, fence_id, rc)
            node.save(res)
            network.publish(node, res)
