"""Base schema and common fields for records: unknown fields are refused, times carry a zone."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

ID = validate.Length(min=1, max=64, error="must be 1 to 64 characters")


class BaseSchema(Schema):
    """Every wire schema refuses unknown fields, so a typo is an error, not lost data."""

    class Meta:
        unknown = RAISE


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
