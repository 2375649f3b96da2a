"""The supervisors' dashboard: server-rendered pages under /dashboard (issue 5).

Views are thin: they read the request, call one service with the person's
:class:`~server.services.people.Scope`, and render. Every POST carries a
Flask-WTF CSRF token (checked for the whole blueprint in ``_before``).
"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="../templates", static_folder="../static",
               static_url_path="/static")

DEFAULTS = {
    "DASHBOARD_TIMEZONE": "Asia/Ho_Chi_Minh",
    "DASHBOARD_POLL_SECONDS": 15,
    "HEALTH_CHECK_LEAD_MINUTES": 120,
    "ALARM_WINDOW_HOURS": 24,
    "RESPONSE_WINDOW_DAYS": 7,
}


def register(app) -> None:
    """Mount the dashboard, sign-in and the ``user`` CLI on an app (called by create_app)."""
    from flask_wtf.csrf import generate_csrf

    from .. import auth
    from . import cli, filters, views  # noqa: F401  (views registers routes on bp)

    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    auth.init_app(app)
    app.register_blueprint(bp)
    app.jinja_env.globals["csrf_token"] = generate_csrf
    filters.register(app)
    app.cli.add_command(cli.user)
    app.cli.add_command(cli.token)
    _document_token_auth()


def _document_token_auth() -> None:
    # The API blueprints are bound before the dashboard (create_app); name the person-token scheme they use.
    from ..extensions import api

    if getattr(api, "spec", None) is not None and "personToken" not in api.spec.components.security_schemes:
        api.spec.components.security_scheme(
            "personToken", {"type": "http", "scheme": "bearer", "description": "a personal access token (fwp_...) of a person"})
