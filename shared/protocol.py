"""The sync protocol: paths, limits and the request / response schemas of /api/v1.

Push: ``POST /api/v1/sync/push`` with a batch of envelopes. Each item is judged
alone (accepted / duplicate / rejected with a reason code); the answer carries a
receipt signed by the server listing each accepted revision and its hash.

Pull: ``GET /api/v1/sync/pull?cursor=C&limit=N`` returns the changes the device
may see with a sequence number greater than ``C``, in order, and
``next_cursor``; ``has_more`` says whether to ask again. A device saves
``next_cursor`` in the same local transaction as the page it covers.

Every push and pull carries the device's report (outbox depth, age of the
oldest unsent record, app version, clock) for supervisors.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from marshmallow import fields, validate

from .schemas.base import BaseSchema

API_PREFIX = "/api/v1"
ENROL_PATH = API_PREFIX + "/devices/enrol"
PUSH_PATH = API_PREFIX + "/sync/push"
PULL_PATH = API_PREFIX + "/sync/pull"
STATUS_PATH = API_PREFIX + "/sync/status"
KEYS_PATH = API_PREFIX + "/keys"
LIMITS_PATH = API_PREFIX + "/sync/limits"
SITES_PATH = API_PREFIX + "/sites"

# Bounds of the integers a device sends: what the server's columns hold (a larger number would fail the
# database, not the request).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

ITEM_ACCEPTED = "accepted"
ITEM_DUPLICATE = "duplicate"
ITEM_REJECTED = "rejected"


@dataclass(frozen=True)
class Limits:
    """What the server accepts; published at LIMITS_PATH and in enrolment answers."""

    max_items_per_batch: int = 500
    max_body_bytes: int = 1_000_000
    max_page_size: int = 2000
    default_page_size: int = 500

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return asdict(self)


class LimitsSchema(BaseSchema):
    max_items_per_batch = fields.Integer(required=True)
    max_body_bytes = fields.Integer(required=True)
    max_page_size = fields.Integer(required=True)
    default_page_size = fields.Integer(required=True)


class DeviceReportSchema(BaseSchema):
    """What a device tells the server about itself on every sync."""

    outbox_depth = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=INT32_MAX))
    oldest_unsent_age_s = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=INT32_MAX))
    app_version = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    device_time = fields.AwareDateTime(format="iso", load_default=None, allow_none=True)


class PushRequestSchema(DeviceReportSchema):
    """A batch of envelopes. Items are checked one by one by the server, not here."""

    NUL_CHECKED_ELSEWHERE = ("items",)
    items = fields.List(fields.Raw(allow_none=True), required=True)  # a null item is judged (and quarantined) like any bad one


class ItemResultSchema(BaseSchema):
    rid = fields.String(allow_none=True)
    rev = fields.String(allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf([ITEM_ACCEPTED, ITEM_DUPLICATE, ITEM_REJECTED]))
    reason = fields.String(load_default=None, allow_none=True)
    message = fields.String(load_default=None, allow_none=True)


class ReceiptItemSchema(BaseSchema):
    rid = fields.String(required=True)
    rev = fields.String(required=True)
    hash = fields.String(required=True)


class ReceiptSchema(BaseSchema):
    """Signed by the server (shared.signing); the device keeps it as proof."""

    device_id = fields.String(required=True)
    issued_at = fields.String(required=True)
    kid = fields.String(required=True)
    items = fields.List(fields.Nested(ReceiptItemSchema), required=True)
    sig = fields.String(required=True)


class PushResponseSchema(BaseSchema):
    results = fields.List(fields.Nested(ItemResultSchema), required=True)
    receipt = fields.Nested(ReceiptSchema, required=True)
    server_time = fields.String(required=True)


class PullQuerySchema(DeviceReportSchema):
    cursor = fields.Integer(load_default=0, validate=validate.Range(min=0, max=INT64_MAX))
    limit = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=INT32_MAX))


class ChangeSchema(BaseSchema):
    seq = fields.Integer(required=True)
    kind = fields.String(required=True)
    rid = fields.String(required=True)
    rev = fields.String(required=True)
    body = fields.Dict(required=True)


class PullResponseSchema(BaseSchema):
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    next_cursor = fields.Integer(required=True)
    has_more = fields.Boolean(required=True)
    server_time = fields.String(required=True)
    # The rules the server sets for phones (as at enrolment), so a change reaches enrolled phones.
    settings = fields.Dict(load_default=None, allow_none=True)


class ServerKeySchema(BaseSchema):
    """A server key pair's public halves. ``endorsement`` is by the previous signing key."""

    kid = fields.String(required=True)
    box_public = fields.String(required=True)
    sign_public = fields.String(required=True)
    created_at = fields.String(required=True)
    current = fields.Boolean(required=True)
    endorsement = fields.String(load_default=None, allow_none=True)


class KeysResponseSchema(BaseSchema):
    keys = fields.List(fields.Nested(ServerKeySchema), required=True)
    export_public = fields.String(required=True)


class EnrolRequestSchema(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(min=4, max=64))
    public_key = fields.String(required=True, validate=validate.Length(min=40, max=64))
    label = fields.String(required=True, validate=validate.Length(min=1, max=100))
    app_version = fields.String(required=True, validate=validate.Length(min=1, max=40))


class EnrolResponseSchema(BaseSchema):
    device_id = fields.String(required=True)
    token = fields.String(required=True)
    worker_id = fields.String(allow_none=True)
    team_id = fields.String(allow_none=True)
    region_codes = fields.List(fields.String(), required=True)
    keys = fields.List(fields.Nested(ServerKeySchema), required=True)
    limits = fields.Nested(LimitsSchema, required=True)
    settings = fields.Dict(required=True)


class DeviceStatusSchema(BaseSchema):
    device_id = fields.String(required=True)
    label = fields.String(required=True)
    status = fields.String(required=True)
    last_push_at = fields.String(allow_none=True)
    last_pull_at = fields.String(allow_none=True)
    accepted = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    server_time = fields.String(required=True)
