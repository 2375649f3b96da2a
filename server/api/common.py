"""What every API blueprint shares: body decoding and limits, device authentication."""
from __future__ import annotations

import zlib

from flask import current_app, g, request

from shared.errors import ReasonCode
from shared.protocol import Limits

from ..errors import DomainError, LimitExceeded
from ..services import enrolment


def limits() -> Limits:
    """The limits this server states and enforces."""
    c = current_app.config
    return Limits(c["MAX_ITEMS_PER_BATCH"], c["MAX_BODY_BYTES"], c["MAX_PAGE_SIZE"], c["DEFAULT_PAGE_SIZE"])


def decode_body() -> None:
    """before_request: JSON only, gzip accepted, size limit on the decoded body."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if not request.is_json:
        raise DomainError("Send the body as JSON (Content-Type: application/json).", ReasonCode.UNSUPPORTED_MEDIA_TYPE, status=415)
    encoding = request.headers.get("Content-Encoding", "identity").lower()
    if encoding == "identity":
        return
    if encoding != "gzip":
        raise DomainError(f"Content-Encoding {encoding!r} is not supported; use gzip or none.", ReasonCode.UNSUPPORTED_MEDIA_TYPE, status=415)
    limit = limits().max_body_bytes
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(request.get_data(cache=False), limit + 1)
    except zlib.error:
        raise DomainError("The body is not valid gzip.", ReasonCode.MALFORMED_JSON, status=400) from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise LimitExceeded(f"The body is over the limit of max_body_bytes={limit} once decompressed.", ReasonCode.BODY_TOO_LARGE)
    request._cached_data = data  # what get_json / webargs read from here on


def bearer_token() -> str | None:
    """The token of ``Authorization: Bearer <token>``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_identity() -> enrolment.DeviceIdentity:
    """Who the authenticated device of this request is (set by :func:`require_device`)."""
    return g.device_identity


def current_device():
    """The authenticated device's row, loaded when a handler first asks."""
    if "device" not in g:
        g.device = g.device_identity.device()
    return g.device


def require_device() -> None:
    """before_request for device routes: a known token. A revoked device is let through only to push (to quarantine)."""
    g.device_identity = enrolment.authenticate(bearer_token(), allow_revoked=request.endpoint == "sync.Push")
    g.pop("device", None)  # loaded for this request's device only (an app context may outlive a request)
