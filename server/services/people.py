"""People: accounts, passwords (werkzeug scrypt), personal access tokens, and what each person may see.

No request or session here: :mod:`server.auth` turns a request into a
:class:`Scope` and passes it in; every service that shows or changes data
takes one and calls :meth:`Scope.require_region` (or filters by
:attr:`Scope.region_ids`).

Who sees what (DESIGN §5, issue 5):

============  ==============================================================
role          may
============  ==============================================================
technician    own worker page (no health details), own team's jobs (read)
supervisor    everything in their regions; health details of their regions'
              technicians (each view audit-logged)
admin         everything, every region
auditor       read-only: the audit log (and the exports, elsewhere)
============  ==============================================================
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from shared.errors import ReasonCode

from ..errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from ..extensions import db
from ..models import ROLES, AccessToken, AuditEntry, Region, Team, User, utcnow
from . import audit

TOKEN_PREFIX = "fwp_"  # person tokens; device tokens start with fwd_
MIN_PASSWORD = 10
# A fixed hash to compare against when the username is unknown, so timing does not tell.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


@dataclass(frozen=True)
class Scope:
    """What one person may see: role, regions (None = all), own team and worker code."""

    user_id: int | None
    role: str
    region_ids: frozenset[int] | None
    team_id: int | None = None
    worker_code: str | None = None

    @classmethod
    def of(cls, user: User) -> "Scope":
        """The scope of a user account."""
        regions = None if user.role == "admin" else frozenset(r.id for r in user.regions)
        if user.role == "technician":
            regions = frozenset({user.team.region_id}) if user.team else frozenset()
        return cls(user.id, user.role, regions, user.team_id, user.code)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def sees_region(self, region_id: int | None) -> bool:
        """True when the region is one of this person's (admin: all)."""
        return self.region_ids is None or region_id in self.region_ids

    def require_role(self, *roles: str) -> None:
        """Forbidden unless this person has one of ``roles``."""
        if self.role not in roles:
            raise Forbidden(f"This needs the role {' or '.join(roles)}; you are signed in as {self.role}.")

    def require_region(self, region_id: int | None, what: str = "this") -> None:
        """Forbidden unless the region is one of this person's."""
        if not self.sees_region(region_id):
            raise Forbidden(f"You may not see {what}: it is outside your regions.")

    def may_see_health_of(self, worker: User) -> bool:
        """Health details: admin, or a supervisor of the worker's team region (issue 5)."""
        if self.role == "admin":
            return True
        return self.role == "supervisor" and worker.team is not None and self.sees_region(worker.team.region_id)


def hash_password(password: str) -> str:
    """A salted scrypt hash (werkzeug)."""
    return generate_password_hash(password, method="scrypt")


def check_password(password: str) -> None:
    """Invalid when a password is too weak to accept."""
    if len(password or "") < MIN_PASSWORD:
        raise Invalid(f"a password needs at least {MIN_PASSWORD} characters")


def create_user(username: str, role: str, password: str | None, *, display_name: str | None = None, code: str | None = None,
                team_code: str | None = None, region_codes: list[str] | tuple = (), by: int | None = None) -> User:
    """Make an account. Supervisors get regions; technicians a team. The caller commits."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64:
        raise Invalid("a username is 1 to 64 characters")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username!r} is taken", ReasonCode.INVALID_REQUEST)
    team = None
    if team_code:
        team = db.session.scalar(select(Team).where(Team.code == team_code))
        if team is None:
            raise NotFound(f"there is no team {team_code!r}")
    if role == "technician" and team is None:
        raise Invalid("a technician needs a team (--team)")
    regions = []
    for rc in region_codes:
        region = db.session.scalar(select(Region).where(Region.code == rc))
        if region is None:
            raise NotFound(f"there is no region {rc!r}")
        regions.append(region)
    if role == "supervisor" and not regions:
        raise Invalid("a supervisor needs at least one region (--region)")
    if password is not None:
        check_password(password)
    code = code or username.upper()
    if db.session.scalar(select(User.id).where(User.code == code)) is not None:
        raise Conflict(f"the worker code {code!r} is taken", ReasonCode.INVALID_REQUEST)
    user = User(username=username, code=code, display_name=display_name or username, role=role,
                password_hash=hash_password(password) if password else None, team_id=team.id if team else None, active=True)
    user.regions = regions
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", user_id=by, target=f"user:{user.id}", role=role, regions=list(region_codes))
    return user


def set_password(user: User, password: str, by: int | None = None) -> None:
    """Replace a password; every session of the user ends (see server.auth session ids)."""
    check_password(password)
    user.password_hash = hash_password(password)
    audit.record("user.password", user_id=by, target=f"user:{user.id}")


def verify_login(username: str, password: str) -> User:
    """The active user with this username and password; Unauthorized otherwise (same answer either way)."""
    user = db.session.scalar(select(User).where(User.username == (username or "").strip()))
    ok = check_password_hash(user.password_hash if user and user.password_hash else _DUMMY_HASH, password or "")
    if not ok or user is None or not user.password_hash or not user.active:
        raise Unauthorized("The username or password is not right, or the account is disabled.")
    return user


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str, days: int | None = 90) -> tuple[str, AccessToken]:
    """A new personal access token (shown once). Returns (token text, row). The caller commits."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Invalid("a token needs a name of 1 to 100 characters")
    if days is not None and not 1 <= days <= 366:
        raise Invalid("a token lives 1 to 366 days")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = AccessToken(user_id=user.id, name=name, token_hash=_hash(raw), prefix=raw[:10],
                      expires_at=utcnow() + timedelta(days=days) if days else None)
    db.session.add(row)
    db.session.flush()
    audit.record("token.create", user_id=user.id, target=f"token:{row.id}", name=name)
    return raw, row


def tokens_of(user_id: int) -> list[AccessToken]:
    """A user's tokens, newest first (hashes only)."""
    return list(db.session.scalars(select(AccessToken).where(AccessToken.user_id == user_id).order_by(AccessToken.id.desc())))


def revoke_token(scope: Scope, token_id: int) -> AccessToken:
    """Revoke one of one's own tokens (admin: anyone's)."""
    row = db.session.get(AccessToken, token_id)
    if row is None or (row.user_id != scope.user_id and not scope.is_admin):
        raise NotFound(f"there is no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record("token.revoke", user_id=scope.user_id, target=f"token:{row.id}")
    return row


def user_for_token(token: str | None, now: datetime | None = None) -> User:
    """The active user of a personal access token; Unauthorized otherwise."""
    if not token or not token.startswith(TOKEN_PREFIX):
        raise Unauthorized("This request needs a personal access token (Authorization: Bearer fwp_...).")
    row = db.session.scalar(select(AccessToken).where(AccessToken.token_hash == _hash(token)))
    now = now or utcnow()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("This access token is not known or was revoked.")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("This access token has expired; make a new one on the dashboard.")
    if not row.user.active:
        raise Unauthorized("The account of this token is disabled.")
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        row.last_used_at = now  # coarse, so reads do not write on every request
        db.session.commit()
    return row.user


def get_worker(scope: Scope, code: str) -> User:
    """A technician by worker code, if this person may see them."""
    worker = db.session.scalar(select(User).where(User.code == code))
    if worker is None or worker.role != "technician":
        raise NotFound(f"there is no technician {code!r}")
    if scope.role == "technician":
        if worker.id != scope.user_id:
            raise Forbidden("A technician may see only their own page.")
        return worker
    scope.require_role("supervisor", "admin")
    scope.require_region(worker.team.region_id if worker.team else None, f"technician {code}")
    return worker


def regions_for(scope: Scope) -> list[Region]:
    """The regions this person may look at, by code."""
    query = select(Region).order_by(Region.code)
    if scope.region_ids is not None:
        query = query.where(Region.id.in_(scope.region_ids or {-1}))
    return list(db.session.scalars(query))


def teams_for(scope: Scope) -> list[Team]:
    """Teams this person may assign or enrol for: their regions' teams, and every partner team (mutual aid)."""
    teams = db.session.scalars(select(Team).order_by(Team.code))
    return [t for t in teams if scope.sees_region(t.region_id) or t.organisation.is_partner]


def audit_entries(scope: Scope, action: str | None = None, limit: int = 300) -> list[dict]:
    """The latest audit entries with actor names (admins and auditors)."""
    scope.require_role("admin", "auditor")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    entries = list(db.session.scalars(query))
    names = {u.id: u.username for u in db.session.scalars(select(User).where(User.id.in_({e.actor_user_id for e in entries} - {None})))}
    return [{"at": e.at, "action": e.action, "actor": names.get(e.actor_user_id) or (f"device {e.actor_device_id}" if e.actor_device_id else "system"),
             "target": e.target, "details": e.details} for e in entries]
