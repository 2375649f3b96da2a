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

from sqlalchemy import and_, func, or_, select

from ..extensions import db
from ..models import Device, DutyShift, Organisation, RecordState, Region, Team, User, utcnow


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


def _shift_query(region_ids, now: datetime):
    query = select(DutyShift.team_id, DutyShift.starts_at, DutyShift.ends_at).where(DutyShift.starts_at <= now, DutyShift.ends_at > now)
    if region_ids is not None:
        query = query.join(Team, Team.id == DutyShift.team_id).where(Team.region_id.in_(list(region_ids) or [-1]))
    return query


def shifts_now(region_ids, now: datetime) -> dict[int, tuple[datetime, datetime]]:
    """{team id: (start, end)} of teams on duty at ``now`` (overlapping shifts merged: earliest start, latest end)."""
    teams: dict[int, tuple[datetime, datetime]] = {}
    for team_id, start, end in db.session.execute(_shift_query(region_ids, now)):
        old = teams.get(team_id)
        teams[team_id] = (min(start, old[0]), max(end, old[1])) if old else (start, end)
    return teams


def _duty_team_ids(region_ids, now: datetime):
    """The ids of the teams on duty now, as a subquery (so the database joins, not a list of thousands of ids)."""
    query = select(DutyShift.team_id).where(DutyShift.starts_at <= now, DutyShift.ends_at > now)
    if region_ids is not None:
        query = query.where(DutyShift.team_id.in_(select(Team.id).where(Team.region_id.in_(list(region_ids) or [-1]))))
    return query


def _duty_user_filter(duty_teams):
    return (User.team_id.in_(duty_teams), User.role == "technician", User.active.is_(True))


def _latest(kind: str, workers, since: datetime, now: datetime) -> dict[str, tuple]:
    """{worker code: (worker_id, occurred_at, status)} of each worker's latest record of ``kind`` in [since, now].

    ``workers`` is a subquery of worker codes. Only the records in the window
    are read (index on kind and time, or kind, worker and time) and the
    database ranks them per worker, so one row per worker comes back.
    """
    ranked = (select(RecordState.worker_id, RecordState.occurred_at, RecordState.status,
                     func.row_number().over(partition_by=RecordState.worker_id, order_by=RecordState.occurred_at.desc()).label("n"))
              .where(RecordState.kind == kind, RecordState.occurred_at >= since, RecordState.occurred_at <= now,
                     RecordState.worker_id.in_(workers))
              .subquery())
    rows = db.session.execute(select(ranked.c.worker_id, ranked.c.occurred_at, ranked.c.status).where(ranked.c.n == 1))
    return {r.worker_id: r for r in rows}


def _last_contacts(users, team_ids) -> tuple[dict[int, datetime | None], dict[int, datetime | None]]:
    """({user id: latest contact of their own devices}, {team id: latest contact of shared team devices}).

    ``users`` and ``team_ids`` are subqueries (or lists) of user ids and team ids.
    """
    personal: dict[int, datetime | None] = {}
    shared: dict[int, datetime | None] = {}
    if isinstance(users, list):
        users = [getattr(u, "id", u) for u in users] or [-1]
    if isinstance(team_ids, (set, list, frozenset)):
        team_ids = list(team_ids) or [-1]
    rows = db.session.execute(
        select(Device.user_id, Device.team_id, func.max(Device.last_contact_at)).where(
            Device.status == "active", or_(Device.user_id.in_(users), and_(Device.user_id.is_(None), Device.team_id.in_(team_ids))))
        .group_by(Device.user_id, Device.team_id)
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
    duty_teams = _duty_team_ids(region_ids, now)
    teams = {t.id: t for t in db.session.execute(
        select(Team.id, Team.code, Team.region_id, Organisation.is_partner)
        .join(Organisation, Organisation.id == Team.organisation_id).where(Team.id.in_(duty_teams)))}
    users = db.session.execute(select(User.id, User.code, User.display_name, User.team_id).where(*_duty_user_filter(duty_teams))).all()
    workers = select(User.code).where(*_duty_user_filter(duty_teams))
    earliest = min(s for s, _ in shifts.values())
    checks = _latest("safety_check", workers, earliest - timedelta(minutes=lead_minutes), now)
    checkins = _latest("check_in", workers, earliest, now)
    personal, shared = _last_contacts(select(User.id).where(*_duty_user_filter(duty_teams)), duty_teams)
    interval = timedelta(minutes=interval_minutes)
    lead = timedelta(minutes=lead_minutes)
    result = []
    for u in users:
        if u.team_id not in shifts:  # a shift that began between the two queries
            continue
        start, end = shifts[u.team_id]
        team = teams[u.team_id]
        check = checks.get(u.code)
        if check is not None and check.occurred_at < start - lead:
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
        result.append(OnDuty(u.code, u.display_name, team.code, team.region_id, bool(team.is_partner), start, end,
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
    seen: dict[int, set] = {rid: set() for rid in regions}
    for o in duty:
        cov = regions.get(o.region_id)
        if cov is None:
            continue
        cov.on_duty += 1
        if o.team_code not in seen[o.region_id]:
            seen[o.region_id].add(o.team_code)
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
