"""People who sign in: technicians, supervisors (of some regions), admins, auditors."""
from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .org import Region, Team
from .types import UTCDateTime, utcnow

ROLES = ("technician", "supervisor", "admin", "auditor")

supervisor_regions = Table(
    "supervisor_region",
    db.metadata,
    Column("user_id", ForeignKey("user_account.id"), primary_key=True),
    Column("region_id", ForeignKey("region.id"), primary_key=True),
)


class User(db.Model):
    """A person. ``code`` is the stable worker id that records carry."""

    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), nullable=True, index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow)

    team = relationship(Team, lazy="joined")
    regions = relationship(Region, secondary=supervisor_regions, lazy="selectin")
