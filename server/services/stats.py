"""Counts for operators and scripts (``fieldwatch stats``)."""
from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from ..models import Change, Device, QuarantineItem, RecordState, Revision


def collect() -> dict:
    """Records per kind, revisions, change feed, quarantine by reason, per-device counts."""
    per_device = dict(db.session.execute(select(Revision.device_id, func.count()).group_by(Revision.device_id)).all())
    devices = [
        {"device_id": d.id, "label": d.label, "status": d.status, "revisions": per_device.get(d.id, 0), "rejected": d.rejected_count or 0}
        for d in db.session.scalars(select(Device).order_by(Device.enrolled_at))
    ]
    return {
        "records_by_kind": dict(db.session.execute(select(RecordState.kind, func.count()).group_by(RecordState.kind)).all()),
        "revisions": db.session.scalar(select(func.count()).select_from(Revision)),
        "change_feed": {"count": db.session.scalar(select(func.count()).select_from(Change)),
                        "last_seq": db.session.scalar(select(func.max(Change.seq))) or 0},
        "quarantine_by_reason": dict(db.session.execute(select(QuarantineItem.reason, func.count()).group_by(QuarantineItem.reason)).all()),
        "devices": devices,
    }
