"""The server's error tree, and the one place it maps to HTTP.

::

    DomainError                 (reason, message, details)
    +-- Invalid          422    the input breaks a rule (message names the field)
    +-- Unauthorized     401    no or unknown credentials; device_revoked
    +-- Forbidden        403    the caller may not do this
    +-- NotFound         404
    +-- Conflict         409    e.g. an enrolment code already used
    +-- LimitExceeded    413    a stated limit (the message names it)

Every error under ``/api`` answers JSON ``{code, status, message, reason}``
(plus ``errors`` for field errors): flask-smorest's shape with our stable
reason code from :class:`shared.errors.ReasonCode`. Pages get a short HTML
page with the same sentence. A client's mistake is never a 500.
"""
from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Response, jsonify, render_template_string, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from shared.errors import ReasonCode

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A failure a caller can act on."""

    status = 400
    default_reason = ReasonCode.INVALID_REQUEST

    def __init__(self, message: str, reason: ReasonCode | None = None, details: dict | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.reason = ReasonCode(reason or self.default_reason)
        self.details = details or {}
        if status is not None:
            self.status = status


class Invalid(DomainError):
    status = 422
    default_reason = ReasonCode.INVALID_REQUEST


class Unauthorized(DomainError):
    status = 401
    default_reason = ReasonCode.UNAUTHORIZED


class Forbidden(DomainError):
    status = 403
    default_reason = ReasonCode.FORBIDDEN


class NotFound(DomainError):
    status = 404
    default_reason = ReasonCode.NOT_FOUND


class Conflict(DomainError):
    status = 409
    default_reason = ReasonCode.REVISION_CONFLICT


class LimitExceeded(DomainError):
    status = 413
    default_reason = ReasonCode.BODY_TOO_LARGE


_HTTP_REASONS = {
    400: ReasonCode.MALFORMED_JSON,
    401: ReasonCode.UNAUTHORIZED,
    403: ReasonCode.FORBIDDEN,
    404: ReasonCode.NOT_FOUND,
    405: ReasonCode.INVALID_REQUEST,
    413: ReasonCode.BODY_TOO_LARGE,
    415: ReasonCode.UNSUPPORTED_MEDIA_TYPE,
    422: ReasonCode.INVALID_REQUEST,
    429: ReasonCode.RATE_LIMITED,
}

_PAGE = """<!doctype html><title>{{ status }} {{ phrase }}</title>
<main style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>{{ status }} {{ phrase }}</h1>
<p>{{ message }}</p><p><a href="/dashboard/">Back to the dashboard</a></p></main>"""


def error_response(status: int, reason: ReasonCode, message: str, errors: dict | None = None, headers=None) -> Response:
    """Build the error answer: JSON under /api, a small page elsewhere."""
    phrase = HTTPStatus(status).phrase
    if request.path.startswith("/api"):
        payload = {"code": status, "status": phrase, "message": message, "reason": str(reason)}
        if errors:
            payload["errors"] = errors
        response = jsonify(payload)
    else:
        response = Response(render_template_string(_PAGE, status=status, phrase=phrase, message=message), mimetype="text/html")
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _webargs_errors(exc: HTTPException) -> dict | None:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if isinstance(messages, dict):
        # webargs nests by location ("json", "query"); people want the field names.
        return {k: v for loc in messages.values() if isinstance(loc, dict) for k, v in loc.items()} or messages
    return None


def register(app) -> None:
    """Map every error to one answer shape. Called last in create_app."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        return error_response(exc.status, exc.reason, exc.message, exc.details.get("errors"))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        reason = getattr(exc, "reason", None) or _HTTP_REASONS.get(status, ReasonCode.INVALID_REQUEST)
        errors = _webargs_errors(exc)
        message = _message_for(exc, status, errors)
        headers = {"Retry-After": exc.retry_after} if getattr(exc, "retry_after", None) else None
        if status == 429 and exc.response is not None:
            headers = {k: v for k, v in exc.response.headers.items() if k.lower().startswith(("retry-after", "x-ratelimit"))}
        return error_response(status, reason, message, errors, headers)

    @app.errorhandler(DBAPIError)
    def _database(exc: DBAPIError):
        if not exc.connection_invalidated:
            return _unexpected(exc)
        # The connection broke while in use (a database restart); the pool has dropped it and the next
        # request connects anew, so the client's retry works.
        log.warning("database connection lost on %s %s; answered 503", request.method, request.path)
        return error_response(503, ReasonCode.DATABASE_UNAVAILABLE, "The server lost its database connection; try again in a few seconds.",
                              headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, ReasonCode.SERVER_ERROR, "Something went wrong on the server; try again later.")


def _message_for(exc: HTTPException, status: int, errors: dict | None) -> str:
    if errors:
        from shared.schemas import describe_errors

        return "The request is not valid: " + describe_errors(errors)
    if status == 413:
        return "The request body is over the server's limit (max_body_bytes)."
    if status == 400 and "JSON" in (exc.description or ""):
        return "The body is not valid JSON."
    return exc.description or HTTPStatus(status).phrase
