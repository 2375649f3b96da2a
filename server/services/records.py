"""How a record body is kept: health fields apart and encrypted, query columns derived."""
from __future__ import annotations

import binascii
import json
from datetime import datetime

import orjson

from shared.schemas import HEALTH_FIELDS, TIME_FIELD

from .keys import KeyRing



def split_health(kind: str, body: dict, ring: KeyRing) -> tuple[dict, bytes | None, str | None]:
    """(body without health fields, encrypted health fields, data key id)."""
    fields = health_fields_of(kind)
    if not fields:
        return body, None, None
    health = {k: body[k] for k in fields if k in body}
    rest = {k: v for k, v in body.items() if k not in fields}
    key_id, blob = ring.encrypt_health(json.dumps(health, separators=(",", ":")).encode())
    return rest, blob, key_id


# The fields kept apart and encrypted, per kind: what an export withholds from roles that may not see them.
HEALTH_FIELDS_BY_KIND = {"safety_check": HEALTH_FIELDS}


def health_fields_of(kind: str) -> frozenset:
    """The fields :func:`split_health` keeps apart (HEALTH_FIELDS_BY_KIND)."""
    return HEALTH_FIELDS_BY_KIND.get(kind, frozenset())


def disclosure_proof(kind: str, salts: dict, digests: dict) -> str:
    """What an export needs to disclose a device-signed revision, made once when the revision is stored.

    Three canonical JSON objects, one per line: the salts of the stored body's fields, the salts of the
    health fields, the digests of the health fields (salts as base64, shared.envelope.field_salts; digests
    as the device signed them). An export embeds them as they are, so it neither re-derives salts nor
    decrypts health data to withhold it. The salts reveal nothing the revision's ``secret`` beside them
    does not.
    """
    health = health_fields_of(kind)
    b64 = binascii.b2a_base64
    shown = {k: b64(v, newline=False).decode("ascii") for k, v in salts.items() if k not in health}
    kept = {k: b64(v, newline=False).decode("ascii") for k, v in salts.items() if k in health}
    return b"\n".join(orjson.dumps(part, option=orjson.OPT_SORT_KEYS)
                       for part in (shown, kept, {k: digests[k] for k in kept})).decode("ascii")


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
