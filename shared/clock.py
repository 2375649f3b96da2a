"""Hybrid logical clock (HLC): revision stamps that order edits across devices.

A stamp is ``(wall_ms, counter, node)``. It never goes backwards on one node,
it moves past every stamp the node has seen (``receive``), and ties between
nodes are broken by node id, so any two stamps compare the same way everywhere.

The string form ``"<wall_ms:013d>-<counter:04x>-<node>"`` sorts like the stamp,
so the database and the merge rules can compare strings directly. Only that
exact form parses, and a counter that would pass ``ffff`` carries into
``wall_ms + 1`` instead, so the form always holds.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

# Only the canonical form: any other spelling (upper-case hex, "0x", spaces, "_",
# signs, non-ASCII digits) would parse to a stamp whose string sorts differently.
_STAMP_FORM = re.compile(r"([0-9]{13})-([0-9a-f]{4})-(.+)", re.DOTALL)
_MAX_COUNTER = 0xFFFF  # four hex digits in the string form


@dataclass(frozen=True, order=True)
class Stamp:
    """One HLC reading; ordered by (wall_ms, counter, node)."""

    wall_ms: int
    counter: int
    node: str

    def __str__(self) -> str:
        return f"{self.wall_ms:013d}-{self.counter:04x}-{self.node}"

    @classmethod
    def parse(cls, text: str) -> "Stamp":
        """Parse the string form; raises ValueError for anything else."""
        match = _STAMP_FORM.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not an HLC stamp: {text!r}")
        return cls(int(match[1]), int(match[2], 16), match[3])


def _stamp(wall: int, counter: int, node: str) -> Stamp:
    # A counter past four hex digits would break the string form: carry into the wall time.
    return Stamp(wall + 1, 0, node) if counter > _MAX_COUNTER else Stamp(wall, counter, node)


def is_stamp(text: object) -> bool:
    """True when ``text`` is a well-formed stamp string."""
    if not isinstance(text, str):
        return False
    try:
        Stamp.parse(text)
    except ValueError:
        return False
    return True


class HybridLogicalClock:
    """A thread-safe HLC for one node. ``now_ms`` is injectable for tests."""

    def __init__(self, node: str, now_ms: Callable[[], int] | None = None, last: str | None = None):
        self.node = node
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._last = Stamp.parse(last) if last else Stamp(0, 0, node)
        self._lock = threading.Lock()

    def tick(self) -> Stamp:
        """A new stamp for a local event, greater than every stamp seen so far."""
        with self._lock:
            wall = self._now_ms()
            if wall > self._last.wall_ms:
                self._last = Stamp(wall, 0, self.node)
            else:
                self._last = _stamp(self._last.wall_ms, self._last.counter + 1, self.node)
            return self._last

    def receive(self, remote: str | Stamp) -> Stamp:
        """Move past a stamp seen from another node; returns the new local stamp."""
        other = Stamp.parse(remote) if isinstance(remote, str) else remote
        with self._lock:
            wall = max(self._now_ms(), self._last.wall_ms, other.wall_ms)
            if wall == self._last.wall_ms == other.wall_ms:
                counter = max(self._last.counter, other.counter) + 1
            elif wall == self._last.wall_ms:
                counter = self._last.counter + 1
            elif wall == other.wall_ms:
                counter = other.counter + 1
            else:
                counter = 0
            self._last = _stamp(wall, counter, self.node)
            return self._last

    @property
    def last(self) -> Stamp:
        """The latest stamp issued or received."""
        return self._last
