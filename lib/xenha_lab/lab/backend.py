"""What a scenario needs from the machines of a lab, whatever they are.

A backend runs a set of named cluster nodes: namespaces on this machine
(`xenha_lab.lab.namespace`), later emulated machines (QEMU with real Xen, DRBD and LVM,
issue 12). Scenarios, invariants and the `xenha lab` commands are written against this
interface only, so a second backend plugs in without touching them.

Every method is bounded in time; failures raise LabError with a one-line message.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


class LabError(Exception):
    """A lab operation failed; the message is one line, for a person."""


@dataclass(frozen=True)
class CommandResult:
    """A command run inside a node."""
    node: str
    argv: tuple
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """One line: what ran where and how it ended (for error messages)."""
        ending = "timed out" if self.timed_out else f"exit {self.returncode}"
        words = " ".join(self.argv)
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"{self.node}: `{words}` {ending}" + (f": {tail[-1]}" if tail else "")


@dataclass(frozen=True)
class NodeState:
    """A node as its backend sees it (not as the cluster sees it)."""
    name: str
    address: str
    power: str                 # "on" | "off"
    booted: bool               # its cluster stack was started (corosync answered, pacemakerd launched)
    link: str                  # "up" | "cut" (no link at all)
    segment: int               # network segment: nodes on the same segment see each other
    boots: int = 0             # how many times it was powered on
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "address": self.address, "power": self.power, "booted": self.booted,
                "link": self.link, "segment": self.segment, "boots": self.boots, **self.details}


class NodeBackend(abc.ABC):
    """A running (or to-be-started) lab of cluster nodes."""

    #: the node names, in order
    nodes: list[str]
    #: where the simulated guests log their acknowledged writes (a host directory, outside
    #: every node), None when the backend's guests keep no such log
    guest_log_dir: str | None = None

    @abc.abstractmethod
    def up(self, timeout: float = 90.0) -> dict:
        """Start every node and its cluster stack (cleaning up what an earlier, aborted run
        left); return timings ({"online": seconds, ...})."""

    @abc.abstractmethod
    def down(self, timeout: float = 60.0) -> dict:
        """Stop everything the lab started; nothing stays behind (processes, namespaces,
        mounts, loop devices). Safe to call at any time, also twice."""

    @abc.abstractmethod
    def run(self, node: str, argv, timeout: float = 60.0, input: str | None = None) -> CommandResult:
        """Run `argv` inside `node` (its namespaces/OS, its clean environment and PATH)."""

    @abc.abstractmethod
    def read_file(self, node: str, path: str) -> bytes | None:
        """The node's own view of a file (None if it does not exist or the node is off).
        Cheap enough to sample several times a second."""

    @abc.abstractmethod
    def power(self, node: str, action: str) -> None:
        """"off" (a power cut: every process and the node's RAM state gone at once, its
        disks kept), "on" (boot), "reboot"."""

    @abc.abstractmethod
    def cut(self, node: str) -> None:
        """Pull the node's network cable (its link goes down)."""

    @abc.abstractmethod
    def restore(self, node: str) -> None:
        """Plug the node's cable back in."""

    @abc.abstractmethod
    def partition(self, *groups) -> None:
        """Split the network: each group of node names on a segment of its own, the nodes
        not named together on another."""

    @abc.abstractmethod
    def heal(self) -> None:
        """One network again, every link up."""

    @abc.abstractmethod
    def node_state(self, node: str) -> NodeState:
        """The node's power, boot and link state."""

    @abc.abstractmethod
    def events(self) -> list[dict]:
        """What the lab did and when (power actions with who asked: the fence agent or
        an operator; network changes), oldest first: {"time", "what", "node", "by"}."""

    def list_dir(self, node: str, path: str) -> list[str] | None:
        """The names in a directory of the node (None when it does not exist or the node
        is off). Backends override this with something cheaper than a command."""
        result = self.run(node, ["ls", "-A", path], timeout=15.0)
        return result.stdout.split() if result.ok else None

    def disk_blocks(self, node: str, backing: str) -> dict:
        """What the node's DRBD backing device `backing` holds (block number -> 4 KiB),
        read without touching the node (also when it is off)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read a node's disk")

    # --- conveniences on top of the primitives --------------------------------------------------------------------
    def check(self, node: str, argv, timeout: float = 60.0, input: str | None = None) -> CommandResult:
        """run(), raising LabError unless the command succeeded."""
        result = self.run(node, argv, timeout=timeout, input=input)
        if not result.ok:
            raise LabError(result.describe())
        return result

    def exists(self, node: str, path: str) -> bool:
        return self.read_file(node, path) is not None

    def powered(self) -> list[str]:
        """The nodes that are on and booted."""
        return [n for n in self.nodes if (s := self.node_state(n)).power == "on" and s.booted]
