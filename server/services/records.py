"""How a record body is kept: health fields apart and encrypted, query columns derived."""
from __future__ import annotations

import json
from datetime import datetime

from shared.schemas import HEALTH_FIELDS, TIME_FIELD

from .keys import KeyRing



def split_health(kind: str, body: dict, ring: KeyRing) -> tuple[dict, bytes | None, str | None]:
    """(body without health fields, encrypted health fields, data key id)."""
    if kind != "safety_check":
        return body, None, None
    health = {k: body[k] for k in HEALTH_FIELDS if k in body}
    rest = {k: v for k, v in body.items() if k not in HEALTH_FIELDS}
    key_id, blob = ring.encrypt_health(json.dumps(health, separators=(",", ":")).encode())
    return rest, blob, key_id


def join_health(body: dict, health: bytes | None, key_id: str | None, ring: KeyRing) -> dict:
    """The whole body again; only for callers allowed to see health data (and who log it)."""
    if health is None:
        return body
    return {**body, **json.loads(ring.decrypt_health(key_id, health))}


def occurred_at(kind: str, body: dict) -> datetime | None:
    """The time the record is about (taken, checked in, observed, reported)."""
    value = body.get(TIME_FIELD.get(kind, ""))
    return datetime.fromisoformat(value) if value else None


def status_of(kind: str, body: dict) -> str | None:
    """The one word the dashboard filters on."""
    if kind == "safety_check":
        return "fit" if body.get("fit_for_duty") else "unfit"
    if kind == "site_status":
        return body.get("state")
    return body.get("status")
