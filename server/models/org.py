"""The organisations, their regions, sites and teams."""
from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime

CRITICALITIES = ("critical", "high", "normal")


class Organisation(db.Model):
    """An operator. ``is_partner``: another operator that gives or gets mutual aid."""

    __tablename__ = "organisation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_partner: Mapped[bool] = mapped_column(Boolean, default=False)


class Region(db.Model):
    """A province or operating area, with the minimum of fit technicians it needs on duty."""

    __tablename__ = "region"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(200), default="")
    min_fit_on_duty: Mapped[int] = mapped_column(Integer, default=1)


class Site(db.Model):
    """A base station or exchange; ``status_*`` hold its current observation (newest by HLC)."""

    __tablename__ = "site"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    criticality: Mapped[str] = mapped_column(String(16), default="normal")
    status_rev: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status_state: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    status_power: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status_access: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status_backup_tx: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    status_mobile_bts: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    status_at = mapped_column(UTCDateTime, nullable=True)
    status_notes: Mapped[str | None] = mapped_column(Text, nullable=True)

    region = relationship(Region, lazy="joined")


class Team(db.Model):
    """A crew of an organisation, based in a region."""

    __tablename__ = "team"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)

    organisation = relationship(Organisation, lazy="joined")
    region = relationship(Region, lazy="joined")


# The overview's per-region site counts (issue 5, migration 0005): read from this index alone,
# not by visiting every site row.
Index("ix_site_region_status", Site.region_id, Site.status_state, Site.status_power, Site.status_mobile_bts, Site.status_access)
