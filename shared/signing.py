"""Documents signed by the server: sync receipts, key endorsements, export manifests.

A signed document is a JSON object with a ``sig`` field (base64 Ed25519) over
the canonical JSON of every other field. ``kid`` inside names the signing key.
"""
from __future__ import annotations

from typing import Any, Mapping

from . import crypto
from .canonical import canonical_json


def sign_document(private_key: bytes, document: Mapping[str, Any]) -> dict:
    """Return ``document`` with a ``sig`` over its canonical form."""
    unsigned = {k: v for k, v in document.items() if k != "sig"}
    return {**unsigned, "sig": crypto.b64e(crypto.sign(private_key, canonical_json(unsigned)))}


def verify_document(public_key: bytes, document: Mapping[str, Any]) -> bool:
    """True when ``document['sig']`` is a valid signature by ``public_key``."""
    try:
        signature = crypto.b64d(document["sig"])
        unsigned = {k: v for k, v in document.items() if k != "sig"}
        message = canonical_json(unsigned)  # ValueError / TypeError for content JSON cannot carry (NaN)
    except (KeyError, TypeError, ValueError):
        return False
    return crypto.verify(public_key, signature, message)
