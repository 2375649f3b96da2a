"""Check-in: "I am OK", "I need help" or SOS from a technician at work."""
from __future__ import annotations

from marshmallow import fields

from .base import ID, PositionSchema, RecordSchema, one_of, text, when

CHECK_IN_STATUSES = ("ok", "need_help", "sos")


class CheckInSchema(RecordSchema):
    """A check-in; SOS and need-help travel first."""

    worker_id = fields.String(required=True, validate=ID)
    at = when(required=True)
    site_code = fields.String(load_default=None, allow_none=True, validate=ID)
    status = one_of(CHECK_IN_STATUSES, "status", required=True)
    # Optional: a phone inside a shelter often has no fix; the check-in matters more.
    position = fields.Nested(PositionSchema, load_default=None, allow_none=True)
    notes = text(500, load_default="")
