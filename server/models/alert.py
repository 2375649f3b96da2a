"""Alerts raised for people (SOS, need help, missed check-in, region below minimum, response breach).

One row per condition: ``(kind, ref)`` is unique, so raising the same
condition twice (two timer threads, two processes) makes one alert.
``ref`` names the condition: the check-in record id (sos, need_help), the
worker and the instant the check-in fell due (missed_check_in), the job
and measure (response_breach), or the region and its episode number
(below_minimum). ``cleared_at`` is set by the timer when the condition no
longer holds (the technician checked in, the region has enough people
again); an alert stays *open* until a person acknowledges it.
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

ALERT_KINDS = ("sos", "need_help", "missed_check_in", "below_minimum", "response_breach")


class Alert(db.Model):
    """One alert, unique per (kind, ref): e.g. ("sos", check-in record id). Acknowledged once by a person."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_alert_kind_ref"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    ref: Mapped[str] = mapped_column(String(128))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), nullable=True, index=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # what the alert is about, for people: a worker code, a region code, a site and job
    subject: Mapped[str] = mapped_column(String(200), default="", server_default="")
    message: Mapped[str] = mapped_column(Text, default="")
    raised_at = mapped_column(UTCDateTime, default=utcnow, index=True)
    cleared_at = mapped_column(UTCDateTime, nullable=True)
    acknowledged_at = mapped_column(UTCDateTime, nullable=True, index=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None
