"""Revisions as received (evidence), the current state of each record, and the change feed."""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class Revision(db.Model):
    """One accepted revision: the sealed envelope exactly as received, and its opened form.

    ``body`` is the opened record without health fields; those are in
    ``health`` (AES-GCM under the server's data key, see services.keys), so a
    database dump shows no health data. ``secret`` and ``signature`` let an
    export prove each field to an auditor (shared.envelope.disclose); ``proof``
    holds what the export derives from the secret, made once at push.
    A person-made revision (dashboard) has no envelope and no device.
    """

    __tablename__ = "revision"
    __table_args__ = (UniqueConstraint("record_id", "rev", name="uq_revision_record_rev"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64))
    rev: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    author_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    envelope: Mapped[str | None] = mapped_column(Text, nullable=True)
    envelope_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict] = mapped_column(JSON)
    health: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    health_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    secret: Mapped[str | None] = mapped_column(String(32), nullable=True)
    signature: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # services.records.disclosure_proof: salts and withheld digests made at push, so exports need not (NULL before 0008)
    proof: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occurred_at = mapped_column(UTCDateTime, nullable=True)
    received_at = mapped_column(UTCDateTime, default=utcnow)


Index("ix_revision_kind_occurred", Revision.kind, Revision.occurred_at)


class RecordState(db.Model):
    """The merged current state of one record (shared.merge), with columns the dashboard filters on."""

    __tablename__ = "record_state"
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    rev: Mapped[str] = mapped_column(String(128))
    body: Mapped[dict] = mapped_column(JSON)
    field_revs: Mapped[dict] = mapped_column(JSON, default=dict)
    device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    site_code: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    region_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    occurred_at = mapped_column(UTCDateTime, nullable=True)
    updated_at = mapped_column(UTCDateTime, default=utcnow)


Index("ix_record_state_kind_status", RecordState.kind, RecordState.status)
Index("ix_record_state_kind_occurred", RecordState.kind, RecordState.occurred_at)


class Change(db.Model):
    """The change feed: every accepted revision, numbered in commit order (``seq``).

    Devices pull "changes after cursor". ``seq`` is assigned under a
    transaction-scoped lock on PostgreSQL (see services.sync), so a change
    that commits late never gets a number below one already visible.
    """

    __tablename__ = "change"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64))
    rev: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    revision_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    team_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    region_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at = mapped_column(UTCDateTime, default=utcnow)


# Pull reads "what this device may see after seq C" as one ordered index range per visibility rule
# (services.feed.pull), so a page costs its own size, not the size of the feed behind it (migration 0006).
Index("ix_change_worker_seq", Change.worker_id, Change.seq)
Index("ix_change_team_kind_seq", Change.team_id, Change.kind, Change.seq)
Index("ix_change_region_kind_seq", Change.region_id, Change.kind, Change.seq)


# The overview's read paths (issue 5, migration 0005): each on-duty technician's latest safety check and
# check-in is a range seek per worker (kind, worker, time); so is one worker's recent history (safety.worker_records).
Index("ix_record_state_kind_worker_occurred", RecordState.kind, RecordState.worker_id, RecordState.occurred_at)
