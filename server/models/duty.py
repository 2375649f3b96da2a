"""Duty rosters and response-time targets: what coverage is measured against."""
from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .org import Team
from .types import UTCDateTime


class DutyShift(db.Model):
    """A team on duty from ``starts_at`` to ``ends_at`` (UTC instants, so a night shift simply crosses midnight)."""

    __tablename__ = "duty_shift"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True)
    starts_at = mapped_column(UTCDateTime, nullable=False)
    ends_at = mapped_column(UTCDateTime, nullable=False)
    note: Mapped[str] = mapped_column(String(200), default="")

    team = relationship(Team, lazy="joined")


Index("ix_duty_shift_window", DutyShift.starts_at, DutyShift.ends_at)


class ResponseTarget(db.Model):
    """Minutes allowed from a fault's report to acknowledge, arrive on site and restore, per site criticality."""

    __tablename__ = "response_target"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    criticality: Mapped[str] = mapped_column(String(16), unique=True)
    acknowledge_minutes: Mapped[int] = mapped_column(Integer)
    arrive_minutes: Mapped[int] = mapped_column(Integer)
    restore_minutes: Mapped[int] = mapped_column(Integer)


# The dashboard's read paths (issue 5) on the sync core's table: open jobs and alarms of a region.
# Declared here so the index lives in this migration (0002) and autogenerate stays in step.
def _record_state_index():
    from .record import RecordState

    return Index("ix_record_state_kind_region_status", RecordState.kind, RecordState.region_id, RecordState.status)


_record_state_index()
