"""Pictures for the charts page, rendered on the server as SVG (no chart library, no CDN: these machines have no internet).

:func:`series` computes the numbers (also served as JSON); :func:`line_svg`
and :func:`sites_map_svg` draw them. Days are UTC dates.
"""
from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from html import escape

from sqlalchemy import distinct, func, select

from ..extensions import db
from ..models import RecordState, Site, Team, User, utcnow
from .jobs import _in_regions, measure, targets
from .people import Scope

COLOURS = {"up": "#1e6b35", "degraded": "#d08700", "down": "#b3261e", None: "#8a939b"}
LINE_COLOURS = ("#14324a", "#d08700", "#b3261e", "#1d4ed8")


def _days(now: datetime, n: int) -> list[date]:
    today = now.date()
    return [today - timedelta(days=n - 1 - i) for i in range(n)]


def series(scope: Scope, days: int = 14, now: datetime | None = None) -> dict:
    """Per day: health-check compliance (%), median response minutes, sites reported down; and the sites' positions."""
    scope.require_role("supervisor", "admin")
    now = now or utcnow()
    axis = _days(now, days)
    since = datetime.combine(axis[0], datetime.min.time(), tzinfo=now.tzinfo)
    regions = scope.region_ids
    techs = select(User.code).join(Team, Team.id == User.team_id).where(User.role == "technician", User.active.is_(True))
    if regions is not None:
        techs = techs.where(Team.region_id.in_(list(regions) or [-1]))
    total = db.session.scalar(select(func.count()).select_from(techs.subquery())) or 0
    checked = {}
    rows = db.session.execute(
        select(RecordState.occurred_at, RecordState.worker_id).where(
            RecordState.kind == "safety_check", RecordState.occurred_at >= since, RecordState.worker_id.in_(techs)))
    for at, worker in rows:
        checked.setdefault(at.date(), set()).add(worker)
    compliance = [round(100 * len(checked.get(d, ())) / total, 1) if total else 0 for d in axis]

    table = targets()
    per_day: dict = {d: {"acknowledge": [], "arrive": [], "restore": []} for d in axis}
    jobs = db.session.execute(
        select(RecordState.body, RecordState.occurred_at, Site.criticality).outerjoin(Site, Site.code == RecordState.site_code)
        .where(RecordState.kind == "repair_job", RecordState.occurred_at >= since, _in_regions(regions)))
    for body, at, crit in jobs:
        for m in measure(body, crit or "normal", now, table):
            if m.state == "done" and at.date() in per_day:
                per_day[at.date()][m.metric].append(m.minutes)
    response = {metric: [round(statistics.median(per_day[d][metric]), 1) if per_day[d][metric] else None for d in axis]
                for metric in ("acknowledge", "arrive", "restore")}

    down_q = select(func.date(RecordState.occurred_at), func.count(distinct(RecordState.site_code))).where(
        RecordState.kind == "site_status", RecordState.status == "down", RecordState.occurred_at >= since,
        _in_regions(regions)).group_by(func.date(RecordState.occurred_at))
    down = {str(d): n for d, n in db.session.execute(down_q)}
    sites_q = select(Site.code, Site.lat, Site.lon, Site.status_state).where(Site.lat.is_not(None), Site.lon.is_not(None))
    if regions is not None:
        sites_q = sites_q.where(Site.region_id.in_(list(regions) or [-1]))
    sites = [{"code": c, "lat": lat, "lon": lon, "state": s} for c, lat, lon, s in db.session.execute(sites_q.limit(20000))]
    return {
        "days": [d.isoformat() for d in axis], "technicians": total, "health_check_compliance_pct": compliance,
        "median_response_minutes": response, "sites_reported_down": [down.get(d.isoformat(), 0) for d in axis], "sites": sites,
    }


def line_svg(title: str, labels: list[str], lines: dict[str, list], unit: str = "", width: int = 560, height: int = 220) -> str:
    """A small line chart; ``None`` values leave gaps."""
    left, right, top, bottom = 44, 12, 26, 30
    values = [v for vs in lines.values() for v in vs if v is not None]
    top_value = max(values + [1])
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(labels) - 1)

    def xy(i, v):
        return left + i * step, top + plot_h - plot_h * v / top_value

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="chart">',
             f'<text x="{left}" y="16" font-size="13" font-weight="600">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        y = top + plot_h - plot_h * frac
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dde3"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{top_value * frac:.3g}{escape(unit)}</text>')
    for i, label in enumerate(labels):
        if i % max(1, len(labels) // 7) == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - 10}" font-size="10" text-anchor="middle">{escape(label[5:])}</text>')
    for n, (name, vs) in enumerate(lines.items()):
        colour = LINE_COLOURS[n % len(LINE_COLOURS)]
        runs, run = [], []
        for i, v in enumerate(vs):
            if v is None:
                runs, run = runs + ([run] if run else []), []
            else:
                run.append(xy(i, v))
        runs += [run] if run else []
        for r in runs:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in r)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in r]
        parts.append(f'<rect x="{width - right - 120}" y="{top + n * 14 - 8}" width="10" height="3" fill="{colour}"/>'
                     f'<text x="{width - right - 106}" y="{top + n * 14 - 4}" font-size="10">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sites_map_svg(sites: list[dict], width: int = 560, height: int = 420) -> str:
    """Sites by position (longitude, latitude), coloured by state: a map without tiles."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="Sites by position" class="chart">',
             '<text x="8" y="16" font-size="13" font-weight="600">Sites by position (green up, amber degraded, red down, grey unknown)</text>']
    if sites:
        lats, lons = [s["lat"] for s in sites], [s["lon"] for s in sites]
        lat0, lat1, lon0, lon1 = min(lats), max(lats), min(lons), max(lons)
        span_lat, span_lon = (lat1 - lat0) or 1, (lon1 - lon0) or 1
        for s in sorted(sites, key=lambda s: {"down": 2, "degraded": 1}.get(s["state"], 0)):  # the worst on top
            x = 16 + (width - 32) * (s["lon"] - lon0) / span_lon
            y = 28 + (height - 44) * (1 - (s["lat"] - lat0) / span_lat)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{COLOURS.get(s["state"], COLOURS[None])}"><title>{escape(s["code"])}: '
                         f'{escape(s["state"] or "unknown")}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def charts(scope: Scope, days: int = 14, now: datetime | None = None) -> dict:
    """The numbers and their pictures for the charts page."""
    data = series(scope, days, now)
    return {
        "data": data,
        "svg": {
            "compliance": line_svg("Health-check compliance per day (% of technicians)", data["days"],
                                   {"checked": data["health_check_compliance_pct"]}, "%"),
            "response": line_svg("Median response time per day (minutes)", data["days"], data["median_response_minutes"]),
            "down": line_svg("Sites reported down per day", data["days"], {"sites down": data["sites_reported_down"]}),
            "map": sites_map_svg(data["sites"]),
        },
    }
