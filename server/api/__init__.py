"""The JSON API under /api/v1 (flask-smorest; OpenAPI at /api/v1/openapi.json, docs at /api/docs)."""
from __future__ import annotations

from ..extensions import api
from . import dashboard_api, devices, sync

BLUEPRINTS = [devices.blp, sync.blp, dashboard_api.blp]


def register(app) -> None:
    """Bind the Api and its blueprints; serve Swagger UI's files locally."""
    import swagger_ui_bundle
    from flask import send_from_directory

    @app.get("/api/swagger-ui/<path:filename>")
    def swagger_ui_files(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    api.init_app(app)
    api.spec.components.security_scheme("deviceToken", {"type": "http", "scheme": "bearer", "description": "a device token from enrolment"})
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
