"""Sync endpoints for devices: push, pull, status, limits."""
from __future__ import annotations

from flask import jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.errors import ReasonCode
from shared.protocol import (
    DeviceStatusSchema, LimitsSchema, PullQuerySchema, PullResponseSchema, PushRequestSchema, PushResponseSchema,
)

from ..errors import Invalid, LimitExceeded, Unauthorized
from ..services import feed, sync
from ..services.keys import keyring
from .common import current_device, current_identity, decode_body, limits, require_device
from .devices import device_settings

blp = Blueprint("sync", __name__, url_prefix="/api/v1/sync", description="Device sync: push envelopes, pull changes.")


@blp.before_request
def _before():
    decode_body()
    if request.endpoint == "sync.Pull":
        feed.without_transaction()  # before authentication's read, the pull's first statement
    if request.endpoint != "sync.Limits":
        require_device()


def _report(args: dict) -> sync.DeviceReport:
    return sync.DeviceReport(args.get("outbox_depth"), args.get("oldest_unsent_age_s"), args.get("app_version"), args.get("device_time"))


@blp.route("/push")
class Push(MethodView):
    @blp.arguments(PushRequestSchema)
    @blp.response(200, PushResponseSchema)
    @blp.doc(security=[{"deviceToken": []}])
    def post(self, args):
        """Push a batch of sealed envelopes; each item is judged alone.

        Answers one result per item, in order: accepted, duplicate, or rejected
        with a reason code (rejected items are kept in quarantine), and a receipt
        signed by the server listing every accepted revision and its hash.
        """
        device = current_device()
        if device.status == "revoked":
            sync.quarantine_revoked(device, args["items"])
            raise Unauthorized("This device was revoked; what it sent is kept for review.", ReasonCode.DEVICE_REVOKED)
        cap = limits().max_items_per_batch
        if len(args["items"]) > cap:
            raise LimitExceeded(f"A batch may hold at most max_items_per_batch={cap} items; this one has {len(args['items'])}.", ReasonCode.BATCH_TOO_LARGE)
        # Already in the documented shape: skip re-serialising hundreds of results (a hot path).
        return jsonify(sync.push(sync.Sender.of(device), args["items"], _report(args), keyring()))


@blp.route("/pull")
class Pull(MethodView):
    @blp.arguments(PullQuerySchema, location="query")
    @blp.response(200, PullResponseSchema)
    @blp.doc(security=[{"deviceToken": []}])
    def get(self, args):
        """Changes after a cursor that this device may see (own records, team's jobs, region's sites)."""
        lim = limits()
        size = args.get("limit") or lim.default_page_size
        if size > lim.max_page_size:
            raise Invalid(f"limit may be at most max_page_size={lim.max_page_size}.", ReasonCode.PAGE_TOO_LARGE)
        settings = device_settings()
        return jsonify({**feed.pull(current_identity(), args["cursor"], size, _report(args), keyring()), "settings": settings})


@blp.route("/status")
class Status(MethodView):
    @blp.response(200, DeviceStatusSchema)
    @blp.doc(security=[{"deviceToken": []}])
    def get(self):
        """What the server knows of this device's syncing."""
        return feed.device_status(current_device())


@blp.route("/limits")
class Limits(MethodView):
    @blp.response(200, LimitsSchema)
    def get(self):
        """Items per batch, bytes per body and page sizes this server accepts."""
        return limits().to_dict()
