"""Quarantined items (rejected pushes) for supervisors: list, and mark reviewed with a comment (audit-logged).

Only the header fields, the reason and the message are shown; the raw
envelope stays sealed (it may hold health data) and is never rendered.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from shared.errors import ReasonCode

from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import Device, QuarantineItem, Team, utcnow
from . import audit
from .people import Scope


@dataclass
class Row:
    """One quarantined item."""

    id: int
    received_at: datetime
    reason: str
    message: str
    device_id: str | None
    device_label: str | None
    kind: str | None
    record_id: str | None
    reviewed_at: datetime | None
    review_comment: str | None


def _scoped(scope: Scope, query):
    scope.require_role("supervisor", "admin")
    if scope.region_ids is None:
        return query
    # supervisors see items of devices in their regions; items from unknown senders are the admin's
    return query.join(Device, Device.id == QuarantineItem.device_id).join(Team, Team.id == Device.team_id).where(
        Team.region_id.in_(list(scope.region_ids) or [-1]))


def items(scope: Scope, show: str = "open", limit: int = 500) -> list[Row]:
    """Quarantined items newest first; ``show``: open (not reviewed), reviewed or all."""
    if show not in ("open", "reviewed", "all"):
        raise Invalid("show must be open, reviewed or all")
    query = _scoped(scope, select(QuarantineItem))
    if show == "open":
        query = query.where(QuarantineItem.reviewed_at.is_(None))
    elif show == "reviewed":
        query = query.where(QuarantineItem.reviewed_at.is_not(None))
    rows = list(db.session.scalars(query.order_by(QuarantineItem.id.desc()).limit(limit)))
    labels = {d.id: d.label for d in db.session.scalars(select(Device).where(Device.id.in_({r.device_id for r in rows} - {None})))}
    return [Row(q.id, q.received_at, q.reason, q.message, q.device_id, labels.get(q.device_id), q.kind, q.record_id, q.reviewed_at,
                q.review_comment) for q in rows]


def mark_reviewed(scope: Scope, item_id: int, comment: str) -> QuarantineItem:
    """Mark one item reviewed with a comment. The caller commits."""
    comment = (comment or "").strip()
    if not comment:
        raise Invalid("say what was done: a comment is required")
    if len(comment) > 2000:
        raise Invalid("a comment is at most 2000 characters")
    item = db.session.scalar(_scoped(scope, select(QuarantineItem)).where(QuarantineItem.id == item_id))
    if item is None:
        raise NotFound(f"there is no quarantined item {item_id} in your regions")
    if item.reviewed_at is not None:
        raise Conflict("this item was already reviewed", ReasonCode.INVALID_REQUEST)
    item.reviewed_at, item.reviewed_by_id, item.review_comment = utcnow(), scope.user_id, comment
    audit.record("quarantine.review", user_id=scope.user_id, target=f"quarantine:{item_id}", reason=item.reason)
    return item
