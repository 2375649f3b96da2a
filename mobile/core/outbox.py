"""The outbox: sealed envelopes waiting for the server, in the order they must travel.

Priority (lower travels first; ties keep the order they were saved in):

====  =================================================
0     SOS and need-help check-ins: someone needs help now
1     other check-ins ("I am OK": late ones raise alarms)
2     safety checks
3     site status
4     repair-job updates
====  =================================================

Invariants:

- A row holds the envelope exactly as sealed at save time: resending it after a
  lost answer sends the same bytes, so the server answers "duplicate".
- A row leaves the outbox only when the server has answered for it (accepted or
  duplicate). Rejected rows stay, with the server's reason, until the
  technician (or a later app version) sends them again.
- The server's *message* about a rejection may quote a field value (e.g. a
  temperature), so it is stored encrypted with the data key.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from .keystore import Keys
from .store import Store

PRIORITY_URGENT, PRIORITY_CHECK_IN, PRIORITY_SAFETY, PRIORITY_SITE, PRIORITY_JOB = range(5)
_KIND_PRIORITY = {"check_in": PRIORITY_CHECK_IN, "safety_check": PRIORITY_SAFETY,
                  "site_status": PRIORITY_SITE, "repair_job": PRIORITY_JOB}
URGENT_CHECK_INS = frozenset({"sos", "need_help"})
CHECK_IN_LABELS = frozenset({"ok", "need_help", "sos"})
PENDING, REJECTED = "pending", "rejected"
# Room for the push request's other fields ({"items": [...], "outbox_depth": ..., ...}).
BODY_OVERHEAD = 512


def priority_of(kind: str, body: dict) -> int:
    """The priority of a record (see the module docstring)."""
    if kind == "check_in" and body.get("status") in URGENT_CHECK_INS:
        return PRIORITY_URGENT
    return _KIND_PRIORITY.get(kind, PRIORITY_JOB + 1)


def label_of(kind: str, body: dict) -> str | None:
    """The readable label kept next to a sealed row: a check-in's status, nothing for any other kind."""
    if kind == "check_in" and body.get("status") in CHECK_IN_LABELS:
        return body["status"]
    return None


def envelope_text(envelope: dict) -> str:
    """The compact JSON text an envelope is stored and sent as."""
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class OutboxItem:
    """One queued revision."""

    seq: int
    record_id: str
    rev: str
    kind: str
    priority: int
    envelope_json: str
    size: int
    created_at: str
    label: str | None = None

    @property
    def envelope(self) -> dict:
        """The envelope's wire dict."""
        return json.loads(self.envelope_json)


def _item(row) -> OutboxItem:
    return OutboxItem(row["seq"], row["record_id"], row["rev"], row["kind"], row["priority"],
                      row["envelope"], row["size"], row["created_at"], row["label"])


class Outbox:
    """Queue operations over the ``outbox`` table."""

    def __init__(self, store: Store):
        self.store = store

    def add(self, envelope: dict, kind: str, priority: int, created_at: str, label: str | None = None) -> int:
        """Queue a sealed envelope; call inside the transaction that saves its record.

        ``label`` is readable in the file: pass only :func:`label_of` (a check-in's status).
        """
        if label is not None and not (kind == "check_in" and label in CHECK_IN_LABELS):
            raise ValueError(f"only a check-in's status may be kept readable in the outbox, not {label!r} for {kind}")
        header, text = envelope["h"], envelope_text(envelope)
        cur = self.store.execute(
            "INSERT INTO outbox (record_id, rev, kind, priority, envelope, size, created_at, label) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (header["rid"], header["rev"], kind, priority, text, len(text.encode("utf-8")), created_at, label),
        )
        return cur.lastrowid

    def next_batch(self, max_items: int, max_bytes: int, skip: frozenset[int] = frozenset()) -> list[OutboxItem]:
        """The next pending items in priority order, as many as fit both limits.

        The first item is always returned (even alone over the byte limit) so the
        caller can decide what to do with an item that can never fit.
        """
        budget = max_bytes - BODY_OVERHEAD
        batch: list[OutboxItem] = []
        rows = self.store.query(
            "SELECT * FROM outbox WHERE status = ? ORDER BY priority, seq LIMIT ?",
            (PENDING, max_items + len(skip)),
        )
        for row in rows:
            if row["seq"] in skip:
                continue
            cost = row["size"] + 1  # the comma between items
            if batch and (len(batch) >= max_items or cost > budget):
                break
            batch.append(_item(row))
            budget -= cost
        return batch

    def remove(self, seqs: list[int]) -> None:
        """Drop rows the server has answered for (accepted or duplicate)."""
        self.store.execute(f"DELETE FROM outbox WHERE seq IN ({_marks(seqs)})", tuple(seqs))

    def reject(self, item: OutboxItem, reason: str, message: str, at: str, keys: Keys) -> None:
        """Keep a row the server refused, with its reason and (encrypted) message."""
        blob = keys.encrypt(message or "", _message_aad(item.record_id, item.rev))
        self.store.execute(
            "UPDATE outbox SET status = ?, last_error_reason = ?, last_error_message = ?, last_attempt_at = ?, "
            "attempts = attempts + 1 WHERE seq = ?",
            (REJECTED, reason or "rejected", blob, at, item.seq),
        )

    def note_attempt(self, seqs: list[int], at: str) -> None:
        """Count a send that got no per-item answer (network failure)."""
        if seqs:
            self.store.execute(
                f"UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ? WHERE seq IN ({_marks(seqs)})",
                (at, *seqs),
            )

    def requeue_rejected(self) -> int:
        """Send rejected rows again (e.g. after the supervisor fixed the cause); returns how many."""
        with self.store.transaction():
            return self.store.execute(
                "UPDATE outbox SET status = ?, last_error_reason = NULL, last_error_message = NULL WHERE status = ?",
                (PENDING, REJECTED),
            ).rowcount

    def depth(self) -> int:
        """Number of pending rows."""
        return self.store.query("SELECT COUNT(*) AS n FROM outbox WHERE status = ?", (PENDING,))[0]["n"]

    def oldest_pending_age_s(self, now: datetime) -> int | None:
        """Age in seconds of the oldest pending row, or None when nothing is pending."""
        rows = self.store.query("SELECT MIN(created_at) AS t FROM outbox WHERE status = ?", (PENDING,))
        if not rows[0]["t"]:
            return None
        return max(0, int((now - datetime.fromisoformat(rows[0]["t"])).total_seconds()))

    def counts(self) -> dict[str, dict[str, int]]:
        """{status: {kind: n}} for a status screen."""
        out: dict[str, dict[str, int]] = {PENDING: {}, REJECTED: {}}
        for row in self.store.query("SELECT status, kind, COUNT(*) AS n FROM outbox GROUP BY status, kind"):
            out[row["status"]][row["kind"]] = row["n"]
        return out

    def items(self, status: str | None = None, limit: int = 1000) -> list[OutboxItem]:
        """Rows in sending order (all statuses unless ``status``)."""
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self.store.query(f"SELECT * FROM outbox {where} ORDER BY priority, seq LIMIT ?", (*params, limit))
        return [_item(r) for r in rows]

    def rejected(self, keys: Keys) -> list[dict]:
        """Rejected rows with the server's reason and message, for the technician to see."""
        rows = self.store.query("SELECT * FROM outbox WHERE status = ? ORDER BY seq", (REJECTED,))
        return [{
            "record_id": r["record_id"], "rev": r["rev"], "kind": r["kind"], "created_at": r["created_at"],
            "reason": r["last_error_reason"], "attempts": r["attempts"], "last_attempt_at": r["last_attempt_at"],
            "message": keys.decrypt(r["last_error_message"], _message_aad(r["record_id"], r["rev"]))
            if r["last_error_message"] is not None else "",
        } for r in rows]


def _message_aad(record_id: str, rev: str) -> str:
    return f"outbox-error|{record_id}|{rev}"


def _marks(values) -> str:
    return ",".join("?" * len(values))
