"""Enrolled phones and the one-time codes that enrol them."""
from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .org import Team
from .people import User
from .types import UTCDateTime, utcnow


class Device(db.Model):
    """A phone. Its bearer token is kept only as a SHA-256 hash; what it last reported is kept for supervisors."""

    __tablename__ = "device"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    enrolled_at = mapped_column(UTCDateTime, default=utcnow)
    revoked_at = mapped_column(UTCDateTime, nullable=True)
    app_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_push_at = mapped_column(UTCDateTime, nullable=True)
    last_pull_at = mapped_column(UTCDateTime, nullable=True)
    last_contact_at = mapped_column(UTCDateTime, nullable=True)
    outbox_depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    oldest_unsent_age_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    clock_skew_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    accepted_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    last_cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    user = relationship(User, lazy="joined")
    team = relationship(Team, lazy="joined")


class EnrolCode(db.Model):
    """A one-time, expiring enrolment code (kept hashed) for a team and optionally a worker."""

    __tablename__ = "enrol_code"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    created_at = mapped_column(UTCDateTime, default=utcnow)
    expires_at = mapped_column(UTCDateTime)
    used_at = mapped_column(UTCDateTime, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    team = relationship(Team, lazy="joined")
    user = relationship(User, foreign_keys=[user_id], lazy="joined")
