"""Disclosure proofs for revisions stored before migration 0008 (``Revision.proof`` NULL).

A push stores each revision's proof (records.disclosure_proof); an export embeds it. Older revisions
still export, but each is decrypted and its salts derived again, row by row, every time: backfilling
their proofs once makes every later export of them take the fast path.
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import func, select, update

from shared import envelope
from shared.crypto import b64d

from ..extensions import db
from ..models import Revision
from . import records
from .keys import KeyRing


def missing_count() -> int:
    """Device-signed revisions without a stored proof."""
    return db.session.scalar(select(func.count()).select_from(Revision).where(*_MISSING)) or 0


def backfill(ring: KeyRing, batch: int = 1000, progress: Callable[[int], None] | None = None) -> int:
    """Store the proof of every device-signed revision that has none, a batch per transaction; returns how many.

    The proof is derived as the push derives it: salts from the revision's secret, digests over the whole
    body (health fields decrypted), so it equals what the push would have stored.
    """
    done = 0
    while True:
        rows = db.session.execute(
            select(Revision.id, Revision.kind, Revision.body, Revision.health, Revision.health_key_id, Revision.secret)
            .where(*_MISSING).order_by(Revision.id).limit(batch)
        ).all()
        if not rows:
            return done
        db.session.execute(update(Revision), [{"id": row.id, "proof": _proof(row, ring)} for row in rows])  # one executemany
        db.session.commit()
        done += len(rows)
        if progress:
            progress(len(rows))


def _proof(row, ring: KeyRing) -> str:
    body = records.join_health(dict(row.body), row.health, row.health_key_id, ring)
    secret = b64d(row.secret)
    salts = envelope.field_salts(body, secret)
    return records.disclosure_proof(row.kind, salts, envelope.field_digests(body, secret, salts))


_MISSING = (Revision.proof.is_(None), Revision.secret.is_not(None), Revision.signature.is_not(None))
