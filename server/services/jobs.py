"""Faults (repair jobs): open ones and their responders, response times against targets, list, assign, timeline.

- *Responder*: the team a job is assigned to (``team_id``). A team of a
  partner operator counts, marked ``mutual_aid`` (DOMAIN, letter demand 5).
- *Response times* are measured from ``steps.reported`` to
  ``steps.acknowledged`` (acknowledge), ``steps.on_site`` (arrive) and
  ``steps.restored`` (restore), against the :class:`ResponseTarget` of the
  site's criticality. A step not reached yet is *running* and breaches
  once the target has passed; a step the job went past without its time
  having reached the server (e.g. "restored" synced before "acknowledged")
  is ``not_recorded``: not a breach, and measured as soon as the late
  revision arrives (the merge keeps each step's first time).
- Assigning goes through :func:`server.services.sync.write_by_person`, so it
  merges and reaches the phones like any revision.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from shared.schemas.repair_job import STATE_RANK

from ..errors import Forbidden, Invalid, NotFound
from ..extensions import db
from ..models import Device, Organisation, RecordState, ResponseTarget, Revision, Site, Team, User, utcnow
from . import audit
from .people import Scope, teams_for
from .sync import write_by_person

CLOSED = ("restored", "closed", "cancelled")
OPEN = tuple(s for s in STATE_RANK if s not in CLOSED)


def _in_regions(region_ids):
    # a job's region is its site's (sync.py routes jobs by site, and a job's site must exist)
    return True if region_ids is None else RecordState.region_id.in_(list(region_ids) or [-1])
METRICS = (("acknowledge", "acknowledged"), ("arrive", "on_site"), ("restore", "restored"))
DEFAULT_TARGETS = {"critical": (15, 60, 240), "high": (30, 120, 480), "normal": (60, 240, 1440)}


@dataclass
class Measure:
    """One response-time measure of one job."""

    metric: str
    state: str  # done | running | not_recorded | not_applicable
    minutes: float | None
    target: int
    breach: bool


@dataclass
class Job:
    """A job as the dashboard shows it."""

    record_id: str
    site_code: str | None
    region_id: int | None
    criticality: str
    title: str
    fault_type: str
    priority: str
    status: str
    reported_at: datetime | None
    team_code: str | None
    team_name: str | None
    mutual_aid: bool
    has_responder: bool
    measures: list[Measure] = field(default_factory=list)

    @property
    def breaches(self) -> list[str]:
        return [m.metric for m in self.measures if m.breach]


def targets() -> dict[str, tuple[int, int, int]]:
    """{criticality: (acknowledge, arrive, restore) minutes}; defaults fill any criticality without a row."""
    rows = db.session.execute(select(ResponseTarget.criticality, ResponseTarget.acknowledge_minutes, ResponseTarget.arrive_minutes,
                                     ResponseTarget.restore_minutes))  # columns, not objects: every pull reads these
    found = {r.criticality: (r.acknowledge_minutes, r.arrive_minutes, r.restore_minutes) for r in rows}
    return {**DEFAULT_TARGETS, **found}


def device_targets() -> dict[str, tuple[int, int, int]]:
    """:func:`targets` as every pull sends them to phones: read at most every DEVICE_TARGETS_SECONDS per
    server process (a change made in another process reaches phones within that time)."""
    cache = current_app.extensions.setdefault("fieldwatch.device_targets", {})
    now = time.monotonic()
    if cache.get("until", 0.0) <= now:
        cache["value"], cache["until"] = targets(), now + current_app.config["DEVICE_TARGETS_SECONDS"]
    return cache["value"]


def forget_device_targets() -> None:
    """After a change of targets: this process's next pull reads them again."""
    current_app.extensions.pop("fieldwatch.device_targets", None)


def _parse(value) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def measure(body: dict, criticality: str, now: datetime, target_table: dict) -> list[Measure]:
    """The three response measures of a job body (pure: used by tests directly)."""
    steps = body.get("steps") or {}
    reported = _parse(steps.get("reported") or body.get("reported_at"))
    status = body.get("status", "reported")
    limits = target_table.get(criticality) or target_table["normal"]
    out = []
    for (metric, step), target in zip(METRICS, limits):
        at = _parse(steps.get(step))
        if reported is None:
            out.append(Measure(metric, "not_applicable", None, target, False))
        elif at is not None:
            minutes = max(0.0, (at - reported).total_seconds() / 60)
            out.append(Measure(metric, "done", round(minutes, 1), target, minutes > target))
        elif status == "cancelled":
            out.append(Measure(metric, "not_applicable", None, target, False))
        elif STATE_RANK.get(status, 0) >= STATE_RANK[step]:
            out.append(Measure(metric, "not_recorded", None, target, False))
        else:
            minutes = (now - reported).total_seconds() / 60
            out.append(Measure(metric, "running", round(minutes, 1), target, minutes > target))
    return out


def _jobs(query, now: datetime) -> list[Job]:
    table = targets()
    rows = db.session.execute(query).all()
    jobs = []
    for r in rows:
        body, crit = r.body, r.criticality or "normal"
        has_team = r.team_code is not None
        jobs.append(Job(r.record_id, r.site_code, r.region_id, crit, body.get("title") or "", body.get("fault_type", ""),
                        body.get("priority", ""), r.status or "", r.occurred_at, r.team_code, r.team_name,
                        bool(has_team and r.is_partner), has_team, measure(body, crit, now, table)))
    return jobs


def _base():
    """Jobs as plain rows (no ORM objects): the columns :func:`_jobs` shows, the site's criticality, the team and its operator."""
    return (select(RecordState.record_id, RecordState.site_code, RecordState.region_id, RecordState.status, RecordState.occurred_at,
                   RecordState.body, Site.criticality, Team.code.label("team_code"), Team.name.label("team_name"),
                   Organisation.is_partner)
            .outerjoin(Site, Site.code == RecordState.site_code)
            .outerjoin(Team, Team.id == RecordState.team_id)
            .outerjoin(Organisation, Organisation.id == Team.organisation_id)
            .where(RecordState.kind == "repair_job"))


def open_faults(region_ids, now: datetime | None = None, limit: int = 500) -> list[Job]:
    """Open jobs in these regions: without a responder first, then by report time."""
    now = now or utcnow()
    # Open jobs are few of all jobs: find them by status (index on kind, status / kind, region, status) and sort
    # those. ``coalesce(t, t)`` is ``t``, but keeps SQLite, which has no statistics on how rare open statuses
    # are, from walking every job ever reported in time order via (kind, occurred_at) to fill the limit.
    query = _base().where(RecordState.status.in_(OPEN), _in_regions(region_ids)).order_by(
        func.coalesce(RecordState.occurred_at, RecordState.occurred_at), RecordState.record_id).limit(limit)
    jobs = _jobs(query, now)
    jobs.sort(key=lambda j: (j.has_responder, j.reported_at or now))
    return jobs


def response_summary(region_ids, now: datetime | None = None, days: int = 7, limit: int = 5000) -> dict:
    """Jobs reported in the last ``days`` days: per measure, median minutes, count measured, breaches; the breaching jobs."""
    now = now or utcnow()
    query = _base().where(RecordState.occurred_at >= now - timedelta(days=days), _in_regions(region_ids)).order_by(
        RecordState.occurred_at.desc()).limit(limit)
    jobs = _jobs(query, now)
    summary = {}
    for i, (metric, _) in enumerate(METRICS):
        done = [j.measures[i].minutes for j in jobs if j.measures[i].state == "done"]
        summary[metric] = {
            "measured": len(done), "median_minutes": round(statistics.median(done), 1) if done else None,
            "breaches": sum(1 for j in jobs if j.measures[i].breach),
            "not_recorded": sum(1 for j in jobs if j.measures[i].state == "not_recorded"),
        }
    return {"days": days, "jobs": len(jobs), "measures": summary, "breaching": [j for j in jobs if j.breaches][:100]}


def list_jobs(scope: Scope, *, status: str = "open", region_id: int | None = None, team_code: str | None = None,
              site_code: str | None = None, now: datetime | None = None, limit: int = 200) -> list[Job]:
    """Jobs a person may see, filtered. Technicians: their team's jobs only."""
    now = now or utcnow()
    query = _base()
    if scope.role == "technician":
        query = query.where(RecordState.team_id == (scope.team_id or -1))
    else:
        scope.require_role("supervisor", "admin")
        query = query.where(_in_regions(scope.region_ids))
    if region_id is not None:
        scope.require_region(region_id, "that region")
        query = query.where(_in_regions({region_id}))
    if status == "open":
        query = query.where(RecordState.status.in_(OPEN))
    elif status != "all":
        if status not in STATE_RANK:
            raise Invalid(f"status must be open, all or one of {', '.join(STATE_RANK)}")
        query = query.where(RecordState.status == status)
    if team_code:
        team = db.session.scalar(select(Team).where(Team.code == team_code))
        query = query.where(RecordState.team_id == (team.id if team else -1))
    if site_code:
        query = query.where(RecordState.site_code == site_code)
    return _jobs(query.order_by(RecordState.occurred_at.desc()).limit(limit), now)


def _visible_job(scope: Scope, record_id: str) -> RecordState:
    state = db.session.get(RecordState, record_id)
    if state is None or state.kind != "repair_job":
        raise NotFound(f"there is no job {record_id!r}")
    if scope.role == "technician":
        if state.team_id is None or state.team_id != scope.team_id:
            raise Forbidden("A technician may see only their own team's jobs.")
    else:
        scope.require_role("supervisor", "admin")
        scope.require_region(state.region_id, "this job")
    return state


def job_detail(scope: Scope, record_id: str, now: datetime | None = None) -> dict:
    """One job, its steps, and its timeline of revisions (who changed what, when it reached the server)."""
    state = _visible_job(scope, record_id)
    now = now or utcnow()
    job = _jobs(_base().where(RecordState.record_id == record_id), now)[0]
    revisions = db.session.execute(
        select(Revision.rev, Revision.received_at, Revision.body, Revision.device_id, Revision.author_user_id)
        .where(Revision.record_id == record_id).order_by(Revision.rev)
    ).all()
    labels = {d.id: d.label for d in db.session.scalars(select(Device).where(Device.id.in_({r.device_id for r in revisions} - {None})))}
    authors = {u.id: u.display_name for u in db.session.scalars(select(User).where(User.id.in_({r.author_user_id for r in revisions} - {None})))}
    timeline = [{
        "rev": r.rev, "received_at": r.received_at, "status": r.body.get("status"), "changed": r.body.get("changed") or [],
        "team_id": r.body.get("team_id"), "by": authors.get(r.author_user_id) if r.author_user_id else labels.get(r.device_id, r.device_id),
        "by_person": r.author_user_id is not None,
    } for r in revisions]
    steps = sorted(((k, _parse(v)) for k, v in (state.body.get("steps") or {}).items()), key=lambda s: STATE_RANK.get(s[0], 99))
    return {"job": job, "steps": [{"step": k, "at": v} for k, v in steps], "notes": state.body.get("notes") or [], "timeline": timeline}


def assign(scope: Scope, record_id: str, team_code: str, ring, now: datetime | None = None) -> str:
    """Hand a job to a team (own or a partner's: mutual aid). Returns the new revision; the caller commits."""
    scope.require_role("supervisor", "admin")
    state = _visible_job(scope, record_id)
    if state.status in CLOSED:
        raise Invalid(f"this job is {state.status}; it cannot be assigned any more")
    team = next((t for t in teams_for(scope) if t.code == team_code), None)
    if team is None:
        raise Invalid(f"team {team_code!r} is not one you can assign to (your regions' teams and partner teams)")
    now = now or utcnow()
    body = {k: v for k, v in state.body.items() if k != "changed"}
    body.update(team_id=team.code, team_operator=team.organisation.code)
    changed = ["team_id", "team_operator"]
    if STATE_RANK[body["status"]] < STATE_RANK["assigned"]:
        body["status"] = "assigned"
        body["steps"] = {**body.get("steps", {}), "assigned": now.isoformat()}
        changed.append("status")
    body["changed"] = changed
    rev = write_by_person("repair_job", record_id, body, scope.user_id, ring)
    audit.record("job.assign", user_id=scope.user_id, target=f"repair_job:{record_id}", team=team.code,
                 mutual_aid=bool(team.organisation.is_partner))
    return rev
