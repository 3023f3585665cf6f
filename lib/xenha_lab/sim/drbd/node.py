"""The simulated DRBD 9 kernel of one node, behind `drbdsetup` and `drbdsetup-84`.

This machine has no DRBD module, so the *kernel* is simulated while the user-space
tools stay real: real `drbdadm` 9.22 parses the configuration and runs the `drbdsetup`
found first on PATH (shared/reference/tools.md §2, §5.1), and real `drbdmeta` writes the
meta-data that `drbdadm create-md` asks for. Every time-dependent change (handshake,
resync progress, the end of a resync, the loss of a connection) is made by
`advance.advance`, under the node's lock, from timestamps: several times a second by
the node's kernel process (`kernel`, `xenha-sim-drbd-kernel`, which the lab starts on
every node and which also keeps the TCP links that decide whether a connection can
exist), and whenever a drbdsetup command (or the test API, `world`) runs. Without a
kernel process (the test worlds that start none) the kernel moves on only when
something runs on a node, and links follow the cut files alone.

Three places hold state (all paths come from the environment):

``XENHA_SIM_DRBD_STATE`` (default /run/xenha-sim/drbd), VOLATILE, per node (`Node`)
    what the kernel keeps in RAM: ``resources/<name>`` (one `records.Resource` per
    configured resource: node-id, role, devices, connections, paths, options, states),
    ``usermode_helper`` (the module parameter; default /sbin/drbdadm, as the real
    module), ``helpers`` (call/response notifications for events2), ``lock``.
    It lives on tmpfs in the lab, so a powered-off node loses it as a real one would.

``XENHA_SIM_DRBD_DISKS`` (default /var/lib/xenha-sim/drbd-disks), PERSISTENT, per node
    what each backing device holds (`metadata.Disk`).

``XENHA_SIM_DRBD_NET`` (default /run/xenha-sim/drbd-net), SHARED by all nodes
    the network (`network`): advertisements on endpoints, one session record per
    connection, the replication stream, and link failures.

A node is identified by ``XENHA_SIM_DRBD_NODE``, else ``__DRBD_NODE__`` (what drbdadm
pretends to be), else the UTS hostname.

The modules, each importing only those below it: the front ends `drbdsetup`,
`drbdsetup84` (with `cmdline`), the kernel process `kernel` and the test API `world`;
`blockio` (writes and reads through /dev/drbdN), `roles` (primary, secondary, outdate,
invalidate) and `config` (configuration, attach/detach, connect/disconnect, down);
`advance` (the state machine of connections over time); `helpers` (usermode helpers:
fence-peer, before- and after-resync-target, unfence-peer); `resync` (the handshake's
decision, resync progress); `network` (with `link`: what the kernel process says of its
TCP links); `node` (this module); `metadata`; `records`, `errors`, `store`.
(Code of LINBIT/drbd and drbd-utils was read for facts only, none is copied.)

Deviations to know about: the helper environment also carries the simulator's own
XENHA_SIM_DRBD_* variables (so that a handler's drbdsetup calls reach the same simulated
node); the TCP link decides only whether and when two nodes reach each other — the
handshake, the replication stream and the resync data go through the shared directory
(`network`), so a node that drops a connection is seen doing so by its peer at once
(as if its FIN always arrived), and the handshake is decided by whichever side looks
first, from the other's advert (the other checks it against its own state when it
joins, and decides again if it wrote meanwhile); the kernel process's transport
deviations are in `kernel`. Without a kernel process: a resync ends at the first
evaluation on either side after its time is up (the source queues the resync data when
it first looks after the handshake, so a resync needs a command on the source), a peer
that never looks does not learn that a resync ended (its next connection resyncs in
full), and a node that loses power is seen gone by its peers once its adverts are
withdrawn (`world.node_power_off`, which the lab's power switch calls); with one, the
peers' kernels notice the silence after DRBD's timers.

What is simplified (not faithful): one path per connection is used; the handshake is
immediate once both sides see each other; resync speed is a fixed rate (env
``XENHA_SIM_DRBD_RESYNC_RATE`` KiB/s, else the disk option --c-max-rate or
--resync-rate, else 100 MiB/s, the c-max-rate default); an interrupted full sync starts
over; after-split-brain policies other than ``disconnect`` are not applied (split brain
always ends StandAlone on both sides; ``connect --discard-my-data`` resolves it);
auto-promote, quorum and verify are not modelled; the activity log is not modelled.
"""

from __future__ import annotations

import fcntl
import os
import time

from xenha_lab.sim.drbd import store
from xenha_lab.sim.drbd.errors import DrbdError
from xenha_lab.sim.drbd.metadata import Disk
from xenha_lab.sim.drbd.records import Resource

DEFAULT_STATE = "/run/xenha-sim/drbd"
DEFAULT_DISKS = "/var/lib/xenha-sim/drbd-disks"
DEFAULT_NET = "/run/xenha-sim/drbd-net"
DEFAULT_HELPER = "/sbin/drbdadm"
DEFAULT_RATE_KIB = 102400          # c-max-rate default, 100 MiB/s


def env_paths(environ=None):
    environ = os.environ if environ is None else environ
    return (environ.get("XENHA_SIM_DRBD_STATE") or DEFAULT_STATE,
            environ.get("XENHA_SIM_DRBD_DISKS") or DEFAULT_DISKS,
            environ.get("XENHA_SIM_DRBD_NET") or DEFAULT_NET)


def node_token(environ=None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("XENHA_SIM_DRBD_NODE") or environ.get("__DRBD_NODE__") or os.uname().nodename


def parse_size_kib(text: str) -> float:
    units = {"k": 1, "K": 1, "m": 1024, "M": 1024, "g": 1024 * 1024, "G": 1024 * 1024}
    text = str(text).strip()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


class Node:
    """The simulated kernel of one node: its volatile state, its disks, the shared net.
    `with node:` holds the node's lock (re-entrant) and sets `now`, the time every
    change made under it is stamped with."""

    def __init__(self, state: str | None = None, disks: str | None = None, net: str | None = None,
                 token: str | None = None, environ=None):
        s, d, n = env_paths(environ)
        self.state, self.disks, self.net = state or s, disks or d, net or n
        self.token = token or node_token(environ)
        self.environ = os.environ if environ is None else environ
        self._lock_fd = None
        self._saved_depth = 0
        self.depth = 0
        self.now = time.time()

    # locking
    def __enter__(self):
        if self.depth == 0:
            store.makedirs(os.path.join(self.state, "resources"))
            self._lock_fd = os.open(os.path.join(self.state, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.depth += 1
        self.now = time.time()
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0:
            os.close(self._lock_fd)
            self._lock_fd = None

    def unlocked(self):
        """Drop the node lock temporarily (the kernel gives up state_sem around helpers)."""
        node = self

        class _Unlocked:
            def __enter__(self):
                node._saved_depth = node.depth
                os.close(node._lock_fd)
                node._lock_fd, node.depth = None, 0

            def __exit__(self, *exc):
                depth = node._saved_depth
                node.__enter__()
                node.depth = depth
        return _Unlocked()

    # resources
    def res_path(self, name: str) -> str:
        return os.path.join(self.state, "resources", name)

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(os.path.join(self.state, "resources")) if ".tmp" not in n)
        except OSError:
            return []

    def load(self, name: str) -> Resource | None:
        data = store.read(self.res_path(name))
        return Resource.load(data) if data else None

    def save(self, res: Resource) -> None:
        store.makedirs(os.path.join(self.state, "resources"))
        store.write(self.res_path(res.name), res.dump())

    def forget(self, name: str) -> None:
        store.unlink(self.res_path(name))

    def all(self) -> list[Resource]:
        out = []
        for name in self.names():
            res = self.load(name)
            if res:
                out.append(res)
        return out

    def get(self, name: str) -> Resource:
        res = self.load(name)
        if res is None:
            raise DrbdError("fail", 158, obj=name)
        return res

    def by_minor(self, minor: int):
        """(resource, volume number) of a minor, or (None, None)."""
        for res in self.all():
            for vnr, dev in res.devices.items():
                if dev.minor == minor:
                    return res, vnr
        return None, None

    def device(self, minor: int):
        """(resource, volume number) of a configured minor; the kernel's error 127 else."""
        res, vnr = self.by_minor(minor)
        if res is None:
            raise DrbdError("fail", 127, obj=str(minor))
        return res, vnr

    def disk(self, path: str) -> Disk:
        return Disk(self.disks, path)

    def set_disk_state(self, dev, state: str) -> None:
        """An attached device's disk state changes, its meta-data flags with it (persisted)."""
        dev.disk = state
        disk = self.disk(dev.backing)
        disk.set_state_flags(state)
        disk.sync_md()

    def usermode_helper(self) -> str:
        try:
            with open(os.path.join(self.state, "usermode_helper"), encoding="utf-8") as handle:
                return handle.read().strip() or DEFAULT_HELPER
        except OSError:
            return DEFAULT_HELPER

    def rate_kib(self, res: Resource, vnr: int) -> float:
        env = self.environ.get("XENHA_SIM_DRBD_RESYNC_RATE")
        if env:
            return max(1.0, float(env))
        opts = res.devices[vnr].dopts
        for key in ("c-max-rate", "resync-rate"):
            if key in opts:
                return max(1.0, parse_size_kib(opts[key]))
        return float(DEFAULT_RATE_KIB)

    # helper notifications (events2 call/response lines)
    def note_helper(self, line: str) -> None:
        store.makedirs(self.state)
        with open(os.path.join(self.state, "helpers"), "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
