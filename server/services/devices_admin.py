"""Devices as supervisors see them: sync health per phone, revoke, enrolment codes with a QR code."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ..errors import Invalid, NotFound
from ..extensions import db
from ..models import Device, Team, User, utcnow
from . import enrolment
from .people import Scope


@dataclass
class DeviceRow:
    """One phone's sync health."""

    id: str
    label: str
    worker_id: str | None
    worker_name: str | None
    team_code: str | None
    region_id: int | None
    status: str
    app_version: str | None
    last_push_at: datetime | None
    last_pull_at: datetime | None
    last_contact_at: datetime | None
    since_contact_minutes: int | None
    stale: bool
    outbox_depth: int | None
    oldest_unsent_age_s: int | None
    rejected: int
    accepted: int
    clock_skew_ms: int | None


def device_rows(scope: Scope, now: datetime | None = None, stale_minutes: int = 120, limit: int = 1000) -> list[DeviceRow]:
    """Devices of teams in this person's regions (admin: all), stale and revoked marked; stale and fullest outboxes first."""
    scope.require_role("supervisor", "admin")
    now = now or utcnow()
    query = select(Device).outerjoin(Team, Team.id == Device.team_id)
    if scope.region_ids is not None:
        query = query.where(Team.region_id.in_(list(scope.region_ids) or [-1]))
    rows = []
    for d in db.session.scalars(query.limit(limit)):
        since = int((now - d.last_contact_at).total_seconds() // 60) if d.last_contact_at else None
        stale = d.status == "active" and (since is None or since > stale_minutes)
        rows.append(DeviceRow(d.id, d.label, d.user.code if d.user else None, d.user.display_name if d.user else None,
                              d.team.code if d.team else None, d.team.region_id if d.team else None, d.status, d.app_version,
                              d.last_push_at, d.last_pull_at, d.last_contact_at, since, stale, d.outbox_depth,
                              d.oldest_unsent_age_s, d.rejected_count or 0, d.accepted_count or 0, d.clock_skew_ms))
    rows.sort(key=lambda r: (r.status != "active", not r.stale, -(r.outbox_depth or 0), r.label))
    return rows


def revoke(scope: Scope, device_id: str):
    """Revoke a device of one's regions (audit-logged by enrolment.revoke)."""
    scope.require_role("supervisor", "admin")
    device = db.session.get(Device, device_id)
    if device is None:
        raise NotFound(f"there is no device {device_id!r}")
    scope.require_region(device.team.region_id if device.team else None, "this device")
    return enrolment.revoke(device_id, by=db.session.get(User, scope.user_id))


def create_code(scope: Scope, team_code: str, ttl_text: str = "24h", worker_code: str | None = None) -> dict:
    """A one-time enrolment code for a team of one's regions: text, expiry and a QR code (SVG)."""
    scope.require_role("supervisor", "admin")
    team = db.session.scalar(select(Team).where(Team.code == (team_code or "")))
    if team is None:
        raise Invalid(f"there is no team {team_code!r}")
    scope.require_region(team.region_id, f"team {team_code}")
    code, row = enrolment.create_code(team.code, enrolment.parse_ttl(ttl_text), worker_code or None,
                                      created_by=db.session.get(User, scope.user_id))
    return {"code": code, "team": team.code, "worker": worker_code or None, "expires_at": row.expires_at, "qr_svg": qr_svg(code)}


def qr_svg(text: str) -> str:
    """A QR code of ``text`` as an inline SVG document (no image files, no network)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out)
    svg = out.getvalue().decode()
    return svg[svg.index("<svg"):]  # drop the XML declaration: it is inlined into HTML


def stale_threshold(minutes: int) -> timedelta:
    """STALE_DEVICE_MINUTES as a timedelta."""
    return timedelta(minutes=minutes)
