"""Configuration: defaults here, then the instance folder's ``config.py``, then ``FIELDWATCH_*`` variables.

``create_app(config)`` applies a test dict last. Every key can be set from the
environment, e.g. ``FIELDWATCH_DATABASE_URL=postgresql+psycopg://...``.
"""
from __future__ import annotations

import os
import secrets

from . import json_codec

DEFAULTS = {
    # None: SQLite file in the instance folder (WAL mode).
    "DATABASE_URL": None,
    # None: <instance>/keys. Server keys live outside the database on purpose.
    "KEYS_DIR": None,
    "SECRET_KEY": None,
    "MAX_ITEMS_PER_BATCH": 500,
    "MAX_BODY_BYTES": 1_000_000,
    "MAX_PAGE_SIZE": 2000,
    "DEFAULT_PAGE_SIZE": 500,
    "CHECK_IN_INTERVAL_MINUTES": 60,
    # Every pull sends the response targets: each server process reads them at most this often.
    "DEVICE_TARGETS_SECONDS": 30,
    "REQUIRE_FIT_FOR_ACCEPT": True,
    "ENROL_CODE_TTL_HOURS": 24,
    "STALE_DEVICE_MINUTES": 120,
    "SESSION_MINUTES": 480,
    # Answers are compressed for clients that ask (phones on thin links): pull pages shrink several-fold.
    # zstd first (a third of gzip's CPU on both ends, smaller), gzip for clients without it.
    "COMPRESS_ALGORITHM": ["zstd", "gzip"],
    "COMPRESS_ZSTD_LEVEL": 1,
    "COMPRESS_MIMETYPES": ["application/json", "text/html", "text/css", "application/javascript"],
    "COMPRESS_MIN_SIZE": 1000,
    "COMPRESS_LEVEL": 1,  # gzip: most of the size win for a fraction of the CPU of level 6
    "API_TITLE": "fieldwatch",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "v1/openapi.json",
    # Swagger UI served from the swagger-ui-bundle package: these machines reach no CDN.
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": "/api/swagger-ui/",
}


def load(app, overrides: dict | None) -> None:
    """Fill ``app.config`` in order: defaults, instance file, environment, overrides."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("FIELDWATCH")
    if overrides:
        app.config.update(overrides)
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = "sqlite:///" + os.path.join(app.instance_path, "fieldwatch.db")
    app.config["DATABASE_URL"] = _driver_url(app.config["DATABASE_URL"])
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    # hide_parameters: a database error's message (logged when unhandled) never carries the statement's
    # values, which may be health data.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {**json_codec.engine_options(), "hide_parameters": True})
    if not app.config["KEYS_DIR"]:
        app.config["KEYS_DIR"] = os.path.join(app.instance_path, "keys")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]


def _driver_url(url: str) -> str:
    # psycopg 3 is the one PostgreSQL driver we install; plain postgresql:// means it.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _instance_secret(instance_path: str) -> str:
    """A per-install session secret, made once and kept in the instance folder (never in the repo)."""
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip()
