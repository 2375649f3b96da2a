"""The JSON API under /api/v1 (flask-smorest; OpenAPI at /api/v1/openapi.json, docs at /api/docs)."""
from __future__ import annotations

from ..extensions import api
from . import devices, sync

BLUEPRINTS = [devices.blp, sync.blp]


def register(app) -> None:
    """Bind the Api and its blueprints."""
    api.init_app(app)
    api.spec.components.security_scheme("deviceToken", {"type": "http", "scheme": "bearer", "description": "a device token from enrolment"})
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
