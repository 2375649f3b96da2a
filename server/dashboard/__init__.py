"""The supervisors' dashboard: server-rendered pages under /dashboard (issue 5).

Views are thin: they read the request, call one service with the person's
:class:`~server.services.people.Scope`, and render. Every POST carries a
Flask-WTF CSRF token (checked for the whole blueprint in ``_before``).
"""
from __future__ import annotations

import click
from flask import Blueprint
from flask.cli import with_appcontext

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="../templates", static_folder="../static",
               static_url_path="/static")

DEFAULTS = {
    "DASHBOARD_TIMEZONE": "Asia/Ho_Chi_Minh",
    "DASHBOARD_POLL_SECONDS": 15,
    "HEALTH_CHECK_LEAD_MINUTES": 120,
    "ALARM_WINDOW_HOURS": 24,
    "RESPONSE_WINDOW_DAYS": 7,
    # alerts and webhooks (server/services/alerts.py, webhooks.py); 0 seconds: no timer thread (tests)
    "ALERTS_TIMER_SECONDS": 60,
    "ALERT_GRACE_MINUTES": 10,
    "WEBHOOK_MAX_ATTEMPTS": 6,
    "WEBHOOK_BACKOFF_SECONDS": 30,
    "WEBHOOK_TIMEOUT_SECONDS": 5,
}


def register(app) -> None:
    """Mount the dashboard, sign-in and the ``user`` CLI on an app (called by create_app)."""
    from flask_wtf.csrf import generate_csrf

    from .. import auth
    from . import admin_views, cli, export_views, filters, views  # noqa: F401  (views register routes on bp)

    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    auth.init_app(app)
    app.register_blueprint(bp)
    app.jinja_env.globals["csrf_token"] = generate_csrf
    filters.register(app)
    app.cli.add_command(cli.user)
    app.cli.add_command(cli.token)
    app.cli.add_command(alerts_cli)
    _document_token_auth()
    _start_alert_timer(app)


def _start_alert_timer(app) -> None:
    """The timer that raises alerts and sends webhooks.

    Not started with ALERTS_TIMER_SECONDS = 0, under TESTING (tests call
    ``run_once`` themselves), nor in CLI commands other than ``run``.
    Several processes each run one; alerts and delivery claims are idempotent.
    """
    import os
    import sys

    seconds = float(app.config["ALERTS_TIMER_SECONDS"] or 0)
    if seconds <= 0 or app.testing:
        return
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true":
        words = [a for a in sys.argv[1:] if not a.startswith("-")]
        if not words or words[0] != "run":
            return  # `fieldwatch db upgrade`, `alerts run-once`, ...: no background sends from a one-off command
    from ..services.alerts import AlertTimer

    timer = AlertTimer(app, seconds)
    app.extensions["fieldwatch_alert_timer"] = timer
    timer.start()


@click.group("alerts")
def alerts_cli():
    """Alerts and their webhooks."""


@alerts_cli.command("run-once")
@with_appcontext
def alerts_run_once():
    """Raise the alerts due now and send the webhook deliveries due now (what the timer does each turn)."""
    from ..services.alerts import run_once

    counts = run_once()
    click.echo(f"raised {counts['raised']} alerts; webhook attempts {counts['attempted']}: delivered {counts['delivered']}, "
               f"to retry {counts['failed']}, given up {counts['gave_up']}")


def _document_token_auth() -> None:
    # The API blueprints are bound before the dashboard (create_app); name the person-token scheme they use.
    from ..extensions import api

    if getattr(api, "spec", None) is not None and "personToken" not in api.spec.components.security_schemes:
        api.spec.components.security_scheme(
            "personToken", {"type": "http", "scheme": "bearer", "description": "a personal access token (fwp_...) of a person"})
