"""The fieldwatch server: a Flask app factory."""
from __future__ import annotations

import logging
import os

from flask import Flask, redirect
from sqlalchemy.orm import configure_mappers

from . import config, errors, json_codec, request_checks
from .extensions import compress, db, migrate


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure an app: config -> extensions -> keys -> blueprints -> errors."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = json_codec.OrjsonProvider(app)
    config.load(app, test_config)
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))
    request_checks.register(app)
    db.init_app(app)
    compress.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    from .services.keys import init_keys

    init_keys(app.config["KEYS_DIR"])  # first start makes the keys; `fieldwatch keys init` does the same
    from . import api, dashboard

    api.register(app)
    dashboard.register(app)

    @app.get("/")
    def index():
        return redirect("/dashboard/")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    errors.register(app)
    # Map the models now, not on the first request: a worker's first pull took 90 ms instead of 35.
    configure_mappers()
    return app
