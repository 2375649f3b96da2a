"""Canonical JSON: the one byte form that signatures and hashes are computed over.

Keys sorted, no insignificant whitespace, UTF-8, no NaN or infinities. Both the
phone and the server (and an auditor's verifier) must produce identical bytes
for the same value, so nothing else in the project serialises signed data.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


# One encoder, built once: json.dumps with options builds a new encoder per call,
# and canonical_json runs for every field of every record (envelope digests).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> bytes:
    """Return the canonical UTF-8 JSON bytes of ``value``."""
    return _ENCODER.encode(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
