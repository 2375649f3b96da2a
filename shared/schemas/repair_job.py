"""Repair job (fault): a state machine from report to restore, merged field by field.

States, in the only order they may move::

    reported -> assigned -> acknowledged -> en_route -> on_site -> restored -> closed
        \\___________\\______________\\____________\\_________\\--> cancelled

A revision carries the whole job as its device saw it plus ``changed``: the
fields that revision set. See :mod:`shared.merge` for how revisions combine.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from .base import ID, BaseSchema, RecordSchema, one_of, text, when

JOB_STATES = ("reported", "assigned", "acknowledged", "en_route", "on_site", "restored", "closed", "cancelled")
# Rank used by the merge: status only moves up. Cancelled outranks everything but closed.
STATE_RANK = {s: i for i, s in enumerate(("reported", "assigned", "acknowledged", "en_route", "on_site", "restored", "cancelled", "closed"))}
TRANSITIONS = {
    "reported": ("assigned", "acknowledged", "cancelled"),
    "assigned": ("acknowledged", "cancelled"),
    "acknowledged": ("en_route", "cancelled"),
    "en_route": ("on_site", "cancelled"),
    "on_site": ("restored",),
    "restored": ("closed",),
    "closed": (),
    "cancelled": (),
}
FAULT_TYPES = ("power", "transmission", "radio", "fibre_cut", "equipment", "environment", "vandalism", "other")
PRIORITIES = ("critical", "high", "medium", "low")
LWW_FIELDS = ("site_code", "fault_type", "priority", "title", "actions", "parts", "team_id", "team_operator", "reported_at")


def next_states(status: str) -> tuple[str, ...]:
    """The states a job in ``status`` may move to next."""
    return TRANSITIONS.get(status, ())


class PartSchema(BaseSchema):
    """A part used in a repair."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    quantity = fields.Integer(required=True, validate=validate.Range(min=1, max=10000, error="quantity must be at least 1"))


class NoteSchema(BaseSchema):
    """A note on a job; notes are appended, never overwritten."""

    id = fields.String(required=True, validate=ID)
    at = when(required=True)
    author = fields.String(required=True, validate=ID)
    text = fields.String(required=True, validate=validate.Length(min=1, max=2000, error="a note must be 1 to 2000 characters"))


class RepairJobSchema(RecordSchema):
    """A fault at a site and the work on it."""

    site_code = fields.String(required=True, validate=ID)
    fault_type = one_of(FAULT_TYPES, "fault type", required=True)
    priority = one_of(PRIORITIES, "priority", required=True)
    title = text(200, load_default="")
    status = one_of(JOB_STATES, "status", required=True)
    steps = fields.Dict(keys=one_of(JOB_STATES, "step"), values=when(), required=True)
    reported_at = when(required=True)
    actions = fields.List(text(500), load_default=list)
    parts = fields.List(fields.Nested(PartSchema), load_default=list)
    notes = fields.List(fields.Nested(NoteSchema), load_default=list)
    team_id = fields.String(load_default=None, allow_none=True, validate=ID)
    team_operator = fields.String(load_default=None, allow_none=True, validate=ID)
    changed = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _status_has_time(self, data, **kwargs):
        if data.get("status") and data["status"] not in data.get("steps", {}):
            raise ValidationError(f"the time of step {data['status']!r} is missing", "steps")
