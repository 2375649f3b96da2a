"""Stable reason codes: the one vocabulary both sides use for every failure.

A reason code is a string that never changes meaning once released; clients
branch on it, people read the message next to it. HTTP errors carry it as
``reason`` in ``{code, status, message, reason}``; per-item push results carry
it as ``reason``; the quarantine table stores it.

===========================  ======  =================================================
reason                       HTTP    meaning
===========================  ======  =================================================
malformed_json               400     the body is not valid JSON (or not valid gzip)
unsupported_media_type       415     the body is not ``application/json``
invalid_request              422     the request does not match its schema
body_too_large               413     the body is over ``max_body_bytes``
batch_too_large              413     more items than ``max_items_per_batch``
page_too_large               422     a page size over ``max_page_size``
unauthorized                 401     no bearer token, or a token nobody issued
device_revoked               401     the device was revoked; what it sends is quarantined
forbidden                    403     the caller may not do this
not_found                    404     no such thing
rate_limited                 429     too many requests; honour ``Retry-After``
enrol_code_invalid           400     no such enrolment code
enrol_code_expired           400     the enrolment code has expired
enrol_code_used              409     the enrolment code was already used
malformed_envelope           (item)  the item is not an envelope at all
unsupported_version          (item)  envelope or record schema version not supported
unknown_server_key           (item)  sealed to a server key id the server never had
wrong_server_key             (item)  sealed to another key than the key id it names
header_tampered              (item)  a header field was changed after sealing
record_id_mismatch           (item)  the envelope was replayed under another record id
ciphertext_tampered          (item)  the ciphertext was changed after sealing
device_mismatch              (item)  the envelope names another device than the sender
bad_signature                (item)  the device signature does not verify
invalid_record               (item)  the record fails its schema (message says which field)
not_permitted                (item)  the device may not write this record (other worker, team)
revision_conflict            (item)  this revision was accepted before with other content
server_error                 500     a fault on the server; retry later
database_unavailable         503     the server lost its database connection; retry after ``Retry-After``
===========================  ======  =================================================
"""
from __future__ import annotations

from enum import Enum


class ReasonCode(str, Enum):
    """Stable machine-readable reason codes (see the module docstring)."""

    MALFORMED_JSON = "malformed_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID_REQUEST = "invalid_request"
    BODY_TOO_LARGE = "body_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    PAGE_TOO_LARGE = "page_too_large"
    UNAUTHORIZED = "unauthorized"
    DEVICE_REVOKED = "device_revoked"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    ENROL_CODE_INVALID = "enrol_code_invalid"
    ENROL_CODE_EXPIRED = "enrol_code_expired"
    ENROL_CODE_USED = "enrol_code_used"
    MALFORMED_ENVELOPE = "malformed_envelope"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_SERVER_KEY = "unknown_server_key"
    WRONG_SERVER_KEY = "wrong_server_key"
    HEADER_TAMPERED = "header_tampered"
    RECORD_ID_MISMATCH = "record_id_mismatch"
    CIPHERTEXT_TAMPERED = "ciphertext_tampered"
    DEVICE_MISMATCH = "device_mismatch"
    BAD_SIGNATURE = "bad_signature"
    INVALID_RECORD = "invalid_record"
    NOT_PERMITTED = "not_permitted"
    REVISION_CONFLICT = "revision_conflict"
    SERVER_ERROR = "server_error"
    DATABASE_UNAVAILABLE = "database_unavailable"

    def __str__(self) -> str:
        return self.value


class ProtocolError(Exception):
    """A failure both sides name with a :class:`ReasonCode`."""

    def __init__(self, reason: ReasonCode, message: str, details: dict | None = None):
        super().__init__(message)
        self.reason = ReasonCode(reason)
        self.message = message
        self.details = details or {}


class EnvelopeError(ProtocolError):
    """An envelope could not be opened or verified; ``reason`` says why."""
