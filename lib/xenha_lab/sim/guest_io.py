"""The simulated guest's disk I/O, its log of acknowledged writes, and the checks made on
them (no acknowledged write lost; the guest's pause during a live migration).

A simulated guest (`xenha_lab.sim.xen.guest`) whose config has a DRBD disk —
`phy:/dev/drbdN`, `target=/dev/drbdN` or `drbd:RESOURCE` — writes an increasing
sequence to it through the simulated DRBD device of the node where it runs
(`xenha_lab.sim.drbd.blockio.write_block`: protocol C, acknowledged once the peers
have it; refused while I/O is suspended by fencing, so nothing is acknowledged then;
none while the guest is paused, since a paused guest runs no code). It does so only
when a log directory is given:

    XENHA_SIM_GUEST_IO            the directory of the logs (the lab's shared directory,
                                  outside every node); unset: the guest does no I/O
    XENHA_SIM_GUEST_IO_INTERVAL   seconds between two writes (default 0.1)
    XENHA_SIM_GUEST_IO_BLOCKS     the ring of 4 KiB blocks written in turn (default 64)

Write number `seq` goes to block `seq % BLOCKS` of volume 0 (or of the volume of
minor N) with the text `xenha-guest-io seq=S block=B boot=ID domain=NAME`, zero-padded
to 4 KiB. Each acknowledged write appends one line to `<dir>/<domain>.log`:

    <seq> <block> <unix time> <node> <boot id>

The counter is part of the guest's memory (`io_seq` in the domain's memory image,
with the log's path `io_log`), so a live migration carries it; a guest that boots
afresh (a restart after a failover, a reboot) reads its ring first and continues after
the highest write it finds there, as a real application recovers from its disk. So a
write acknowledged before a failover and missing from the disk shows twice: as
`missing_writes` against the disk, and as `lost_across_boots` in the log alone (the
next boot reused its number).

The guest does its I/O through a helper process of its own (`io_helper`), which a
pause (SIGSTOP of the guest) does not stop: a pause never leaves the DRBD node's lock
held, and the write in flight completes as in a real backend. The helper ends with the
guest (SIGTERM at the guest's death; it finishes the write in hand first).
"""

from __future__ import annotations

import os
import time

from xenha_lab.sim.drbd.metadata import BLOCK
from xenha_lab.sim.procs import proc_start

ENV_DIR = "XENHA_SIM_GUEST_IO"
ENV_INTERVAL = "XENHA_SIM_GUEST_IO_INTERVAL"
ENV_BLOCKS = "XENHA_SIM_GUEST_IO_BLOCKS"
DEFAULT_INTERVAL = 0.1
DEFAULT_BLOCKS = 64
MAGIC = b"xenha-guest-io "
INCOMING = "--incoming"


# --- what a block holds ------------------------------------------------------------------
def payload(seq: int, block: int, boot: str, domain: str) -> bytes:
    text = f"xenha-guest-io seq={seq} block={block} boot={boot} domain={domain}\n".encode()
    return text.ljust(BLOCK, b"\0")


def parse_block(data) -> dict | None:
    """{"seq", "block", "boot", "domain"} of a block the guest wrote, None otherwise."""
    if not data or not bytes(data[:len(MAGIC)]) == MAGIC:
        return None
    line = bytes(data).split(b"\n", 1)[0].decode(errors="replace")
    fields = dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)
    try:
        return {"seq": int(fields["seq"]), "block": int(fields["block"]), "boot": fields.get("boot", ""),
                "domain": fields.get("domain", "")}
    except (KeyError, ValueError):
        return None


def written(blocks: dict) -> dict:
    """{block: seq} of the guest's writes in a disk's blocks (block number -> bytes)."""
    found = {}
    for blk, data in blocks.items():
        parsed = parse_block(data)
        if parsed is not None and parsed["block"] == blk:
            found[blk] = parsed["seq"]
    return found


# --- the log -------------------------------------------------------------------------------
class Ack:
    """One acknowledged write, as the log records it."""

    __slots__ = ("seq", "block", "time", "node", "boot")

    def __init__(self, seq: int, block: int, time: float, node: str, boot: str):
        self.seq, self.block, self.time, self.node, self.boot = seq, block, time, node, boot

    def __repr__(self) -> str:
        return f"Ack(seq={self.seq}, block={self.block}, time={self.time:.3f}, node={self.node!r}, boot={self.boot!r})"

    def line(self) -> str:
        return f"{self.seq} {self.block} {self.time:.6f} {self.node} {self.boot}\n"


def log_path(directory: str, domain: str) -> str:
    return os.path.join(directory, f"{domain}.log")


def append(path: str, ack: Ack) -> None:
    """Append one line (O_APPEND: one write(2), never interleaved with another writer's)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, ack.line().encode())
    finally:
        os.close(fd)


def read_log(directory: str, domain: str) -> list[Ack]:
    """The acknowledged writes of a domain, in the order they were acknowledged."""
    try:
        with open(log_path(directory, domain), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    acks = []
    for line in lines:
        words = line.split()
        if len(words) == 5:
            try:
                acks.append(Ack(int(words[0]), int(words[1]), float(words[2]), words[3], words[4]))
            except ValueError:
                continue
    return acks


# --- the checks ------------------------------------------------------------------------------
def missing_writes(acks, blocks: dict) -> list[Ack]:
    """Acknowledged writes that a disk (block number -> bytes, e.g. `disk_blocks`) does
    not hold: for each block, every acknowledged write newer than what the block holds
    (an older write overwritten by a newer one on the same block is not missing)."""
    on_disk = written(blocks)
    return [ack for ack in acks if ack.seq > on_disk.get(ack.block, -1)]


def lost_across_boots(acks) -> list[Ack]:
    """Acknowledged writes that the guest's next boot did not find on its disk: a boot
    starts after the highest write it read, so an earlier boot's acknowledged writes
    numbered from there on were lost."""
    boots = []
    for ack in acks:
        if not boots or boots[-1][0] != ack.boot:
            boots.append((ack.boot, []))
        boots[-1][1].append(ack)
    lost = {}
    for i, (_boot, mine) in enumerate(boots[1:], start=1):
        first = mine[0].seq
        for _earlier, theirs in boots[:i]:
            lost.update((id(a), a) for a in theirs if a.seq >= first)
    return sorted(lost.values(), key=lambda a: (a.time, a.seq))


def duplicates(acks) -> list[tuple[Ack, Ack]]:
    """Pairs of acknowledgements of the same number by different nodes within one boot:
    two copies of one guest running at once."""
    seen, pairs = {}, []
    for ack in acks:
        key = (ack.boot, ack.seq)
        if key in seen and seen[key].node != ack.node:
            pairs.append((seen[key], ack))
        seen.setdefault(key, ack)
    return pairs


class Pause:
    """The gap between two consecutive acknowledged writes."""

    __slots__ = ("before", "after", "seconds")

    def __init__(self, before: Ack, after: Ack):
        self.before, self.after, self.seconds = before, after, after.time - before.time

    def __repr__(self) -> str:
        return (f"Pause({self.seconds:.3f}s between seq {self.before.seq} on {self.before.node} "
                f"and seq {self.after.seq} on {self.after.node})")


def pauses(acks, since: float | None = None, until: float | None = None) -> list[Pause]:
    """Gaps between consecutive acknowledged writes that overlap [since, until],
    longest first (a live migration's pause is the longest gap around it)."""
    ordered = sorted(acks, key=lambda a: (a.time, a.seq))
    gaps = []
    for before, after in zip(ordered, ordered[1:]):
        if since is not None and after.time < since:
            continue
        if until is not None and before.time > until:
            continue
        gaps.append(Pause(before, after))
    gaps.sort(key=lambda p: -p.seconds)
    return gaps


def longest_pause(acks, since: float | None = None, until: float | None = None) -> Pause | None:
    found = pauses(acks, since, until)
    return found[0] if found else None


# --- reading a node's disk without touching it -----------------------------------------------
def disk_blocks(disks_dir: str, net_dir: str, token: str, backing: str) -> dict:
    """What a node's backing device holds (block -> bytes), read without changing
    anything: the DRBD kernel's record of the disk plus the replication stream queued
    for it (the peer has those writes: it applies them before anything else). Usable
    on the host for a node that is down (its disks dir and the shared network dir)."""
    from xenha_lab.sim.drbd import store
    from xenha_lab.sim.drbd.metadata import Disk

    disk = Disk(disks_dir, backing)
    blocks = dict(disk.blocks) if disk.exists() else {}
    queue = os.path.join(net_dir, "wire", token, disk.key)
    try:
        names = sorted(n for n in os.listdir(queue) if ".tmp" not in n)
    except OSError:
        names = []
    for name in names:
        msg = store.read(os.path.join(queue, name))
        if not msg:
            continue
        if msg["type"] == "write":
            blocks[msg["blk"]] = msg["data"]
        elif msg["type"] == "resync" and msg["sid"] in disk.rs_ready:
            if msg["full"]:
                blocks = dict(msg["blocks"])
            else:
                blocks.update({b: d for b, d in msg["blocks"].items() if d is not None})
    return {b: d for b, d in blocks.items() if d is not None}


# --- the guest's side -------------------------------------------------------------------------
def drbd_disk(config_text: str):
    """(resource name, None) or (None, minor) of the guest's first DRBD disk, or None."""
    from xenha.tools import xl_config

    try:
        config = xl_config.parse(config_text, "<domain>")
        disks = config.disks()
    except xl_config.XlConfigError:
        return None
    for disk in disks:
        if disk.is_cdrom or not disk.writable:
            continue
        if disk.drbd_resource:
            return disk.drbd_resource, None
        target = disk.target or ""
        if target.startswith("/dev/drbd") and target[len("/dev/drbd"):].isdigit():
            return None, int(target[len("/dev/drbd"):])
    return None


class GuestDisk:
    """The guest's end of its I/O: asks its helper for each write, keeps the counter in
    the guest's memory, logs what was acknowledged."""

    def __init__(self, memory: dict, config_text: str, domain: str, boot: str, environ=None):
        environ = os.environ if environ is None else environ
        self.domain = domain.split(INCOMING)[0]
        self.boot = boot
        self.memory = memory
        self.target = drbd_disk(config_text)
        directory = environ.get(ENV_DIR)
        if not memory.get("io_log") and directory and self.target:
            memory["io_log"] = log_path(directory, self.domain)
        self.log = memory.get("io_log") or None
        self.interval = _float(environ.get(ENV_INTERVAL), DEFAULT_INTERVAL)
        self.ring = max(1, int(_float(environ.get(ENV_BLOCKS), DEFAULT_BLOCKS)))
        self.helper = None
        self.to_helper = self.from_helper = None
        self.buffer = b""
        self.node = ""

    @property
    def enabled(self) -> bool:
        return bool(self.log and self.target)

    def start(self) -> None:
        """Fork the I/O helper (it stays out of the guest's pauses)."""
        os.makedirs(os.path.dirname(self.log), exist_ok=True)
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        guest = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(req_w)
                os.close(ans_r)
                code = io_helper(req_r, ans_w, guest, self.target, self.boot, self.domain, self.ring)
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(ans_w)
        self.helper, self.to_helper, self.from_helper = pid, req_w, ans_r
        # The host waits for this process when the domain is destroyed (as Xen's block
        # backend finishes the requests in flight before the domain is gone).
        self.memory["io_pid"] = pid
        self.memory["io_pid_start"] = proc_start(pid) or ""

    def ask(self, request: str) -> list[str]:
        """One request to the helper, its answer's words (the guest blocks meanwhile, as
        on a real disk)."""
        os.write(self.to_helper, (request + "\n").encode())
        while b"\n" not in self.buffer:
            chunk = os.read(self.from_helper, 4096)
            if not chunk:
                raise OSError("the I/O helper is gone")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().split()

    def step(self, save_memory) -> bool:
        """One write (after recovering the counter on a fresh boot). True when a write
        was acknowledged (memory saved, then logged)."""
        if "io_seq" not in self.memory:
            answer = self.ask("recover")
            if answer[:1] != ["seq"]:
                return False
            self.memory["io_seq"] = int(answer[1]) + 1
            save_memory()
        seq = int(self.memory["io_seq"])
        block = seq % self.ring
        answer = self.ask(f"write {seq} {block}")
        if answer[:1] != ["ack"]:
            return False
        self.memory["io_seq"] = seq + 1
        save_memory()                               # the counter first: a pause may come now
        append(self.log, Ack(seq, block, time.time(), answer[1] if len(answer) > 1 else "?", self.boot))
        return True

    def stop(self) -> None:
        for fd in (self.to_helper, self.from_helper):
            if fd is not None:
                os.close(fd)
        self.to_helper = self.from_helper = None


def _float(text, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


def io_helper(requests: int, answers: int, guest: int, target, boot: str, domain: str, ring: int) -> int:
    """The guest's I/O helper: `recover` -> `seq N` (the highest write on the ring, -1
    for none); `write SEQ BLOCK` -> `ack NODE`, `frozen`, `nodev` or `error TEXT`.
    Ends at EOF or SIGTERM (sent when the guest dies), after the request in hand."""
    import ctypes
    import signal

    from xenha_lab.sim.drbd import blockio
    from xenha_lab.sim.drbd.node import Node

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)            # PR_SET_PDEATHSIG: SIGTERM when the guest dies
    except (OSError, AttributeError):
        pass
    if os.getppid() != guest:
        return 0                                 # the guest died before the death signal was armed
    node = Node()
    resname, minor = target
    buffer = b""
    while not stopping:
        try:
            chunk = os.read(requests, 4096)
        except InterruptedError:
            continue
        if not chunk:
            return 0
        buffer += chunk
        while b"\n" in buffer and not stopping:
            line, buffer = buffer.split(b"\n", 1)
            words = line.decode().split()
            try:
                answer = _serve(node, resname, minor, words, boot, domain, ring, blockio)
            except blockio.BlockIOError as error:
                answer = "error " + str(error).split(":", 1)[0]
            except OSError as error:
                answer = f"error {error.__class__.__name__}"
            os.write(answers, (answer + "\n").encode())
    return 0


def _serve(node, resname, minor, words, boot, domain, ring, blockio) -> str:
    if not os.path.isdir(os.path.join(node.state, "resources")):
        return "nodev"
    if minor is not None:
        res, vnr = node.by_minor(minor)
    else:
        res = node.load(resname)
        vnr = min(res.devices) if res is not None and res.devices else None
    if res is None or vnr is None:
        return "nodev"
    if words[:1] == ["recover"]:
        highest = -1
        with node:
            for blk in range(ring):
                parsed = parse_block(blockio.read_block(node, res.name, vnr, blk))
                if parsed is not None and parsed["block"] == blk:
                    highest = max(highest, parsed["seq"])
        return f"seq {highest}"
    if words[:1] == ["write"] and len(words) == 3:
        seq, block = int(words[1]), int(words[2])
        with node:
            result = blockio.write_block(node, res.name, vnr, block, payload(seq, block, boot, domain))
        return f"ack {node.token}" if result == "ack" else result
    return "error request"
