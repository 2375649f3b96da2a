"""The overview of one region or all of a person's regions: every figure the first page shows.

Pure composition of :mod:`safety`, :mod:`coverage` and :mod:`jobs`, plus the
sites' current state (``Site.status_*``, newest observation by HLC). The
page and ``GET /api/v1/overview`` both render :func:`overview`'s result, so
they always show the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select

from ..errors import NotFound
from ..extensions import db
from ..models import Region, Site, utcnow
from . import coverage, jobs, safety
from .people import Scope, regions_for

SITE_FLAGS = ("down", "degraded", "generator", "battery", "mobile_bts", "quarantined")


@dataclass
class Settings:
    """The knobs of the computation (from app config)."""

    check_in_interval_minutes: int = 60
    health_check_lead_minutes: int = 120
    alarm_window_hours: int = 24
    response_days: int = 7
    site_list_limit: int = 200
    # The on-duty and overdue lists show the worst this many (totals count everyone): an admin's view of
    # every region listed ~5,000 people, most of the overview's time and more than a person reads.
    person_list_limit: int = 200


def _region_ids(scope: Scope, region_code: str | None) -> tuple[frozenset[int] | None, list[Region]]:
    regions = regions_for(scope)
    if region_code:
        region = db.session.scalar(select(Region).where(Region.code == region_code))
        if region is None:
            raise NotFound(f"there is no region {region_code!r}")
        scope.require_region(region.id, f"region {region_code}")
        return frozenset({region.id}), regions
    return scope.region_ids, regions


def site_figures(region_ids, limit: int = 200) -> dict:
    """Per region counts of sites down, degraded, on generator/battery, with a mobile BTS, quarantined; and the worst sites."""
    flags = {
        "down": Site.status_state == "down",
        "degraded": Site.status_state == "degraded",
        "generator": Site.status_power == "generator",
        "battery": Site.status_power == "battery",
        "mobile_bts": Site.status_mobile_bts.is_(True),
        "quarantined": Site.status_access == "quarantined",
    }
    query = select(Site.region_id, func.count().label("total"),
                   *[func.sum(case((cond, 1), else_=0)).label(name) for name, cond in flags.items()]).group_by(Site.region_id)
    if region_ids is not None:
        query = query.where(Site.region_id.in_(list(region_ids) or [-1]))
    per_region = {r.region_id: {"total": r.total, **{n: int(getattr(r, n) or 0) for n in flags}} for r in db.session.execute(query)}
    # The worst sites: down first, then degraded, then any other flag; by criticality and code within each.
    # Fetched tier by tier (down and degraded sites are found by the index on status_state), stopping once
    # the list is full, so a lockdown's thousands of flagged sites are not all read and sorted for 200 rows.
    crit = case((Site.criticality == "critical", 0), (Site.criticality == "high", 1), else_=2)
    columns = (Site.code, Site.name, Site.region_id, Site.criticality, Site.status_state, Site.status_power, Site.status_mobile_bts,
               Site.status_backup_tx, Site.status_access, Site.status_at)
    others = [cond for name, cond in flags.items() if name not in ("down", "degraded")]
    tiers = (flags["down"], flags["degraded"],
             and_(or_(Site.status_state.is_(None), Site.status_state.not_in(("down", "degraded"))), or_(*others)))
    sites = []
    for tier in tiers:
        if len(sites) >= limit:
            break
        listed = select(*columns).where(tier)
        if region_ids is not None:
            listed = listed.where(Site.region_id.in_(list(region_ids) or [-1]))
        sites += [{
            "code": s.code, "name": s.name, "region_id": s.region_id, "criticality": s.criticality, "state": s.status_state,
            "power": s.status_power, "mobile_bts": bool(s.status_mobile_bts), "backup_tx": bool(s.status_backup_tx),
            "access": s.status_access, "observed_at": s.status_at,
        } for s in db.session.execute(listed.order_by(crit, Site.code).limit(limit - len(sites)))]
    return {"per_region": per_region, "sites": sites}


def overview(scope: Scope, region_code: str | None = None, now: datetime | None = None, settings: Settings | None = None) -> dict:
    """Everything on the overview page, for the regions this person may see (or one of them)."""
    scope.require_role("supervisor", "admin")
    settings = settings or Settings()
    now = now or utcnow()
    region_ids, regions = _region_ids(scope, region_code)
    duty = coverage.on_duty(region_ids, now, interval_minutes=settings.check_in_interval_minutes,
                            lead_minutes=settings.health_check_lead_minutes)
    covered = coverage.region_coverage(region_ids, duty)
    sites = site_figures(region_ids, settings.site_list_limit)
    faults = jobs.open_faults(region_ids, now)
    names = {r.id: r.code for r in regions}
    for cov in covered:
        cov.sites = sites["per_region"].get(cov.region_id, {"total": 0, **{f: 0 for f in SITE_FLAGS}})
    alarms = safety.open_alarms(region_ids, now, settings.alarm_window_hours)
    return {
        "generated_at": now,
        "region": region_code,
        "regions": [{"code": r.code, "name": r.name} for r in regions],
        "region_codes": names,
        "alarms": alarms,
        "on_duty": duty[:settings.person_list_limit],  # worst first (coverage.on_duty)
        "coverage": covered,
        "below_minimum": [c for c in covered if c.below_minimum],
        "overdue": [o for o in duty if o.checkin != "ok"][:settings.person_list_limit],
        "list_limit": settings.person_list_limit,
        "sites": sites["sites"],
        "faults": {
            "open": faults,
            "without_responder": [j for j in faults if not j.has_responder],
            "mutual_aid": [j for j in faults if j.mutual_aid],
        },
        "response": jobs.response_summary(region_ids, now, settings.response_days),
        "totals": {
            **_alarm_totals(alarms), "on_duty": len(duty), "fit": sum(1 for o in duty if o.fitness == "fit"),
            "unfit": sum(1 for o in duty if o.fitness == "unfit"), "no_check": sum(1 for o in duty if o.fitness == "no_check"),
            "overdue": sum(1 for o in duty if o.checkin == "overdue"), "unknown": sum(1 for o in duty if o.checkin == "unknown"),
            "open_faults": len(faults), "without_responder": sum(1 for j in faults if not j.has_responder),
            "mutual_aid": sum(1 for j in faults if j.mutual_aid),
            **{f: sum(v[f] for v in sites["per_region"].values()) for f in SITE_FLAGS},
        },
    }


def alarm_panel(scope: Scope, region_code: str | None = None, now: datetime | None = None, settings: Settings | None = None) -> dict:
    """The overview's open SOS / need-help alarms alone: what the page polls every few seconds."""
    scope.require_role("supervisor", "admin")
    settings = settings or Settings()
    region_ids, _regions = _region_ids(scope, region_code)
    alarms = safety.open_alarms(region_ids, now or utcnow(), settings.alarm_window_hours)
    return {"alarms": alarms, "totals": _alarm_totals(alarms)}


def _alarm_totals(alarms) -> dict:
    return {"alarms": len(alarms), "sos": sum(1 for a in alarms if a.status == "sos")}


def settings_from(config) -> Settings:
    """Settings from a Flask config mapping."""
    return Settings(int(config.get("CHECK_IN_INTERVAL_MINUTES", 60)), int(config.get("HEALTH_CHECK_LEAD_MINUTES", 120)),
                    int(config.get("ALARM_WINDOW_HOURS", 24)), int(config.get("RESPONSE_WINDOW_DAYS", 7)),
                    person_list_limit=int(config.get("OVERVIEW_PERSON_LIST_LIMIT", Settings.person_list_limit)))
