"""One deadline per operation, taken from Pacemaker's op timeout.

Pacemaker kills an agent when `CRM_meta_timeout` runs out; an agent killed that way
leaves no exit reason and, for stop, gets its node fenced. So every action works
against a deadline that ends a little *before* Pacemaker's, every external call gets a
timeout from what is left, and callers reserve time for their forced path (e.g.
`xl destroy` after a graceful shutdown ran out).
"""

import time


class DeadlineExceeded(Exception):
    """Raised when an operation has no time left for a step it must not skip."""


class Deadline:
    """A point in monotonic time by which the agent must have answered."""

    __slots__ = ("end", "total", "_clock")

    # Time kept back from Pacemaker's timeout so the agent can still log, write its
    # exit reason and exit: 5% of the timeout, at least 0.2 s, at most 2 s.
    @staticmethod
    def margin_for(total: float) -> float:
        return min(2.0, max(0.2, total * 0.05))

    def __init__(self, total_seconds: float, clock=time.monotonic):
        self._clock = clock
        self.total = total_seconds
        self.end = clock() + total_seconds - self.margin_for(total_seconds)

    @classmethod
    def from_timeout_ms(cls, timeout_ms: int | None, default_seconds: float, clock=time.monotonic):
        seconds = timeout_ms / 1000.0 if timeout_ms and timeout_ms > 0 else default_seconds
        return cls(seconds, clock)

    def remaining(self, reserve: float = 0.0) -> float:
        """Seconds left before the deadline, keeping `reserve` seconds back (never < 0)."""
        return max(0.0, self.end - reserve - self._clock())

    def expired(self, reserve: float = 0.0) -> bool:
        return self.remaining(reserve) <= 0.0

    def timeout(self, wanted: float | None = None, reserve: float = 0.0) -> float:
        """A timeout for one step: at most `wanted`, leaving `reserve` for what follows.

        Raises DeadlineExceeded when nothing is left, so the caller can report it
        instead of starting a call that would be killed half-way.
        """
        left = self.remaining(reserve)
        if left <= 0.0:
            raise DeadlineExceeded(f"no time left (reserving {reserve:.1f}s)")
        return left if wanted is None else min(wanted, left)

    def sleep(self, seconds: float, reserve: float = 0.0) -> bool:
        """Sleep up to `seconds` without crossing the deadline; False if time is up."""
        left = self.remaining(reserve)
        if left <= 0.0:
            return False
        time.sleep(min(seconds, left))
        return self.remaining(reserve) > 0.0

    def elapsed_fraction(self) -> float:
        if self.total <= 0:
            return 1.0
        return 1.0 - self.remaining() / self.total
