"""Enrolling phones: one-time expiring codes, device tokens (kept hashed), revocation."""
from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from shared import crypto
from shared.errors import ReasonCode

from ..errors import Conflict, DomainError, Invalid, NotFound, Unauthorized
from ..extensions import db
from ..models import Device, EnrolCode, Team, User, utcnow
from . import audit

_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L: read aloud, typed with gloves
TOKEN_PREFIX = "fwd_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normalise_code(code: str) -> str:
    """Codes are typed by people: ignore case, spaces and dashes."""
    return re.sub(r"[\s-]", "", code).upper()


def parse_ttl(text: str) -> timedelta:
    """'24h', '30m', '2d' -> timedelta; Invalid for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text or "")
    if not match or int(match.group(1)) == 0:
        raise Invalid(f"TTL {text!r} is not valid; use a number and m, h or d, e.g. 24h")
    minutes = int(match.group(1)) * {"m": 1, "h": 60, "d": 1440}[match.group(2)]
    if minutes > 30 * 1440:
        raise Invalid("an enrolment code may live at most 30 days")
    return timedelta(minutes=minutes)


def create_code(team_code: str, ttl: timedelta, worker_code: str | None = None, created_by: User | None = None) -> tuple[str, EnrolCode]:
    """Make a one-time code for a team (and optionally one worker). Returns (code text, row)."""
    team = db.session.scalar(select(Team).where(Team.code == team_code))
    if team is None:
        raise NotFound(f"there is no team {team_code!r}")
    worker = None
    if worker_code:
        worker = db.session.scalar(select(User).where(User.code == worker_code))
        if worker is None or worker.team_id != team.id:
            raise Invalid(f"worker {worker_code!r} is not in team {team_code!r}")
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    row = EnrolCode(
        code_hash=_hash(raw), team_id=team.id, user_id=worker.id if worker else None,
        created_by_id=created_by.id if created_by else None, expires_at=utcnow() + ttl,
    )
    db.session.add(row)
    db.session.flush()
    audit.record("enrol_code.create", user_id=created_by.id if created_by else None, target=f"team:{team.code}",
                 worker=worker_code, expires_at=row.expires_at.isoformat())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}", row


def enrol(code: str, public_key: str, label: str, app_version: str) -> tuple[Device, str]:
    """Use a code once: register the device's Ed25519 key, return (device, bearer token)."""
    try:
        if len(crypto.b64d(public_key)) != 32:
            raise ValueError
    except ValueError:
        raise Invalid("public_key must be a base64 Ed25519 public key (32 bytes)") from None
    row = db.session.scalar(select(EnrolCode).where(EnrolCode.code_hash == _hash(normalise_code(code))))
    if row is None:
        raise DomainError("This enrolment code is not known; check it or ask your supervisor for a new one.", ReasonCode.ENROL_CODE_INVALID)
    now = utcnow()
    if row.used_at is not None:
        raise Conflict("This enrolment code was already used; ask your supervisor for a new one.", ReasonCode.ENROL_CODE_USED)
    if row.expires_at <= now:
        raise DomainError("This enrolment code has expired; ask your supervisor for a new one.", ReasonCode.ENROL_CODE_EXPIRED)
    device_id = str(uuid.uuid4())
    # The conditional update makes "works once" hold even for two phones racing with one code.
    taken = db.session.execute(
        update(EnrolCode).where(EnrolCode.id == row.id, EnrolCode.used_at.is_(None)).values(used_at=now, device_id=device_id)
    ).rowcount
    if taken != 1:
        raise Conflict("This enrolment code was already used; ask your supervisor for a new one.", ReasonCode.ENROL_CODE_USED)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device = Device(
        id=device_id, label=label, public_key=public_key, token_hash=_hash(token), user_id=row.user_id,
        team_id=row.team_id, app_version=app_version, last_contact_at=now,
    )
    db.session.add(device)
    audit.record("device.enrol", device_id=device_id, target=f"team:{row.team.code}", label=label)
    db.session.flush()
    return device, token


@dataclass(frozen=True)
class DeviceIdentity:
    """Who a device token belongs to: what every device request needs, read without ORM objects."""

    id: str
    status: str
    team_id: int | None
    region_id: int | None  # its team's
    worker: str | None  # its user's worker code

    def device(self) -> Device:
        """The device row itself, for handlers that need more than this."""
        return db.session.get(Device, self.id)


def authenticate(token: str | None, allow_revoked: bool = False) -> DeviceIdentity:
    """The device a bearer token belongs to; Unauthorized (or device_revoked) otherwise.

    ``allow_revoked`` lets a revoked device through so that what it still
    pushes can be quarantined before it is told 401 device_revoked.
    One Core statement: it runs before every device request, every pull among them.
    """
    if not token:
        raise Unauthorized("This request needs a device token (Authorization: Bearer ...).")
    row = db.session.execute(
        select(Device.id, Device.status, Device.team_id, Team.region_id, User.code)
        .outerjoin(User, User.id == Device.user_id).outerjoin(Team, Team.id == Device.team_id)
        .where(Device.token_hash == _hash(token))
    ).first()
    if row is None:
        raise Unauthorized("This device token is not known; enrol the device again.")
    identity = DeviceIdentity(*row)
    if identity.status == "revoked" and not allow_revoked:
        raise Unauthorized("This device was revoked; ask your supervisor to enrol it again.", ReasonCode.DEVICE_REVOKED)
    return identity


def revoke(device_id: str, by: User | None = None) -> Device:
    """Revoke a device: its token stops working; what it sends later is quarantined."""
    device = db.session.get(Device, device_id)
    if device is None:
        raise NotFound(f"there is no device {device_id!r}")
    if device.status != "revoked":
        device.status = "revoked"
        device.revoked_at = utcnow()
        audit.record("device.revoke", user_id=by.id if by else None, target=f"device:{device_id}")
    return device


def device_regions(device: Device) -> list[str]:
    """Region codes a device sees sites of (its team's region)."""
    return [device.team.region.code] if device.team else []


def expires_in(row: EnrolCode, now: datetime | None = None) -> timedelta:
    """Time left on a code."""
    return row.expires_at - (now or utcnow())
