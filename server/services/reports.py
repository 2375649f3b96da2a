"""The periodic report to the telecom authority (letter 1103/BTTTT-CVT, demand 7), signed like an export.

Per province / region and period:

- ``sites_total``: sites in the region;
  ``sites_down``: sites observed down at least once in the period;
  ``sites_restored``: sites with a repair job that reached *restored* in the period;
- ``restore_mean_min`` / ``restore_p90_min``: time from report to restore of those jobs, in minutes
  (p90 by the nearest-rank method);
- ``mobile_bts_deployments``: per site, observations in the period that turned a mobile base-station
  vehicle on (not deployed, or no observation before in the period, then deployed);
- ``technicians_on_duty``: technicians with a safety check in the period; ``technicians_fit``: those
  with at least one fit check; ``fit_checks`` / ``safety_checks``;
- ``health_incidents``: safety checks that found a technician unfit (counts only: no names, no values;
  the health fields themselves are never decrypted for this); ``sos_or_help``: SOS and need-help check-ins;
- ``mutual_aid_received``: jobs reported in the period handled by a partner operator's team;
  ``mutual_aid_given``: jobs handled by one of our teams for a partner operator (``team_operator``);
- ``open_difficulties``: free text from supervisors (``--difficulties FILE``; lines ``HN: ...`` belong
  to region HN, other lines to every region's report as general notes).

A region's records: a site's region, else the team's (as the change feed routes them).
The bundle holds report.csv, report.pdf and manifest.json (SHA-256 of both, signed with the export key);
``fieldwatch verify-export`` checks it.
"""
from __future__ import annotations

import csv
import io
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from shared import export_verify as fmt

from ..errors import Invalid
from ..extensions import db
from ..models import Device, Organisation, RecordState, Region, Site, Team, User, utcnow
from ..models.record import Revision
from . import audit
from .exports import BundlePdf, Exporter, open_sink, sign_manifest, write_file
from .keys import KeyRing, keyring

COLUMNS = ["region", "province", "sites_total", "sites_down", "sites_restored", "restore_jobs", "restore_mean_min",
           "restore_p90_min", "mobile_bts_deployments", "technicians_on_duty", "technicians_fit", "safety_checks",
           "fit_checks", "health_incidents", "sos_or_help", "mutual_aid_given", "mutual_aid_received", "open_difficulties"]
LABELS = {"sites_total": "Sites", "sites_down": "Down", "sites_restored": "Restored", "restore_jobs": "Jobs rest.",
          "restore_mean_min": "Mean min", "restore_p90_min": "P90 min", "mobile_bts_deployments": "Mob. BTS",
          "technicians_on_duty": "On duty", "technicians_fit": "Fit", "safety_checks": "Checks", "fit_checks": "Fit chk",
          "health_incidents": "Health inc.", "sos_or_help": "SOS/help", "mutual_aid_given": "Aid given",
          "mutual_aid_received": "Aid recv."}


@dataclass(frozen=True)
class Period:
    """Whole days in a zone: a month (2026-11), a day (2026-11-26) or FROM..TO."""

    first: date
    last: date
    label: str
    utc_offset: str = "+07:00"

    @classmethod
    def parse(cls, text: str, utc_offset: str = "+07:00") -> "Period":
        try:
            if ".." in text:
                a, b = text.split("..", 1)
                first, last = date.fromisoformat(a), date.fromisoformat(b)
            elif len(text) == 7:
                first = date.fromisoformat(text + "-01")
                nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
                last = nxt - timedelta(days=1)
            else:
                first = last = date.fromisoformat(text)
        except ValueError as exc:
            raise Invalid(f"period must be a month like 2026-11, a day like 2026-11-26 or 2026-11-01..2026-11-15, not {text!r}") from exc
        if last < first:
            raise Invalid("the period ends before it starts")
        cls._tz(utc_offset)
        return cls(first, last, text, utc_offset)

    @staticmethod
    def _tz(offset: str) -> timezone:
        try:
            sign = -1 if offset.startswith("-") else 1
            h, m = offset.lstrip("+-").split(":")
            return timezone(sign * timedelta(hours=int(h), minutes=int(m)))
        except (ValueError, AttributeError) as exc:
            raise Invalid(f"utc offset must look like +07:00, not {offset!r}") from exc

    @property
    def tz(self) -> timezone:
        return self._tz(self.utc_offset)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), self.tz)

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def to_dict(self) -> dict:
        return {"label": self.label, "from": self.first.isoformat(), "to": self.last.isoformat(), "utc_offset": self.utc_offset}


@dataclass
class ReportSummary:
    export_id: str
    rows: list = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


def _when(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def parse_difficulties(text: str | None, region_codes: set[str]) -> tuple[dict, str]:
    """({region code: text}, general text) from 'HN: ...' lines and free lines."""
    per, general = {}, []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        head, sep, rest = line.partition(":")
        if sep and head.strip() in region_codes:
            per.setdefault(head.strip(), []).append(rest.strip())
        else:
            general.append(line.strip())
    return {k: " ".join(v) for k, v in per.items()}, " ".join(general)


def compute(period: Period, region_code: str | None = None, difficulties: str | None = None) -> list[dict]:
    """The report's rows, one per region (and a total row last)."""
    regions = db.session.scalars(select(Region).order_by(Region.code)).all()
    if region_code is not None:
        regions = [r for r in regions if r.code == region_code]
        if not regions:
            raise Invalid(f"there is no region {region_code!r}")
    site_region = dict(db.session.execute(select(Site.code, Site.region_id)).all())
    team_rows = db.session.execute(select(Team.id, Team.code, Team.region_id, Organisation.code, Organisation.is_partner)
                                   .join(Organisation, Organisation.id == Team.organisation_id)).all()
    team_by_code = {t.code: t for t in team_rows}
    team_region_by_id = {t.id: t.region_id for t in team_rows}
    partner_orgs = {t[3] for t in team_rows if t[4]} | set(db.session.scalars(select(Organisation.code).where(Organisation.is_partner)))
    worker_team = dict(db.session.execute(select(User.code, User.team_id)).all())
    device_team = dict(db.session.execute(select(Device.id, Device.team_id)).all())
    stats = {r.id: _empty(r) for r in regions}
    for code, region_id in site_region.items():
        if region_id in stats:
            stats[region_id]["sites_total"] += 1
    rows_in_period = (Revision.occurred_at >= period.start, Revision.occurred_at < period.end)

    # site status observations: down, mobile BTS deployments
    down: dict[int, set] = {r: set() for r in stats}
    last_bts: dict[str, bool] = {}
    q = (select(Revision.body).where(Revision.kind == "site_status", *rows_in_period)
         .order_by(Revision.rev).execution_options(yield_per=2000))
    for (body,) in db.session.execute(q):
        region = site_region.get(body.get("site_code"))
        if region not in stats:
            continue
        site = body["site_code"]
        if body.get("state") == "down":
            down[region].add(site)
        deployed = bool(body.get("mobile_bts_deployed"))
        if deployed and not last_bts.get(site, False):
            stats[region]["mobile_bts_deployments"] += 1
        last_bts[site] = deployed
    for region, sites in down.items():
        stats[region]["sites_down"] = len(sites)

    # repair jobs (their merged state): restores, restore times, mutual aid
    restored_sites: dict[int, set] = {r: set() for r in stats}
    times: dict[int, list] = {r: [] for r in stats}
    for (body,) in db.session.execute(select(RecordState.body).where(RecordState.kind == "repair_job").execution_options(yield_per=2000)):
        team = team_by_code.get(body.get("team_id"))
        region = site_region.get(body.get("site_code"))
        if region is None and team is not None:
            region = team.region_id
        if region not in stats:
            continue
        steps = body.get("steps") or {}
        reported, restored = _when(body.get("reported_at") or steps.get("reported")), _when(steps.get("restored"))
        if period.contains(restored):
            restored_sites[region].add(body.get("site_code"))
            if reported is not None and restored >= reported:
                times[region].append((restored - reported).total_seconds() / 60)
        if period.contains(reported) and team is not None:
            if team[4]:
                stats[region]["mutual_aid_received"] += 1
            elif body.get("team_operator") in partner_orgs:
                stats[region]["mutual_aid_given"] += 1
    for region in stats:
        stats[region]["sites_restored"] = len(restored_sites[region])
        t = times[region]
        stats[region]["restore_jobs"] = len(t)
        stats[region]["restore_mean_min"] = round(sum(t) / len(t), 1) if t else None
        stats[region]["restore_p90_min"] = round(p90(t), 1) if t else None

    # safety checks and check-ins: who was on duty and fit; incidents as counts
    on_duty: dict[int, set] = {r: set() for r in stats}
    fit: dict[int, set] = {r: set() for r in stats}
    q = (select(Revision.kind, Revision.device_id, Revision.worker_id, Revision.body)
         .where(Revision.kind.in_(("safety_check", "check_in")), *rows_in_period).execution_options(yield_per=2000))
    for kind, device_id, worker, body in db.session.execute(q):
        region = site_region.get(body.get("site_code"))
        if region is None:
            team_id = device_team.get(device_id) if device_id else worker_team.get(worker)
            region = team_region_by_id.get(team_id)
        if region not in stats:
            continue
        s = stats[region]
        if kind == "safety_check":
            s["safety_checks"] += 1
            on_duty[region].add(worker)
            if body.get("fit_for_duty"):
                s["fit_checks"] += 1
                fit[region].add(worker)
            else:
                s["health_incidents"] += 1
        elif body.get("status") in ("sos", "need_help"):
            s["sos_or_help"] += 1
    for region in stats:
        stats[region]["technicians_on_duty"] = len(on_duty[region])
        stats[region]["technicians_fit"] = len(fit[region])

    per_region, general = parse_difficulties(difficulties, {r.code for r in regions})
    rows = []
    for r in regions:
        row = stats[r.id]
        row["open_difficulties"] = per_region.get(r.code, "")
        rows.append(row)
    total = _empty(None)
    for row in rows:
        for k in COLUMNS[2:-1]:
            if k in ("restore_mean_min", "restore_p90_min"):
                continue
            total[k] += row[k]
    all_times = [t for r in stats for t in times[r]]
    total["restore_mean_min"] = round(sum(all_times) / len(all_times), 1) if all_times else None
    total["restore_p90_min"] = round(p90(all_times), 1) if all_times else None
    # workers are counted once even when they worked in two regions
    total["technicians_on_duty"] = len(set().union(*on_duty.values())) if on_duty else 0
    total["technicians_fit"] = len(set().union(*fit.values())) if fit else 0
    total["open_difficulties"] = general
    rows.append(total)
    return rows


def _empty(region) -> dict:
    row = {k: 0 for k in COLUMNS}
    row.update(region=region.code if region is not None else "TOTAL", province=region.province or region.name if region is not None else "",
               restore_mean_min=None, restore_p90_min=None, open_difficulties="")
    return row


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for row in rows:
        w.writerow(["" if row[k] is None else row[k] for k in COLUMNS])
    return buf.getvalue().encode("utf-8")


def _pdf_bytes(rows: list[dict], period: Period, export_id: str, created: datetime, who: Exporter, general: str) -> bytes:
    pdf = BundlePdf(f"fieldwatch report to the Telecom Department: {period.label}", "",
                    f"report {export_id} · verify: fieldwatch verify-export <bundle>")
    pdf.heading(f"Network and field-crew report, {period.first.isoformat()} to {period.last.isoformat()}")
    pdf.key_values([
        ("Period", f"{period.first.isoformat()} to {period.last.isoformat()} (days in UTC{period.utc_offset})"),
        ("Prepared by", f"{who.name} ({who.role}) at {created.astimezone(period.tz):%Y-%m-%d %H:%M}"),
        ("Report id", export_id),
        ("Basis", "Letter 1103/BTTTT-CVT (demand 7): progress, difficulties and proposals, per province. Health incidents are counts "
                  "only. Restore times: report to restore of jobs restored in the period (p90 nearest rank)."),
        ("Columns", "Sites: total in the region; Down / Restored: sites observed down / restored in the period; Jobs rest.: repair "
                    "jobs restored; Mean / P90 min: report-to-restore time; Mob. BTS: mobile base-station vehicle deployments; On duty / Fit: "
                    "technicians with a safety check / a fit check; Checks / Fit chk: safety checks / fit ones; Health inc.: checks "
                    "finding a technician unfit; SOS/help: such check-ins; Aid given / recv.: jobs done for / by a partner operator."),
        ("How to check", "manifest.json beside this file holds the SHA-256 of report.csv and report.pdf, signed with the operator's "
                         "export key: fieldwatch verify-export <bundle> --export-key <key from /api/v1/keys>."),
    ])
    numeric = [k for k in COLUMNS[2:-1]]
    cols = [("Region", 18), ("Province", 30)] + [(LABELS[k], 15.0) for k in numeric]
    pdf.table(cols)
    for i, row in enumerate(rows):
        pdf.row([row["region"], row["province"]] + ["–" if row[k] is None else str(row[k]) for k in numeric], shade=i % 2 == 1)
    pdf.end_table()
    pdf.heading("Open difficulties and proposals", 11)
    notes = [(r["region"], r["open_difficulties"]) for r in rows[:-1] if r["open_difficulties"]]
    if general:
        notes.append(("General", general))
    if notes:
        pdf.key_values(notes)
    else:
        pdf.paragraph("None reported.")
    return pdf.output()


def write_report(period: Period, who: Exporter, path: str, *, region: str | None = None, difficulties: str | None = None,
                 ring: KeyRing | None = None) -> ReportSummary:
    """Compute the report and write its signed bundle (a folder, or a zip when ``path`` ends with .zip)."""
    ring = ring or keyring()
    rows = compute(period, region, difficulties)
    export_id = str(uuid.uuid4())
    created = utcnow()
    summary = ReportSummary(export_id, rows)
    sink = open_sink(path)
    try:
        write_file(sink, "report.csv", _csv_bytes(rows), summary.files, "report")
        write_file(sink, "report.pdf", _pdf_bytes(rows, period, export_id, created, who, rows[-1]["open_difficulties"]),
                     summary.files, "document")
        manifest = {
            "format": fmt.FORMAT, "format_version": fmt.FORMAT_VERSION, "kind": "report", "export_id": export_id,
            "created_at": created.isoformat(), "exported_by": who.to_dict(), "period": period.to_dict(),
            "filter": {"region": region}, "counts": {"regions": len(rows) - 1},
            "withheld": {"fields": [], "by_kind": {}, "reason": "health incidents are counts only; no names or health values are in a report"},
            "files": summary.files,
            "totals": {k: rows[-1][k] for k in COLUMNS[2:-1]},
        }
        summary.manifest = sign_manifest(manifest, ring)
        write_file(sink, fmt.MANIFEST, json.dumps(summary.manifest, indent=1, sort_keys=True, ensure_ascii=False).encode(), None, None)
        sink.close()
    finally:
        sink.release()
    audit.record("report.create", user_id=who.user_id, target=export_id, period=period.to_dict(), region=region, via=who.via,
                 exporter=who.name, regions=len(rows) - 1)
    db.session.commit()
    return summary


__all__ = ["Period", "ReportSummary", "compute", "write_report", "p90", "parse_difficulties", "COLUMNS"]
