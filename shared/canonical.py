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
    return _text(value).encode("utf-8")


def _text(value: Any) -> str:
    # Scalars and flat lists (every field digest, every header tag) skip building a C
    # encoder per call; the output is byte-identical to the encoder's (tests compare).
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value or value in (_INF, -_INF):
            raise ValueError(f"out of range float value for JSON: {value!r}")
        return float.__repr__(value)
    if kind is list and all(type(v) in _SCALARS for v in value):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return _ENCODER.encode(value)


_INF = float("inf")
_SCALARS = (str, bool, int, float, type(None))
_encode_str = json.encoder.encode_basestring


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
