"""Admin work: people, teams and organisations, regions, sites (CSV import), duty shifts, response targets.

Every function takes the acting person's :class:`Scope`, refuses anyone but
an admin, writes an audit entry (ids and codes, never passwords or health
values) and leaves the commit to the caller.
"""
from __future__ import annotations

import csv
import io
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from shared.errors import ReasonCode

from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import CRITICALITIES, ROLES, DutyShift, Organisation, Region, ResponseTarget, Site, Team, User, utcnow
from . import audit, jobs, people
from .people import Scope

MAX_SHIFT = timedelta(days=7)
SITE_COLUMNS = ("code", "name", "region", "lat", "lon", "criticality")


def _admin(scope: Scope) -> None:
    scope.require_role("admin")


def _text(value, what: str, max_len: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise Invalid(f"{what} is required")
    if len(value) > max_len:
        raise Invalid(f"{what} is at most {max_len} characters")
    return value


def _int(value, what: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise Invalid(f"{what} must be a whole number") from None
    if not low <= number <= high:
        raise Invalid(f"{what} must be from {low} to {high}")
    return number


def _by_code(model, code: str, what: str):
    row = db.session.scalar(select(model).where(model.code == (code or "").strip()))
    if row is None:
        raise NotFound(f"there is no {what} {code!r}")
    return row


def _literal(search: str | None) -> str:
    """A person's search text for LIKE with escape "\\": its % and _ are characters, not wildcards."""
    return (search or "").strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- people ---------------------------------------------------------------------------------------------------------


USERS_PER_PAGE = 100


def list_users(scope: Scope, search: str = "", page: int = 1, per_page: int = USERS_PER_PAGE) -> tuple[list[User], int]:
    """One page of accounts (by role, then username) whose username, name or worker code holds ``search``; and how many match.

    An operator has thousands of technicians: the page lists a hundred at a time, and a search finds anyone.
    """
    _admin(scope)
    query = select(User)
    text = _literal(search)
    if text:
        query = query.where(or_(*(column.ilike(f"%{text}%", escape="\\") for column in (User.username, User.display_name, User.code))))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = max(1, page)
    users = db.session.scalars(query.order_by(User.role, User.username).offset((page - 1) * per_page).limit(per_page))
    return list(users), total


def create_user(scope: Scope, username: str, role: str, *, display_name: str = "", code: str = "", team_code: str = "",
                region_codes=(), password: str = "") -> tuple[User, str | None]:
    """Make an account. Without a password given, a temporary one is made and returned (shown once)."""
    _admin(scope)
    temporary = None
    if not password:
        password = temporary = _temporary_password()
    user = people.create_user((username or "").strip(), role, password, display_name=(display_name or "").strip() or None,
                              code=(code or "").strip() or None, team_code=(team_code or "").strip() or None,
                              region_codes=[r for r in region_codes if r], by=scope.user_id)
    return user, temporary


def _temporary_password() -> str:
    return secrets.token_urlsafe(12)


def _active_admins(excluding: int | None = None) -> int:
    query = select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
    if excluding is not None:
        query = query.where(User.id != excluding)
    return db.session.scalar(query) or 0


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"there is no user {user_id}")
    return user


def update_user(scope: Scope, user_id: int, *, role: str, team_code: str = "", region_codes=(), display_name: str = "") -> User:
    """Change a person's role, team, regions and name (technicians need a team, supervisors a region)."""
    _admin(scope)
    user = _user(user_id)
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if user.role == "admin" and role != "admin" and user.active and _active_admins(excluding=user.id) == 0:
        raise Invalid("this is the last active admin; make another admin first")
    team = _by_code(Team, team_code, "team") if (team_code or "").strip() else None
    regions = [_by_code(Region, c, "region") for c in region_codes if c]
    if role == "technician" and team is None:
        raise Invalid("a technician needs a team")
    if role == "supervisor" and not regions:
        raise Invalid("a supervisor needs at least one region")
    before = {"role": user.role, "team": user.team.code if user.team else None, "regions": sorted(r.code for r in user.regions)}
    user.role, user.team_id, user.regions = role, team.id if team else None, regions
    if display_name and display_name.strip():
        user.display_name = _text(display_name, "the name", 200)
    after = {"role": role, "team": team.code if team else None, "regions": sorted(r.code for r in regions)}
    audit.record("user.update", user_id=scope.user_id, target=f"user:{user.id}", before=before, after=after)
    return user


def set_active(scope: Scope, user_id: int, active: bool) -> User:
    """Deactivate (sessions and tokens stop working at once) or reactivate an account."""
    _admin(scope)
    user = _user(user_id)
    if not active and user.id == scope.user_id:
        raise Invalid("you cannot deactivate your own account")
    if not active and user.role == "admin" and _active_admins(excluding=user.id) == 0:
        raise Invalid("this is the last active admin")
    if user.active != active:
        user.active = active
        audit.record("user.activate" if active else "user.deactivate", user_id=scope.user_id, target=f"user:{user.id}")
    return user


def reset_password(scope: Scope, user_id: int) -> tuple[User, str]:
    """Give a person a new temporary password (returned to be shown once); their sessions end."""
    _admin(scope)
    user = _user(user_id)
    password = _temporary_password()
    people.set_password(user, password, by=scope.user_id)
    return user, password


# --- organisations and teams ----------------------------------------------------------------------------------------


def list_organisations(scope: Scope) -> list[Organisation]:
    _admin(scope)
    return list(db.session.scalars(select(Organisation).order_by(Organisation.is_partner, Organisation.code)))


def create_organisation(scope: Scope, code: str, name: str, is_partner: bool) -> Organisation:
    _admin(scope)
    code, name = _text(code, "the code", 32), _text(name, "the name", 200)
    if db.session.scalar(select(Organisation.id).where(Organisation.code == code)) is not None:
        raise Conflict(f"the organisation code {code!r} is taken", ReasonCode.INVALID_REQUEST)
    org = Organisation(code=code, name=name, is_partner=bool(is_partner))
    db.session.add(org)
    db.session.flush()
    audit.record("organisation.create", user_id=scope.user_id, target=f"organisation:{org.id}", code=code, partner=bool(is_partner))
    return org


def list_teams(scope: Scope) -> list[Team]:
    _admin(scope)
    return list(db.session.scalars(select(Team).order_by(Team.code)))


def create_team(scope: Scope, code: str, name: str, organisation_code: str, region_code: str) -> Team:
    _admin(scope)
    code, name = _text(code, "the code", 32), _text(name, "the name", 200)
    org = _by_code(Organisation, organisation_code, "organisation")
    region = _by_code(Region, region_code, "region")
    if db.session.scalar(select(Team.id).where(Team.code == code)) is not None:
        raise Conflict(f"the team code {code!r} is taken", ReasonCode.INVALID_REQUEST)
    team = Team(code=code, name=name, organisation_id=org.id, region_id=region.id)
    db.session.add(team)
    db.session.flush()
    audit.record("team.create", user_id=scope.user_id, target=f"team:{team.id}", code=code, organisation=org.code, region=region.code)
    return team


def update_team(scope: Scope, team_id: int, name: str, region_code: str) -> Team:
    _admin(scope)
    team = db.session.get(Team, team_id)
    if team is None:
        raise NotFound(f"there is no team {team_id}")
    region = _by_code(Region, region_code, "region")
    team.name, team.region_id = _text(name, "the name", 200), region.id
    audit.record("team.update", user_id=scope.user_id, target=f"team:{team.id}", region=region.code)
    return team


# --- regions --------------------------------------------------------------------------------------------------------


def list_regions(scope: Scope) -> list[Region]:
    _admin(scope)
    return list(db.session.scalars(select(Region).order_by(Region.code)))


def create_region(scope: Scope, code: str, name: str, province: str = "", min_fit_on_duty=1) -> Region:
    _admin(scope)
    code, name = _text(code, "the code", 32), _text(name, "the name", 200)
    if db.session.scalar(select(Region.id).where(Region.code == code)) is not None:
        raise Conflict(f"the region code {code!r} is taken", ReasonCode.INVALID_REQUEST)
    region = Region(code=code, name=name, province=_text(province, "the province", 200, required=False),
                    min_fit_on_duty=_int(min_fit_on_duty, "the minimum of fit technicians", 0, 10000))
    db.session.add(region)
    db.session.flush()
    audit.record("region.create", user_id=scope.user_id, target=f"region:{region.id}", code=code, min_fit_on_duty=region.min_fit_on_duty)
    return region


def update_region(scope: Scope, region_id: int, name: str, province: str, min_fit_on_duty) -> Region:
    _admin(scope)
    region = db.session.get(Region, region_id)
    if region is None:
        raise NotFound(f"there is no region {region_id}")
    before = region.min_fit_on_duty
    region.name = _text(name, "the name", 200)
    region.province = _text(province, "the province", 200, required=False)
    region.min_fit_on_duty = _int(min_fit_on_duty, "the minimum of fit technicians", 0, 10000)
    audit.record("region.update", user_id=scope.user_id, target=f"region:{region.id}", min_fit_before=before, min_fit_after=region.min_fit_on_duty)
    return region


# --- sites ----------------------------------------------------------------------------------------------------------


def list_sites(scope: Scope, region_code: str | None = None, query: str | None = None, limit: int = 500) -> tuple[list[Site], int]:
    """(sites, how many match) filtered by region and code/name prefix; at most ``limit`` listed."""
    _admin(scope)
    where = []
    if region_code:
        where.append(Site.region_id == _by_code(Region, region_code, "region").id)
    text = _literal(query)
    if text:
        where.append(Site.code.like(text + "%", escape="\\") | Site.name.like(text + "%", escape="\\"))
    total = db.session.scalar(select(func.count()).select_from(Site).where(*where)) or 0
    return list(db.session.scalars(select(Site).where(*where).order_by(Site.code).limit(limit))), total


@dataclass
class ImportReport:
    """What a CSV import did: rows created and updated, and each bad row with its line number and reason."""

    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return self.created + self.updated


def _coordinate(value: str, what: str, bound: float) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise ValueError(f"{what} {value!r} is outside -{bound:g}..{bound:g}")
    return number


def import_sites_csv(scope: Scope, data: bytes | str, max_rows: int = 200_000) -> ImportReport:
    """Create or update sites from CSV with the header ``code,name,region,lat,lon,criticality`` (any order).

    Good rows are kept; each bad row is reported by its line number in the
    file (the header is line 1) with the reason. A code is matched to an
    existing site (updated) or made new; a code twice in the file is an error
    on the second line. The caller commits.
    """
    _admin(scope)
    report = ImportReport()
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            report.errors.append((0, "the file is not UTF-8 text"))
            return report
    reader = csv.reader(io.StringIO(data, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        report.errors.append((1, "the file is empty; the first line must be the header " + ",".join(SITE_COLUMNS)))
        return report
    except csv.Error as exc:
        report.errors.append((1, f"the header is not valid CSV ({exc})"))
        return report
    missing = [c for c in SITE_COLUMNS if c not in header]
    if missing:
        report.errors.append((1, f"the header lacks {', '.join(missing)}; it must name " + ",".join(SITE_COLUMNS)))
        return report
    index = {c: header.index(c) for c in SITE_COLUMNS}
    regions = {r.code: r.id for r in db.session.scalars(select(Region))}
    seen: dict[str, int] = {}
    pending: list[tuple[int, dict]] = []
    line = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.errors.append((reader.line_num, f"not valid CSV ({exc})"))
            break
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # a blank line
        if len(pending) + len(report.errors) >= max_rows:
            report.errors.append((line, f"the file has more than {max_rows} rows; the rest was not read"))
            break
        if len(values) != len(header):
            report.errors.append((line, f"{len(values)} fields where the header has {len(header)}"))
            continue
        row = {c: values[i].strip() for c, i in index.items()}
        try:
            if not row["code"]:
                raise ValueError("the code is empty")
            if len(row["code"]) > 64:
                raise ValueError("the code is over 64 characters")
            if not row["name"]:
                raise ValueError("the name is empty")
            if len(row["name"]) > 200:
                raise ValueError("the name is over 200 characters")
            if row["region"] not in regions:
                raise ValueError(f"there is no region {row['region']!r}")
            crit = row["criticality"].lower() or "normal"
            if crit not in CRITICALITIES:
                raise ValueError(f"criticality {row['criticality']!r} is not one of {', '.join(CRITICALITIES)}")
            lat, lon = _coordinate(row["lat"], "lat", 90), _coordinate(row["lon"], "lon", 180)
            if (lat is None) != (lon is None):
                raise ValueError("give both lat and lon, or neither")
            if row["code"] in seen:
                raise ValueError(f"the code {row['code']!r} is already on line {seen[row['code']]}")
        except ValueError as exc:
            report.errors.append((line, str(exc)))
            continue
        seen[row["code"]] = line
        pending.append((line, {"code": row["code"], "name": row["name"], "region_id": regions[row["region"]], "lat": lat, "lon": lon,
                               "criticality": crit}))
    codes = [p["code"] for _, p in pending]
    existing: dict[str, Site] = {}
    for start in range(0, len(codes), 500):
        existing.update({s.code: s for s in db.session.scalars(select(Site).where(Site.code.in_(codes[start:start + 500])))})
    for _, values in pending:
        site = existing.get(values["code"])
        if site is None:
            db.session.add(Site(**values))
            report.created += 1
        else:
            for key, value in values.items():
                setattr(site, key, value)
            report.updated += 1
    db.session.flush()
    audit.record("site.import", user_id=scope.user_id, target="sites", created=report.created, updated=report.updated,
                 rejected=len(report.errors))
    return report


# --- duty shifts ----------------------------------------------------------------------------------------------------


def parse_local(value: str, tz_name: str, what: str) -> datetime:
    """A ``YYYY-MM-DDTHH:MM`` from a form, in the dashboard's time zone, as an aware UTC instant."""
    from datetime import timezone

    try:
        local = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise Invalid(f"{what} must be a date and time like 2026-11-26T22:00") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(tz_name))
    return local.astimezone(timezone.utc)


def list_shifts(scope: Scope, now: datetime | None = None, past_hours: int = 24, limit: int = 500) -> list[DutyShift]:
    """Shifts not ended more than ``past_hours`` ago, by start."""
    _admin(scope)
    now = now or utcnow()
    return list(db.session.scalars(select(DutyShift).where(DutyShift.ends_at >= now - timedelta(hours=past_hours))
                                   .order_by(DutyShift.starts_at, DutyShift.id).limit(limit)))


def create_shift(scope: Scope, team_code: str, starts_at: datetime, ends_at: datetime, note: str = "") -> DutyShift:
    """A team on duty from ``starts_at`` to ``ends_at`` (a night shift simply crosses midnight)."""
    _admin(scope)
    team = _by_code(Team, team_code, "team")
    if ends_at <= starts_at:
        raise Invalid("the shift must end after it starts")
    if ends_at - starts_at > MAX_SHIFT:
        raise Invalid("a shift is at most 7 days long")
    shift = DutyShift(team_id=team.id, starts_at=starts_at, ends_at=ends_at, note=_text(note, "the note", 200, required=False))
    db.session.add(shift)
    db.session.flush()
    audit.record("shift.create", user_id=scope.user_id, target=f"duty_shift:{shift.id}", team=team.code,
                 starts_at=starts_at.isoformat(), ends_at=ends_at.isoformat())
    return shift


def delete_shift(scope: Scope, shift_id: int) -> None:
    _admin(scope)
    shift = db.session.get(DutyShift, shift_id)
    if shift is None:
        raise NotFound(f"there is no shift {shift_id}")
    audit.record("shift.delete", user_id=scope.user_id, target=f"duty_shift:{shift.id}", team=shift.team.code,
                 starts_at=shift.starts_at.isoformat(), ends_at=shift.ends_at.isoformat())
    db.session.delete(shift)


# --- response targets -----------------------------------------------------------------------------------------------


def list_targets(scope: Scope) -> list[dict]:
    """Per criticality: (acknowledge, arrive, restore) minutes, and whether it is the built-in default."""
    _admin(scope)
    rows = {t.criticality for t in db.session.scalars(select(ResponseTarget))}
    table = jobs.targets()
    return [{"criticality": c, "acknowledge": table[c][0], "arrive": table[c][1], "restore": table[c][2], "default": c not in rows}
            for c in CRITICALITIES]


def set_target(scope: Scope, criticality: str, acknowledge, arrive, restore) -> ResponseTarget:
    """Set the minutes allowed for one criticality (acknowledge <= arrive <= restore)."""
    _admin(scope)
    if criticality not in CRITICALITIES:
        raise Invalid(f"criticality must be one of {', '.join(CRITICALITIES)}")
    week = 7 * 24 * 60
    ack, arr, res = (_int(acknowledge, "acknowledge minutes", 1, week), _int(arrive, "arrive minutes", 1, week),
                     _int(restore, "restore minutes", 1, 4 * week))
    if not ack <= arr <= res:
        raise Invalid("the targets must grow: acknowledge <= arrive <= restore")
    row = db.session.scalar(select(ResponseTarget).where(ResponseTarget.criticality == criticality))
    if row is None:
        row = ResponseTarget(criticality=criticality)
        db.session.add(row)
    row.acknowledge_minutes, row.arrive_minutes, row.restore_minutes = ack, arr, res
    db.session.flush()
    jobs.forget_device_targets()
    audit.record("target.set", user_id=scope.user_id, target=f"response_target:{criticality}", acknowledge=ack, arrive=arr, restore=res)
    return row
