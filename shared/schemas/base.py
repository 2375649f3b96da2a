"""Base schema and common fields for records: unknown fields are refused, times carry a zone."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

ID = validate.Length(min=1, max=64, error="must be 1 to 64 characters")
NUL = "\x00"
NUL_MESSAGE = "must not contain the NUL character (\\u0000)"


class BaseSchema(Schema):
    """Every wire schema refuses unknown fields, so a typo is an error, not lost data.

    It also refuses text holding the NUL character, in any field however deep: no field has a use for
    it, and PostgreSQL cannot store it (the database would fail the whole request).
    """

    # Fields whose contents are judged elsewhere, one item at a time (a push's envelopes: one bad
    # item must not stop the others).
    NUL_CHECKED_ELSEWHERE: tuple[str, ...] = ()

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_nul(self, data, **kwargs):
        if isinstance(data, Mapping):
            bad = [name for name, value in data.items()
                   if has_nul(name) or (name not in self.NUL_CHECKED_ELSEWHERE and has_nul(value))]
            if bad:
                raise ValidationError({str(name).replace(NUL, "\\u0000"): [NUL_MESSAGE] for name in bad})
        return data


def has_nul(value: Any) -> bool:
    """True when ``value`` is, or holds at any depth, text with the NUL character."""
    kind = type(value)
    if kind is str:
        return NUL in value
    if kind in _PLAIN:  # most of a record's values: answered without the slower isinstance checks
        return False
    if kind is dict or isinstance(value, Mapping):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    return isinstance(value, str) and NUL in value  # a str subclass


_PLAIN = frozenset({bool, int, float, type(None)})


class RecordSchema(BaseSchema):
    """A record body. ``VERSION`` is the schema version this code writes and reads."""

    VERSION = 1
    schema_version = fields.Integer(
        required=True,
        validate=validate.Equal(1, error="record schema version {input} is not supported; update the app"),
    )


class PositionSchema(BaseSchema):
    """A GPS fix."""

    lat = fields.Float(required=True, validate=validate.Range(-90, 90, error="latitude must be between -90 and 90"))
    lon = fields.Float(required=True, validate=validate.Range(-180, 180, error="longitude must be between -180 and 180"))
    accuracy_m = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))


def when(**kwargs):
    """A time with its zone, ISO 8601 (e.g. 2026-11-26T05:30:00+07:00)."""
    return fields.AwareDateTime(format="iso", error_messages={"invalid": "must be a time like 2026-11-26T05:30:00+07:00", "invalid_awareness": "must include a time zone, e.g. +07:00"}, **kwargs)


def text(max_len: int, **kwargs):
    """Free text with a length limit a person can act on."""
    return fields.String(validate=validate.Length(max=max_len, error=f"must be at most {max_len} characters"), **kwargs)


def one_of(choices, what: str, **kwargs):
    """A string from a fixed list, with an error that lists the choices."""
    return fields.String(validate=validate.OneOf(choices, error=f"{what} must be one of: {', '.join(choices)}"), **kwargs)
