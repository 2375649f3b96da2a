"""Who is on duty now, fit or not, overdue on a check-in, and which regions are short.

Rules (issue 5, DOMAIN §1 and §6):

- *On duty*: a technician whose team has a :class:`~server.models.DutyShift`
  with ``starts_at <= now < ends_at``. Shifts are UTC instants, so a night
  shift (22:00-06:00) is one row that crosses midnight.
- *Fitness for this shift*: the technician's latest safety check taken from
  ``HEALTH_CHECK_LEAD_MINUTES`` before the shift began until now. "Today"
  means "for this shift", so a check at 21:50 counts for a 22:00-06:00
  shift at 01:00. None: ``no_check``.
- *Check-in due*: ``CHECK_IN_INTERVAL_MINUTES`` after the later of the shift
  start and the last check-in. Past due, the device tells us what we know:
  if the worker's phone synced *after* the check-in fell due and brought
  none, the worker is ``overdue``; if the phone has been silent since
  before then, we do not know: ``unknown`` with ``silent_since``.
- *Region minimum*: ``Region.min_fit_on_duty`` counts the operator's own fit
  technicians; a partner's fit technicians on duty in the region are
  shown next to it (mutual aid) but do not fill the operator's roster.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import Device, DutyShift, RecordState, Region, Team, User, utcnow


@dataclass
class OnDuty:
    """One technician on duty now, with their fitness and check-in state."""

    worker_id: str
    name: str
    team_code: str
    region_id: int
    partner: bool
    shift_start: datetime
    shift_end: datetime
    fitness: str  # fit | unfit | no_check
    last_check_at: datetime | None
    checkin: str  # ok | overdue | unknown
    last_checkin_at: datetime | None
    due_at: datetime
    silent_since: datetime | None
    ever_synced: bool


@dataclass
class RegionCoverage:
    """Fit technicians on duty in a region against its minimum."""

    region_id: int
    code: str
    name: str
    min_fit: int
    fit: int = 0
    partner_fit: int = 0
    unfit: int = 0
    no_check: int = 0
    on_duty: int = 0
    overdue: int = 0
    unknown: int = 0
    below_minimum: bool = False
    shortfall: int = 0
    teams: list = field(default_factory=list)


def shifts_now(region_ids, now: datetime) -> dict[int, tuple[datetime, datetime]]:
    """{team id: (start, end)} of teams on duty at ``now`` (overlapping shifts merged: earliest start, latest end)."""
    query = select(DutyShift.team_id, DutyShift.starts_at, DutyShift.ends_at).join(Team, Team.id == DutyShift.team_id).where(
        DutyShift.starts_at <= now, DutyShift.ends_at > now)
    if region_ids is not None:
        query = query.where(Team.region_id.in_(list(region_ids) or [-1]))
    teams: dict[int, tuple[datetime, datetime]] = {}
    for team_id, start, end in db.session.execute(query):
        old = teams.get(team_id)
        teams[team_id] = (min(start, old[0]), max(end, old[1])) if old else (start, end)
    return teams


def _latest(kind: str, codes: list[str], since: datetime, now: datetime) -> dict[str, RecordState]:
    latest: dict[str, RecordState] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start:start + 500]
        rows = db.session.execute(
            select(RecordState.worker_id, RecordState.occurred_at, RecordState.status)
            .where(RecordState.kind == kind, RecordState.worker_id.in_(chunk), RecordState.occurred_at >= since, RecordState.occurred_at <= now)
        )
        for r in rows:
            if r.worker_id not in latest or r.occurred_at > latest[r.worker_id].occurred_at:
                latest[r.worker_id] = r
    return latest


def _last_contacts(users: list[User], team_ids: set[int]) -> tuple[dict[int, datetime | None], dict[int, datetime | None]]:
    """({user id: latest contact of their own devices}, {team id: latest contact of shared team devices})."""
    personal: dict[int, datetime | None] = {}
    shared: dict[int, datetime | None] = {}
    ids = [u.id for u in users]
    rows = db.session.execute(
        select(Device.user_id, Device.team_id, Device.last_contact_at).where(
            Device.status == "active", (Device.user_id.in_(ids or [-1])) | (Device.user_id.is_(None) & Device.team_id.in_(list(team_ids) or [-1])))
    )
    for user_id, team_id, contact in rows:
        target, key = (personal, user_id) if user_id is not None else (shared, team_id)
        if key not in target or (contact and (target[key] is None or contact > target[key])):
            target[key] = contact
    return personal, shared


def on_duty(region_ids, now: datetime | None = None, *, interval_minutes: int = 60, lead_minutes: int = 120) -> list[OnDuty]:
    """Technicians on duty now in these regions (None: all), worst first."""
    now = now or utcnow()
    shifts = shifts_now(region_ids, now)
    if not shifts:
        return []
    teams = {t.id: t for t in db.session.scalars(select(Team).where(Team.id.in_(list(shifts))))}
    users = list(db.session.scalars(select(User).where(User.team_id.in_(list(shifts)), User.role == "technician", User.active.is_(True))))
    codes = [u.code for u in users]
    earliest = min(s for s, _ in shifts.values())
    checks = _latest("safety_check", codes, earliest - timedelta(minutes=lead_minutes), now)
    checkins = _latest("check_in", codes, earliest, now)
    personal, shared = _last_contacts(users, set(shifts))
    interval = timedelta(minutes=interval_minutes)
    result = []
    for u in users:
        start, end = shifts[u.team_id]
        team = teams[u.team_id]
        check = checks.get(u.code)
        if check is not None and check.occurred_at < start - timedelta(minutes=lead_minutes):
            check = None  # before this team's own shift window (another team's shift began earlier)
        ci = checkins.get(u.code)
        last_ci = ci.occurred_at if ci is not None and ci.occurred_at >= start else None
        due = (last_ci or start) + interval
        contact = personal[u.id] if u.id in personal else shared.get(u.team_id)
        if now <= due:
            state = "ok"
        elif contact is not None and contact >= due:
            state = "overdue"
        else:
            state = "unknown"
        result.append(OnDuty(u.code, u.display_name, team.code, team.region_id, bool(team.organisation.is_partner), start, end,
                             check.status if check is not None else "no_check", check.occurred_at if check is not None else None,
                             state, last_ci, due, contact if state == "unknown" else None,
                             contact is not None))
    rank = {"unknown": 0, "overdue": 1, "ok": 2}
    fit_rank = {"unfit": 0, "no_check": 1, "fit": 2}
    result.sort(key=lambda o: (rank[o.checkin], fit_rank[o.fitness], o.team_code, o.worker_id))
    return result


def region_coverage(region_ids, duty: list[OnDuty]) -> list[RegionCoverage]:
    """Per region: fit (own), partner fit, unfit, no check, check-in states; below its minimum or not."""
    query = select(Region).order_by(Region.code)
    if region_ids is not None:
        query = query.where(Region.id.in_(list(region_ids) or [-1]))
    regions = {r.id: RegionCoverage(r.id, r.code, r.name, r.min_fit_on_duty) for r in db.session.scalars(query)}
    for o in duty:
        cov = regions.get(o.region_id)
        if cov is None:
            continue
        cov.on_duty += 1
        if o.team_code not in cov.teams:
            cov.teams.append(o.team_code)
        if o.fitness == "fit":
            if o.partner:
                cov.partner_fit += 1
            else:
                cov.fit += 1
        elif o.fitness == "unfit":
            cov.unfit += 1
        else:
            cov.no_check += 1
        if o.checkin == "overdue":
            cov.overdue += 1
        elif o.checkin == "unknown":
            cov.unknown += 1
    for cov in regions.values():
        cov.shortfall = max(0, cov.min_fit - cov.fit)
        cov.below_minimum = cov.shortfall > 0
    return list(regions.values())
