"""The lab's PV guest seen from the host, and what the nodes themselves say about it.

The guest (files/guest-init) writes record N to its disk, waits for the write to be
acknowledged (O_DIRECT + fsync through blkfront, blkback and DRBD protocol C), then prints
`xenha-ack N` on its console; xenconsoled in the dom0 running it logs the console into
the lab's share (share/xenlog/NODE/guest-NAME*.log: after a migration the target logs
under the name the domain had when it arrived). WriteLog follows those files from the
host, stamping every line with the host's clock when it first sees it: the acknowledged
writes, the guest's boots and where it resumed, and the gaps between writes (a live
migration's pause).

The probes answer from each node's own state: `xl list` (is the domain running there,
not paused, not suspended) and /proc/drbd (role, disk state).
"""

from __future__ import annotations

import glob
import os
import re
import threading
import time
from dataclasses import dataclass, field

from xenha_lab.lab.backend import LabError, NodeBackend
from xenha_lab.lab.scenario import Invariant

ACK = re.compile(r"xenha-ack (\d+)(?: ([0-9a-f]{8}))?")
UP = re.compile(r"xenha-guest: up boot=(\S+)")
RESUME = re.compile(r"xenha-guest: resume at (\d+) \(last on disk: (\S+)\)")


@dataclass
class WriteLog:
    """The acknowledged-write log of guest `vm`, from the consoles logged on the share."""
    share: str
    vm: str
    interval: float = 0.1
    acks: list = field(default_factory=list)          # (host time, N, boot tag), in the order seen
    boots: list = field(default_factory=list)         # (host time, boot id, file)
    resumes: list = field(default_factory=list)       # (host time, resumed at, last on disk or None)

    def __post_init__(self):
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "WriteLog":
        self.poll()
        self._thread = threading.Thread(target=self._follow, name=f"write log of {self.vm}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.poll()

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def files(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.share, "xenlog", "*", f"guest-{self.vm}*.log")))

    def poll(self) -> None:
        now = time.time()
        for path in self.files():
            try:
                with open(path, "rb") as handle:
                    handle.seek(self._offsets.get(path, 0))
                    data = handle.read()
            except OSError:
                continue
            if not data:
                continue
            with self._lock:
                self._offsets[path] = self._offsets.get(path, 0) + len(data)
                text = self._partial.pop(path, "") + data.decode(errors="replace").replace("\r", "")
                lines = text.split("\n")
                self._partial[path] = lines.pop()
                for line in lines:
                    if found := ACK.search(line):
                        self.acks.append((now, int(found.group(1)), found.group(2) or ""))
                    elif found := UP.search(line):
                        self.boots.append((now, found.group(1), path))
                    elif found := RESUME.search(line):
                        last = found.group(2)
                        self.resumes.append((now, int(found.group(1)), None if last == "none" else int(last)))

    # --- what it says ---------------------------------------------------------------------------------------------
    def acknowledged(self) -> dict:
        """{N: boot tag} of every acknowledged write (a later boot never rewrites one)."""
        with self._lock:
            return {n: tag for _t, n, tag in self.acks}

    def last(self) -> int | None:
        with self._lock:
            return max((n for _t, n, _tag in self.acks), default=None)

    def count_since(self, since: float) -> int:
        with self._lock:
            return sum(1 for t, _n, _tag in self.acks if t >= since)

    def wait_acks(self, more: int, timeout: float, since: float | None = None) -> int:
        """Until `more` acknowledged writes were seen after `since` (now by default)."""
        since = time.time() if since is None else since
        deadline = time.monotonic() + timeout
        while (count := self.count_since(since)) < more:
            if time.monotonic() >= deadline:
                raise LabError(f"guest {self.vm}: {count} acknowledged writes in {timeout:.0f} s, "
                               f"wanted {more} (last: {self.last()})")
            time.sleep(0.1)
        return count

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without an acknowledged write between host times start and end
        (the guest's pause during a live migration, to within the polling interval)."""
        with self._lock:
            times = sorted(t for t, _n, _tag in self.acks if start <= t <= end)
        points = [start, *times, end]
        return max((b - a for a, b in zip(points, points[1:])), default=end - start)


# --- the nodes' own word -------------------------------------------------------------------------------------------

def xl_domains(lab: NodeBackend, node: str, timeout: float = 20.0) -> dict | None:
    """{name: state flags} from `xl list` on `node`; None when the node is not up or xl fails."""
    if node not in lab.powered():
        return None
    try:
        result = lab.run(node, ["xl", "list"], timeout=timeout)
    except LabError:
        return None
    if not result.ok:
        return None
    domains = {}
    for line in result.stdout.splitlines()[1:]:
        words = line.split()
        if len(words) >= 6:
            domains[words[0]] = words[4]
    return domains


def running(flags: str) -> bool:
    """xl's state column says the guest executes: running, blocked or runnable (`------`: on
    one busy CPU a guest waiting for its turn has no letter at all), not paused, shut down,
    crashed or dying (the product's reading of the letters)."""
    from xenha.hypervisor import domain

    try:
        return domain.state_from_letters(flags) in domain.ACTIVE_STATES
    except ValueError:
        return False


def domain_running(vm: str):
    """A probe for AtMostOneActive: `vm` runs on the node (by xl, under its own name)."""
    def probe(lab: NodeBackend, node: str) -> bool:
        domains = xl_domains(lab, node) or {}
        return running(domains.get(vm, ""))
    probe.__doc__ = f"xl list shows {vm} running on the node"
    return probe


class DomainOnOneNode(Invariant):
    """The domain runs (by `xl list`) on at most one node. Nodes are asked one after the
    other, so a live migration's hand-over could fall between two questions; a node found
    running is asked again after the others, and only a domain running on A before and
    after B was seen running is a violation (the hand-over goes one way only)."""

    def __init__(self, vm: str):
        self.vm = vm
        self.name = f"domain {vm} running on at most one node"
        self.probe = domain_running(vm)

    def sample(self, lab: NodeBackend) -> list[str]:
        nodes = lab.nodes
        first = {node: self.probe(lab, node) for node in nodes}
        if sum(first.values()) < 2:
            return []
        again = {node: self.probe(lab, node) for node in nodes if first[node]}
        both = [node for node in nodes if first[node] and again.get(node)]
        return [f"{self.vm} running on {', '.join(both)} at once"] if len(both) > 1 else []


def proc_drbd(lab: NodeBackend, node: str) -> dict:
    """{minor: {"cs", "role", "peer_role", "disk", "peer_disk"}} from /proc/drbd (8.4)."""
    data = lab.read_file(node, "/proc/drbd")
    minors = {}
    for line in (data or b"").decode(errors="replace").splitlines():
        found = re.match(r"\s*(\d+): cs:(\S+) ro:(\w+)/(\w+) ds:(\w+)/(\w+)", line)
        if found:
            minor, cs, role, peer_role, disk, peer_disk = found.groups()
            minors[int(minor)] = {"cs": cs, "role": role, "peer_role": peer_role, "disk": disk,
                                  "peer_disk": peer_disk}
    return minors


class PrimaryOnlyUpToDate(Invariant):
    """DRBD is never Primary on data that is not UpToDate (each node's /proc/drbd)."""

    def __init__(self, minor: int):
        self.minor = minor
        self.name = f"DRBD minor {minor} Primary only when UpToDate"

    def sample(self, lab: NodeBackend) -> list[str]:
        found = []
        for node in lab.nodes:
            state = proc_drbd(lab, node).get(self.minor)
            if state and state["role"] == "Primary" and state["disk"] != "UpToDate":
                found.append(f"{node}: DRBD minor {self.minor} Primary with disk {state['disk']} ({state['cs']})")
        return found


def records_on_disk(lab: NodeBackend, node: str, device: str, upto: int) -> dict:
    """{N: boot id} of the records 0..upto found on `device`, read on `node` with O_DIRECT
    (what the disk holds, not a page cache)."""
    count = (upto + 1) * 512 // (1 << 20) + 1
    result = lab.run(node, ["sh", "-c", f"dd if={device} bs=1M skip=1 count={count} iflag=direct 2>/dev/null "
                                        "| tr '\\000' '\\n' | grep -a '^xenha-seq '"], timeout=120)
    if result.returncode not in (0, 1) or result.timed_out:
        raise LabError(f"reading the guest's records: {result.describe()}")
    records = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[1].isdigit():
            records[int(words[1])] = words[2]
    return records


def lost_writes(acknowledged: dict, records: dict) -> list[str]:
    """Every acknowledged write that the disk does not hold as written (missing, or
    overwritten by a later boot that resumed too early)."""
    lost = []
    for n, tag in sorted(acknowledged.items()):
        found = records.get(n)
        if found is None:
            lost.append(f"record {n} missing")
        elif tag and not found.startswith(tag):
            lost.append(f"record {n} written by boot {tag} holds boot {found[:8]}")
    return lost
