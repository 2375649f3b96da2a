"""Alerts raised for people (SOS, need help, missed check-in, region below minimum, response breach)."""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class Alert(db.Model):
    """One alert, unique per (kind, ref): e.g. ("sos", check-in record id). Acknowledged once by a person."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_alert_kind_ref"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    ref: Mapped[str] = mapped_column(String(128))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), nullable=True, index=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    raised_at = mapped_column(UTCDateTime, default=utcnow, index=True)
    acknowledged_at = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
