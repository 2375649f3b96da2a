"""Site status: one observation of a site's state; the newest (by HLC) is current."""
from __future__ import annotations

from marshmallow import fields

from .base import ID, RecordSchema, one_of, text, when

SITE_STATES = ("up", "degraded", "down")
POWER_SOURCES = ("grid", "generator", "battery", "none")
ACCESS = ("open", "restricted", "quarantined")


class SiteStatusSchema(RecordSchema):
    """An observation of a site."""

    site_code = fields.String(required=True, validate=ID)
    observed_at = when(required=True)
    state = one_of(SITE_STATES, "state", required=True)
    power_source = one_of(POWER_SOURCES, "power source", required=True)
    backup_transmission = fields.Boolean(required=True)
    mobile_bts_deployed = fields.Boolean(required=True)
    access = one_of(ACCESS, "access", required=True)
    cause = text(200, load_default="")
    notes = text(1000, load_default="")
    reported_by = fields.String(load_default=None, allow_none=True, validate=ID)
