"""Hybrid logical clock (HLC): revision stamps that order edits across devices.

A stamp is ``(wall_ms, counter, node)``. It never goes backwards on one node,
it moves past every stamp the node has seen (``receive``), and ties between
nodes are broken by node id, so any two stamps compare the same way everywhere.

The string form ``"<wall_ms:013d>-<counter:04x>-<node>"`` sorts like the stamp,
so the database and the merge rules can compare strings directly.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable


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
        wall, counter, node = text.split("-", 2)
        if len(wall) != 13 or len(counter) != 4 or not node:
            raise ValueError(f"not an HLC stamp: {text!r}")
        return cls(int(wall), int(counter, 16), node)


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
                self._last = Stamp(self._last.wall_ms, self._last.counter + 1, self.node)
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
            self._last = Stamp(wall, counter, self.node)
            return self._last

    @property
    def last(self) -> Stamp:
        """The latest stamp issued or received."""
        return self._last
