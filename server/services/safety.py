"""SOS and need-help check-ins: which are open, and acknowledging them (audit-logged).

A check-in is an immutable fact (DESIGN §3.4); its acknowledgement is a
person's act, kept as an :class:`~server.models.Alert` row keyed by
(status, check-in record id), so two supervisors clicking at once make one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from ..errors import Forbidden, NotFound
from ..extensions import db
from ..models import Alert, RecordState, Revision, Team, User, utcnow
from . import audit, records
from .people import Scope

ALARM_STATUSES = ("sos", "need_help")


def region_clause(region_ids):
    """RecordState rows of these regions: by site, or (no site) by the sending team's region."""
    if region_ids is None:
        return True
    ids = list(region_ids) or [-1]
    team_ids = select(Team.id).where(Team.region_id.in_(ids))
    return or_(RecordState.region_id.in_(ids), and_(RecordState.region_id.is_(None), RecordState.team_id.in_(team_ids)))


@dataclass
class Alarm:
    """An SOS or need-help check-in not yet acknowledged."""

    record_id: str
    status: str
    worker_id: str
    worker_name: str
    at: datetime
    site_code: str | None
    region_id: int | None
    notes: str


def open_alarms(region_ids, now: datetime | None = None, window_hours: int = 24) -> list[Alarm]:
    """Unacknowledged SOS first, then need-help, newest first, from the last ``window_hours``."""
    now = now or utcnow()
    ack = select(Alert.ref).where(Alert.kind.in_(ALARM_STATUSES), Alert.acknowledged_at.is_not(None))
    rows = db.session.execute(
        select(RecordState.record_id, RecordState.status, RecordState.worker_id, RecordState.occurred_at, RecordState.site_code,
               RecordState.region_id, RecordState.body, User.display_name, Team.region_id.label("team_region"))
        .outerjoin(User, User.code == RecordState.worker_id)
        .outerjoin(Team, Team.id == RecordState.team_id)
        .where(RecordState.kind == "check_in", RecordState.status.in_(ALARM_STATUSES),
               RecordState.occurred_at >= now - timedelta(hours=window_hours), region_clause(region_ids),
               RecordState.record_id.not_in(ack))
    ).all()
    alarms = [Alarm(s.record_id, s.status, s.worker_id, s.display_name or s.worker_id, s.occurred_at, s.site_code,
                    s.region_id if s.region_id is not None else s.team_region, s.body.get("notes") or "")
              for s in rows]
    alarms.sort(key=lambda a: (a.status != "sos", -a.at.timestamp()))
    return alarms


def acknowledge(scope: Scope, record_id: str, now: datetime | None = None) -> tuple[Alert, bool]:
    """Acknowledge an SOS / need-help check-in. Returns (alert, True) or (alert, False) if it already was."""
    scope.require_role("supervisor", "admin")
    state = db.session.get(RecordState, record_id)
    if state is None or state.kind != "check_in" or state.status not in ALARM_STATUSES:
        raise NotFound(f"there is no SOS or need-help check-in {record_id!r}")
    region_id = state.region_id
    if region_id is None and state.team_id is not None:
        region_id = db.session.get(Team, state.team_id).region_id
    scope.require_region(region_id, "this check-in")
    now = now or utcnow()
    alert = db.session.scalar(select(Alert).where(Alert.kind == state.status, Alert.ref == record_id))
    if alert is not None and alert.acknowledged_at is not None:
        return alert, False
    if alert is None:
        alert = Alert(kind=state.status, ref=record_id, region_id=region_id, worker_id=state.worker_id,
                      message=f"{state.status} from {state.worker_id}", raised_at=state.occurred_at or now)
        db.session.add(alert)
    alert.acknowledged_at, alert.acknowledged_by_id = now, scope.user_id
    audit.record("checkin.acknowledge", user_id=scope.user_id, target=f"check_in:{record_id}", status=state.status, worker=state.worker_id)
    try:
        db.session.flush()
    except IntegrityError:  # someone else acknowledged in the same instant
        db.session.rollback()
        return db.session.scalar(select(Alert).where(Alert.kind == state.status, Alert.ref == record_id)), False
    return alert, True


def worker_records(scope: Scope, worker: User, *, with_health: bool, ring=None, days: int = 14, now: datetime | None = None) -> dict:
    """One technician's recent safety checks and check-ins.

    Health fields (temperature, symptoms, exposure, notes) are decrypted only
    when ``with_health`` is asked for and this person may see them (admin, or
    supervisor of the worker's region); every such read is audit-logged with
    how many checks were shown, never their values.
    """
    now = now or utcnow()
    if with_health and not scope.may_see_health_of(worker):
        raise Forbidden("Health details are shown only to an admin or a supervisor of this technician's region.")
    since = now - timedelta(days=days)
    checks = db.session.execute(
        select(RecordState.record_id, RecordState.occurred_at, RecordState.status, RecordState.site_code, RecordState.body)
        .where(RecordState.kind == "safety_check", RecordState.worker_id == worker.code, RecordState.occurred_at >= since)
        .order_by(RecordState.occurred_at.desc()).limit(200)
    ).all()
    health = {}
    if with_health and checks:
        rows = db.session.execute(
            select(Revision.record_id, Revision.rev, Revision.health, Revision.health_key_id)
            .where(Revision.record_id.in_([c.record_id for c in checks]), Revision.kind == "safety_check")
        ).all()
        for r in sorted(rows, key=lambda r: r.rev, reverse=True):  # the lowest revision is the fact (shared.merge)
            health[r.record_id] = records.join_health({}, r.health, r.health_key_id, ring) if r.health else {}
        audit.record("health.view", user_id=scope.user_id, target=f"worker:{worker.code}", checks=len(checks))
    safety_checks = [{
        "record_id": c.record_id, "taken_at": c.occurred_at, "fit": c.status == "fit", "site_code": c.site_code,
        "ppe": c.body.get("ppe") or [], "in_quarantine_area": bool(c.body.get("in_quarantine_area")),
        "health": health.get(c.record_id) if with_health else None,
    } for c in checks]
    checkins = db.session.execute(
        select(RecordState.record_id, RecordState.occurred_at, RecordState.status, RecordState.site_code)
        .where(RecordState.kind == "check_in", RecordState.worker_id == worker.code, RecordState.occurred_at >= since)
        .order_by(RecordState.occurred_at.desc()).limit(200)
    ).all()
    return {
        "worker": {"code": worker.code, "name": worker.display_name, "team": worker.team.code if worker.team else None},
        "days": days, "health_shown": with_health, "may_see_health": scope.may_see_health_of(worker),
        "safety_checks": safety_checks,
        "check_ins": [{"record_id": c.record_id, "at": c.occurred_at, "status": c.status, "site_code": c.site_code} for c in checkins],
    }
