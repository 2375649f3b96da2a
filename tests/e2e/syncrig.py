"""Helpers for the sync fault tests: read-only checks of the server's database, ``fieldwatch stats``.

The server is :class:`tests.mobile.core.realserver.RealServer` (a child process
on a free port, SQLite database, killable with SIGKILL and restartable on the
same port and database). Checks read the server's database **read-only** with
``sqlite3`` (never through the server's own code), or run ``fieldwatch stats
--json`` on the same database.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.mobile.core.realserver import RealServer  # noqa: E402,F401

PIN = "2468"


class ServerDB:
    """Read-only views of a server's SQLite database (opened per query, never written)."""

    def __init__(self, server: RealServer):
        self.path = server.base / "fieldwatch.db"

    def rows(self, sql: str, params=()) -> list[tuple]:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params=()):
        return self.rows(sql, params)[0][0]

    def _in(self, ids) -> tuple[str, tuple]:
        ids = tuple(ids)
        return ",".join("?" * len(ids)), ids

    def revisions(self, record_ids) -> list[tuple[str, str]]:
        """(record id, revision) of every stored revision of these records, one row per stored copy."""
        marks, ids = self._in(record_ids)
        return self.rows(f"SELECT record_id, rev FROM revision WHERE record_id IN ({marks})", ids)

    def changes(self, record_ids) -> list[tuple[str, str]]:
        marks, ids = self._in(record_ids)
        return self.rows(f'SELECT record_id, rev FROM "change" WHERE record_id IN ({marks})', ids)

    def states(self, record_ids) -> int:
        marks, ids = self._in(record_ids)
        return self.scalar(f"SELECT COUNT(*) FROM record_state WHERE record_id IN ({marks})", ids)

    def quarantined(self, record_ids) -> int:
        marks, ids = self._in(record_ids)
        return self.scalar(f"SELECT COUNT(*) FROM quarantine WHERE record_id IN ({marks})", ids)

    def device_revisions(self, device_id: str) -> int:
        return self.scalar("SELECT COUNT(*) FROM revision WHERE device_id = ?", (device_id,))

    def state_of(self, record_id: str) -> dict:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            row = con.execute("SELECT * FROM record_state WHERE record_id = ?", (record_id,)).fetchone()
        finally:
            con.close()
        return dict(row) if row else {}

    def max_seq(self) -> int:
        return self.scalar('SELECT COALESCE(MAX(seq), 0) FROM "change"')

    def assert_exactly_once(self, saved) -> None:
        """Every saved revision is stored once, has one change in the feed, nothing is quarantined."""
        expected = sorted((s.record_id, s.rev) for s in saved)
        ids = {s.record_id for s in saved}
        assert sorted(self.revisions(ids)) == expected, "the server does not hold each saved revision exactly once"
        assert sorted(self.changes(ids)) == expected, "the change feed does not list each revision exactly once"
        assert self.states(ids) == len(ids)
        assert self.quarantined(ids) == 0


def fieldwatch_stats(server: RealServer) -> dict:
    """``fieldwatch stats --json`` run on the server's database (a separate process)."""
    env = {**os.environ, "FIELDWATCH_DATABASE_URL": server.db_url, "FIELDWATCH_KEYS_DIR": server.keys_dir,
           "FIELDWATCH_SECRET_KEY": "e2e-secret", "FIELDWATCH_LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-c", "from server.cli import main; main()", "stats", "--json"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


class Naps(list):
    """The device's backoff sleeps, recorded and skipped (retries happen at once; the test never waits on them)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def reopen(device, **overrides):
    """The same data dir opened again (as after an app restart), unlocked with the PIN."""
    from dataclasses import replace

    from mobile.core.services import Device

    again = Device(replace(device.settings, **overrides))
    again.unlock(PIN)
    return again
