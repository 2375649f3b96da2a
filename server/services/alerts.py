"""Alerts that do not wait for a person to look (issue 5).

:func:`raise_due_alerts` is run by a timer thread of the server (every
``ALERTS_TIMER_SECONDS``, see :class:`AlertTimer`) and by ``fieldwatch
alerts run-once``. It raises one :class:`~server.models.Alert` per
condition, never two (``(kind, ref)`` is unique):

- ``sos`` / ``need_help``: a check-in with that status from the last
  ``ALARM_WINDOW_HOURS`` (ref: the check-in's record id, the same row
  :func:`server.services.safety.acknowledge` acknowledges, so the overview's
  SOS panel and the alerts page agree).
- ``missed_check_in``: every technician on duty (:func:`coverage.on_duty`)
  whose check-in fell due more than ``ALERT_GRACE_MINUTES`` ago and has not
  arrived, *whether or not their phone synced*: the phone's silence is the
  alarm. Ref: worker and due instant, so the next miss after a check-in is a
  new alert. Cleared (``cleared_at``) once the worker checks in or goes off duty.
- ``below_minimum``: a region with fewer of its own fit technicians on duty
  than ``Region.min_fit_on_duty`` (:func:`coverage.region_coverage`). One
  alert per episode: raised when the region falls short, cleared when it is
  covered again; the next shortfall is a new alert.
- ``response_breach``: a job's acknowledge / arrive / restore measure over
  its target (:func:`jobs.measure` against :func:`jobs.targets`), for open
  jobs and jobs changed within ``ALARM_WINDOW_HOURS`` (a late-synced
  breach). Ref: job and measure.

Every new alert is queued for each active webhook
(:func:`server.services.webhooks.enqueue`) in the same transaction; the
timer sends them (:func:`server.services.webhooks.deliver_due`). Alerts carry
no health values and no free-text notes (they leave the server by webhook).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Invalid, NotFound
from ..extensions import db
from ..models import Alert, RecordState, Region, Site, Team, User, utcnow
from ..models.alert import ALERT_KINDS
from . import audit, coverage, jobs, safety, webhooks
from .people import Scope
from .safety import ALARM_STATUSES

log = logging.getLogger(__name__)
CHUNK = 500


@dataclass
class Settings:
    """The knobs of the check (from app config, see :func:`settings_from`)."""

    check_in_interval_minutes: int = 60
    grace_minutes: int = 10
    health_check_lead_minutes: int = 120
    alarm_window_hours: int = 24


def settings_from(config) -> Settings:
    """Settings from a Flask config mapping."""
    return Settings(int(config.get("CHECK_IN_INTERVAL_MINUTES", 60)), int(config.get("ALERT_GRACE_MINUTES", 10)),
                    int(config.get("HEALTH_CHECK_LEAD_MINUTES", 120)), int(config.get("ALARM_WINDOW_HOURS", 24)))


def _default_settings() -> Settings:
    from flask import current_app, has_app_context

    return settings_from(current_app.config) if has_app_context() else Settings()


def _existing(kind: str, refs: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(refs), CHUNK):
        chunk = refs[start:start + CHUNK]
        found.update(db.session.scalars(select(Alert.ref).where(Alert.kind == kind, Alert.ref.in_(chunk))))
    return found


def _hm(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _sos_alerts(now: datetime, s: Settings) -> list[Alert]:
    raised = select(Alert.ref).where(Alert.kind.in_(ALARM_STATUSES))
    rows = db.session.execute(
        select(RecordState.record_id, RecordState.status, RecordState.worker_id, RecordState.occurred_at, RecordState.site_code,
               RecordState.region_id, Team.region_id.label("team_region"), User.display_name)
        .outerjoin(Team, Team.id == RecordState.team_id)
        .outerjoin(User, User.code == RecordState.worker_id)
        .where(RecordState.kind == "check_in", RecordState.status.in_(ALARM_STATUSES),
               RecordState.occurred_at >= now - timedelta(hours=s.alarm_window_hours), RecordState.record_id.not_in(raised))
    ).all()
    out = []
    for r in rows:
        label = "SOS" if r.status == "sos" else "Needs help"
        who = f"{r.display_name or r.worker_id} ({r.worker_id})"
        out.append(Alert(kind=r.status, ref=r.record_id, region_id=r.region_id if r.region_id is not None else r.team_region,
                         worker_id=r.worker_id, subject=r.worker_id or "", raised_at=now,
                         message=f"{label} from {who}" + (f" at site {r.site_code}" if r.site_code else "") + f", sent {_hm(r.occurred_at)}",
                         details={"check_in": r.record_id, "at": r.occurred_at.isoformat(), "site_code": r.site_code}))
    return out


def _missed_alerts(duty: list[coverage.OnDuty], now: datetime, s: Settings) -> list[Alert]:
    grace = timedelta(minutes=s.grace_minutes)
    due = {f"{o.worker_id}@{o.due_at.isoformat()}": o for o in duty if o.checkin != "ok" and now >= o.due_at + grace}
    # clear the open ones whose condition is over (checked in since, or off duty)
    still = set(due)
    for alert in db.session.scalars(select(Alert).where(Alert.kind == "missed_check_in", Alert.cleared_at.is_(None))):
        if alert.ref not in still:
            alert.cleared_at = now
    known = _existing("missed_check_in", list(due))
    out = []
    for ref, o in due.items():
        if ref in known:
            continue
        if o.checkin == "overdue":
            why = "the phone synced since, without a check-in"
        elif o.ever_synced and o.silent_since is not None:
            why = f"the phone has been silent since {_hm(o.silent_since)}"
        else:
            why = "the phone has never synced"
        out.append(Alert(kind="missed_check_in", ref=ref, region_id=o.region_id, worker_id=o.worker_id, subject=o.worker_id, raised_at=now,
                         message=f"No check-in from {o.name} ({o.worker_id}, team {o.team_code}), due {_hm(o.due_at)}; {why}",
                         details={"due_at": o.due_at.isoformat(), "state": o.checkin, "team": o.team_code,
                                  "last_check_in_at": o.last_checkin_at.isoformat() if o.last_checkin_at else None,
                                  "silent_since": o.silent_since.isoformat() if o.silent_since else None}))
    return out


def _below_minimum_alerts(duty: list[coverage.OnDuty], now: datetime) -> list[Alert]:
    covered = {c.region_id: c for c in coverage.region_coverage(None, duty)}
    open_by_region = {a.region_id: a for a in db.session.scalars(
        select(Alert).where(Alert.kind == "below_minimum", Alert.cleared_at.is_(None)))}
    for region_id, alert in open_by_region.items():
        cov = covered.get(region_id)
        if cov is None or not cov.below_minimum:
            alert.cleared_at = now
    short = [c for c in covered.values() if c.below_minimum and c.region_id not in open_by_region]
    if not short:
        return []
    episodes = dict(db.session.execute(
        select(Alert.region_id, func.count()).where(Alert.kind == "below_minimum", Alert.region_id.in_([c.region_id for c in short]))
        .group_by(Alert.region_id)).all())
    return [Alert(kind="below_minimum", ref=f"{c.code}#{episodes.get(c.region_id, 0) + 1}", region_id=c.region_id, subject=c.code, raised_at=now,
                  message=f"Region {c.code} ({c.name}) has {c.fit} fit technicians of its own on duty; it needs {c.min_fit}"
                          + (f" ({c.partner_fit} partner technicians fit, mutual aid)" if c.partner_fit else ""),
                  details={"fit": c.fit, "min_fit": c.min_fit, "shortfall": c.shortfall, "partner_fit": c.partner_fit, "on_duty": c.on_duty})
            for c in short]


def _breach_alerts(now: datetime, s: Settings) -> list[Alert]:
    table = jobs.targets()
    rows = db.session.execute(
        select(RecordState.record_id, RecordState.body, RecordState.region_id, RecordState.site_code, Site.criticality)
        .outerjoin(Site, Site.code == RecordState.site_code)
        .where(RecordState.kind == "repair_job",
               or_(RecordState.status.in_(jobs.OPEN), RecordState.updated_at >= now - timedelta(hours=s.alarm_window_hours)))
    ).all()
    found = {}
    for r in rows:
        crit = r.criticality or "normal"
        for m in jobs.measure(r.body, crit, now, table):
            if m.breach:
                found[f"{r.record_id}:{m.metric}"] = (r, crit, m)
    known = _existing("response_breach", list(found))
    out = []
    for ref, (r, crit, m) in found.items():
        if ref in known:
            continue
        title = r.body.get("title") or r.body.get("fault_type") or "fault"
        verb = "took" if m.state == "done" else "has run"
        out.append(Alert(kind="response_breach", ref=ref, region_id=r.region_id, subject=f"{r.site_code or '?'}: {title}"[:200], raised_at=now,
                         message=f"Response target missed at site {r.site_code} ({crit}): {m.metric} {verb} {m.minutes:.0f} min, target {m.target} min",
                         details={"job": r.record_id, "site_code": r.site_code, "criticality": crit, "metric": m.metric,
                                  "state": m.state, "minutes": m.minutes, "target": m.target}))
    return out


def raise_due_alerts(now: datetime | None = None, settings: Settings | None = None) -> list[Alert]:
    """Raise every alert now due that was not raised before; clear the ones whose condition is over.

    Returns the new alerts (already queued for the webhooks). The caller commits.
    """
    now = now or utcnow()
    s = settings or _default_settings()
    duty = coverage.on_duty(None, now, interval_minutes=s.check_in_interval_minutes, lead_minutes=s.health_check_lead_minutes)
    new = _sos_alerts(now, s) + _missed_alerts(duty, now, s) + _below_minimum_alerts(duty, now) + _breach_alerts(now, s)
    db.session.add_all(new)
    db.session.flush()
    webhooks.enqueue(new, now)
    return new


def run_once(now: datetime | None = None, settings: Settings | None = None) -> dict:
    """One turn of the timer: raise due alerts (commit), then send due webhook deliveries. Returns counts.

    Two processes raising at once: the unique (kind, ref) lets one win; the
    other rolls back and tries again, now seeing the first one's alerts.
    """
    new = []
    for attempt in (1, 2):
        try:
            new = raise_due_alerts(now, settings)
            db.session.commit()
            break
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
    sent = webhooks.deliver_due(now)
    return {"raised": len(new), **sent}


class AlertTimer(threading.Thread):
    """A daemon thread that calls :func:`run_once` every ``seconds`` inside the app's context."""

    def __init__(self, app, seconds: float):
        super().__init__(name="fieldwatch-alerts", daemon=True)
        self.app, self.seconds, self.stopped = app, seconds, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.seconds):
            self.tick()

    def tick(self) -> None:
        with self.app.app_context():
            try:
                counts = run_once()
                if counts["raised"] or counts["attempted"]:
                    log.info("alerts: %(raised)d raised; webhooks: %(attempted)d attempted, %(delivered)d delivered", counts)
            except Exception as exc:  # keep ticking; name the error only (its text may hold data)
                db.session.rollback()
                log.error("alert timer turn failed: %s", type(exc).__name__)
            finally:
                db.session.remove()

    def stop(self) -> None:
        self.stopped.set()


# --- reading and acknowledging ------------------------------------------------------------------------------------


def _visible(scope: Scope):
    scope.require_role("supervisor", "admin")
    if scope.region_ids is None:
        return True
    return Alert.region_id.in_(list(scope.region_ids) or [-1])


def list_alerts(scope: Scope, state: str = "open", region_code: str | None = None, kind: str | None = None, limit: int = 300) -> list[dict]:
    """Alerts of this person's regions: ``open`` (not acknowledged, oldest first) or ``all`` (newest first)."""
    query = select(Alert).where(_visible(scope))
    if state == "open":
        query = query.where(Alert.acknowledged_at.is_(None)).order_by(Alert.raised_at, Alert.id)
    elif state == "all":
        query = query.order_by(Alert.raised_at.desc(), Alert.id.desc())
    else:
        raise Invalid("state must be open or all")
    if kind:
        if kind not in ALERT_KINDS:
            raise Invalid(f"kind must be one of {', '.join(ALERT_KINDS)}")
        query = query.where(Alert.kind == kind)
    if region_code:
        region = db.session.scalar(select(Region).where(Region.code == region_code))
        if region is None:
            raise NotFound(f"there is no region {region_code!r}")
        scope.require_region(region.id, f"region {region_code}")
        query = query.where(Alert.region_id == region.id)
    alerts = list(db.session.scalars(query.limit(limit)))
    codes = dict(db.session.execute(select(Region.id, Region.code)).all())
    people = {u.id: u.display_name for u in db.session.scalars(select(User).where(User.id.in_({a.acknowledged_by_id for a in alerts} - {None})))}
    return [_row(a, codes, people) for a in alerts]


def _row(a: Alert, codes: dict, people: dict) -> dict:
    return {"id": a.id, "kind": a.kind, "region": codes.get(a.region_id), "subject": a.subject, "worker_id": a.worker_id,
            "message": a.message, "raised_at": a.raised_at, "cleared_at": a.cleared_at, "acknowledged_at": a.acknowledged_at,
            "acknowledged_by": people.get(a.acknowledged_by_id), "details": a.details or {}}


def open_count(scope: Scope) -> int:
    """How many alerts of this person's regions wait for someone (the nav badge)."""
    return db.session.scalar(select(func.count()).select_from(Alert).where(_visible(scope), Alert.acknowledged_at.is_(None))) or 0


def acknowledge(scope: Scope, alert_id: int, now: datetime | None = None) -> tuple[dict, bool]:
    """A person acknowledges an alert (audit-logged). Returns (row, True), or (row, False) if someone already had."""
    scope.require_role("supervisor", "admin")
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"there is no alert {alert_id}")
    scope.require_region(alert.region_id, "this alert")
    now = now or utcnow()
    if alert.kind in ALARM_STATUSES:  # the check-in's own acknowledgement: one path, one audit entry
        _, new = safety.acknowledge(scope, alert.ref, now)
    else:
        # conditional: two people clicking at once make one acknowledgement
        done = db.session.execute(update(Alert).where(Alert.id == alert.id, Alert.acknowledged_at.is_(None))
                                  .values(acknowledged_at=now, acknowledged_by_id=scope.user_id).execution_options(synchronize_session=False))
        new = done.rowcount == 1
        if new:
            audit.record("alert.acknowledge", user_id=scope.user_id, target=f"alert:{alert.id}", kind=alert.kind)
        db.session.flush()
    db.session.refresh(alert)
    codes = dict(db.session.execute(select(Region.id, Region.code)).all())
    people = {alert.acknowledged_by_id: db.session.get(User, alert.acknowledged_by_id).display_name} if alert.acknowledged_by_id else {}
    return _row(alert, codes, people), new
