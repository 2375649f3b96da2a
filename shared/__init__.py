"""What the phone and the server must agree on byte for byte.

Imports neither ``server`` nor ``mobile`` (nor flask, sqlalchemy, kivy or
requests): an auditor's verifier and both sides stand on it alone.
"""
from .canonical import canonical_json, sha256_hex
from .clock import HybridLogicalClock, Stamp
from .errors import EnvelopeError, ProtocolError, ReasonCode

__all__ = ["canonical_json", "sha256_hex", "HybridLogicalClock", "Stamp", "EnvelopeError", "ProtocolError", "ReasonCode"]
