"""The device's SQLite store: one file per device, WAL, migrations by ``PRAGMA user_version``.

Tables (see :data:`MIGRATIONS`):

- ``meta``: key/value settings (enrolment, pinned server keys, wrapped keys,
  PIN lock-out counters, the HLC's last stamp). Secrets in it are wrapped.
- ``records``: one row per record: id, kind, greatest revision, and the
  *readable copy* (the merged state from :mod:`shared.merge`) encrypted with
  the data key. No plaintext index: listing decrypts.
- ``outbox``: sealed envelopes waiting for the server, with kind and priority
  (metadata, not content) and the last error. Never plaintext; the server's
  error *message* can quote a field value, so it is stored encrypted too.
  The one readable exception is ``label`` (schema 2): a check-in's status
  (``ok``/``need_help``/``sos``), which its priority already half reveals, so
  the sync screen can name what waits. Every other kind leaves it NULL.
- ``cursor``: where the pull feed stands.
- ``receipts``: server-signed sync receipts (ids, revisions, hashes only).
- ``sync_log``: one row per sync run.

Invariants:

- Everything that must change together changes in one :meth:`Store.transaction`
  (a record and its outbox row; a pulled page and its cursor; an outbox
  settlement and its receipt), so killing the app at any instant leaves either
  the old or the new state, never half.
- ``synchronous=FULL`` by default: a record the technician saw saved survives a
  power cut, not only an app kill. It costs one fsync per save (most of a save's
  time on slow flash); ``NORMAL`` (WAL) still survives any app kill and is
  offered as a setting for devices where that trade is acceptable.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

MIGRATIONS: tuple[str, ...] = (
    # 1: first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE records (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        rev TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('device', 'server')),
        updated_at TEXT NOT NULL,
        blob BLOB NOT NULL
    );
    CREATE INDEX records_kind_rev ON records (kind, rev);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL,
        rev TEXT NOT NULL,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rejected')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_attempt_at TEXT,
        last_error_reason TEXT,
        last_error_message BLOB,
        UNIQUE (record_id, rev)
    );
    CREATE INDEX outbox_order ON outbox (status, priority, seq);
    CREATE TABLE cursor (name TEXT PRIMARY KEY, value INTEGER NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE receipts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        issued_at TEXT NOT NULL,
        kid TEXT NOT NULL,
        item_count INTEGER NOT NULL,
        document TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE TABLE sync_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        ok INTEGER,
        pushed INTEGER NOT NULL DEFAULT 0,
        accepted INTEGER NOT NULL DEFAULT 0,
        duplicate INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        pulled INTEGER NOT NULL DEFAULT 0,
        error_reason TEXT,
        error_message TEXT
    );
    """,
    # 2: a check-in's status next to its envelope (NULL for every other kind and for rows queued before)
    """
    ALTER TABLE outbox ADD COLUMN label TEXT
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
FEED_CURSOR = "feed"


class StoreError(Exception):
    """The store cannot be opened (e.g. written by a newer app)."""


class Store:
    """SQL access for one device. Thread-safe: one connection, one lock, explicit transactions."""

    def __init__(self, path: str | Path, synchronous: str = "FULL"):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a transaction is exactly what we say.
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA foreign_keys=ON")
        # Deleted rows (e.g. a sent envelope) are overwritten with zeros, not left in free pages.
        self._db.execute("PRAGMA secure_delete=ON")
        self.migrate()

    # --- lifecycle ---------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION`, one migration per transaction."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"the store at {self.path} was written by a newer app (schema {version}); update the app")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in _statements(MIGRATIONS[number - 1]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            # IMMEDIATE: take the write lock up front so two processes on one data dir queue, not deadlock.
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Rows of a read-only statement."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        """Run one statement (inside the caller's transaction when there is one)."""
        with self._lock:
            return self._db.execute(sql, params)

    # --- meta ----------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A JSON value from ``meta``, or ``default``."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value in ``meta``."""
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def set_many_meta(self, values: dict) -> None:
        """Store several meta values in one transaction."""
        with self.transaction():
            for key, value in values.items():
                self.set_meta(key, value)

    # --- records (readable copies; blobs are encrypted by the caller) -----------------

    def get_record_row(self, record_id: str) -> sqlite3.Row | None:
        """The row of one record, or None."""
        rows = self.query("SELECT * FROM records WHERE id = ?", (record_id,))
        return rows[0] if rows else None

    def put_record_row(self, record_id: str, kind: str, rev: str, origin: str, updated_at: str, blob: bytes) -> None:
        """Insert or replace one record's readable copy."""
        self.execute(
            "INSERT INTO records (id, kind, rev, origin, updated_at, blob) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET rev = excluded.rev, updated_at = excluded.updated_at, blob = excluded.blob",
            (record_id, kind, rev, origin, updated_at, blob),
        )

    def record_rows(self, kind: str, newest_first: bool = True, limit: int | None = None) -> list[sqlite3.Row]:
        """Rows of one kind ordered by revision (HLC order is time order)."""
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM records WHERE kind = ? ORDER BY rev {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.query(sql, (kind,))

    def count_records(self) -> dict[str, int]:
        """Number of records per kind."""
        return {r["kind"]: r["n"] for r in self.query("SELECT kind, COUNT(*) AS n FROM records GROUP BY kind")}

    # --- cursor ----------------------------------------------------------------------

    def get_cursor(self, name: str = FEED_CURSOR) -> int:
        """The last feed sequence number applied (0 before the first pull)."""
        rows = self.query("SELECT value FROM cursor WHERE name = ?", (name,))
        return rows[0]["value"] if rows else 0

    def set_cursor(self, value: int, at: str, name: str = FEED_CURSOR) -> None:
        """Move the cursor; call inside the transaction that applies its page."""
        self.execute(
            "INSERT INTO cursor (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (name, value, at),
        )

    # --- receipts ----------------------------------------------------------------------

    def add_receipt(self, receipt: dict, received_at: str) -> None:
        """Keep a verified server receipt."""
        self.execute(
            "INSERT INTO receipts (issued_at, kid, item_count, document, received_at) VALUES (?, ?, ?, ?, ?)",
            (receipt["issued_at"], receipt["kid"], len(receipt["items"]), json.dumps(receipt, sort_keys=True), received_at),
        )

    def receipts(self, limit: int = 20) -> list[dict]:
        """The newest receipts, newest first."""
        rows = self.query("SELECT document, received_at FROM receipts ORDER BY id DESC LIMIT ?", (limit,))
        return [{**json.loads(r["document"]), "received_at": r["received_at"]} for r in rows]

    # --- sync log ----------------------------------------------------------------------

    def start_sync_log(self, started_at: str) -> int:
        """Open a sync-log row; returns its id."""
        with self.transaction():
            return self.execute("INSERT INTO sync_log (started_at) VALUES (?)", (started_at,)).lastrowid

    def finish_sync_log(self, log_id: int, finished_at: str, ok: bool, counts: dict, error: tuple[str, str] | None) -> None:
        """Close a sync-log row with its outcome."""
        reason, message = error or (None, None)
        with self.transaction():
            self.execute(
                "UPDATE sync_log SET finished_at = ?, ok = ?, pushed = ?, accepted = ?, duplicate = ?, rejected = ?, "
                "pulled = ?, error_reason = ?, error_message = ? WHERE id = ?",
                (finished_at, int(ok), counts.get("pushed", 0), counts.get("accepted", 0), counts.get("duplicate", 0),
                 counts.get("rejected", 0), counts.get("pulled", 0), reason, message, log_id),
            )

    def last_sync(self, ok: bool | None = None) -> dict | None:
        """The newest finished sync run (only successful ones with ``ok=True``)."""
        sql = "SELECT * FROM sync_log WHERE finished_at IS NOT NULL"
        if ok is not None:
            sql += f" AND ok = {int(ok)}"
        rows = self.query(sql + " ORDER BY id DESC LIMIT 1")
        return dict(rows[0]) if rows else None


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on ';' instead (no ';' inside our DDL strings).
    return [s.strip() for s in script.split(";") if s.strip()]
