"""Enrolment, server keys, and the reference data a device needs."""
from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from shared.protocol import EnrolRequestSchema, EnrolResponseSchema, KeysResponseSchema
from shared.schemas.base import BaseSchema

from ..extensions import db
from ..services import enrolment, sites
from ..services.jobs import device_targets
from ..services.keys import keyring
from .common import current_device, decode_body, limits, require_device

blp = Blueprint("devices", __name__, url_prefix="/api/v1", description="Enrolment, server keys and device reference data.")


@blp.before_request
def _before():
    decode_body()
    if request.endpoint == "devices.Sites":
        require_device()


class SiteSchema(BaseSchema):
    code = fields.String()
    name = fields.String()
    region_code = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    criticality = fields.String()


class SitesSchema(BaseSchema):
    sites = fields.List(fields.Nested(SiteSchema))


def device_settings() -> dict:
    """Rules the server sets for phones, and the response targets (minutes) per site criticality."""
    c = current_app.config
    return {
        "require_fit_for_accept": bool(c["REQUIRE_FIT_FOR_ACCEPT"]),
        "check_in_interval_minutes": int(c["CHECK_IN_INTERVAL_MINUTES"]),
        "response_targets": {crit: {"acknowledge_minutes": a, "arrive_minutes": b, "restore_minutes": r}
                             for crit, (a, b, r) in device_targets().items()},
    }


@blp.route("/devices/enrol")
class Enrol(MethodView):
    @blp.arguments(EnrolRequestSchema)
    @blp.response(201, EnrolResponseSchema)
    def post(self, args):
        """Enrol a phone with a one-time code; returns its id, token (shown once) and the server keys."""
        device, token = enrolment.enrol(args["code"], args["public_key"], args["label"], args["app_version"])
        answer = {
            "device_id": device.id, "token": token, "worker_id": device.user.code if device.user else None,
            "team_id": device.team.code if device.team else None, "region_codes": enrolment.device_regions(device),
            "keys": keyring().public_keys(), "limits": limits().to_dict(), "settings": device_settings(),
        }
        db.session.commit()
        return answer


@blp.route("/keys")
class Keys(MethodView):
    @blp.response(200, KeysResponseSchema)
    def get(self):
        """The server's public keys (with rotation endorsements) and the export-signing public key."""
        ring = keyring()
        return {"keys": ring.public_keys(), "export_public": ring.export_public}


@blp.route("/sites")
class Sites(MethodView):
    @blp.response(200, SitesSchema)
    @blp.doc(security=[{"deviceToken": []}])
    def get(self):
        """The sites of this device's region."""
        return {"sites": sites.for_device(current_device())}
