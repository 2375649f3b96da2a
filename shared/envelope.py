"""The envelope: how one record revision travels from a phone to the server.

Sealing (on the phone, at save time, so the outbox never holds plaintext)::

    secret  = 16 random bytes                       # per record revision
    salt_f  = HMAC(secret, "salt:" + f)[:16]        # per field f of the body
    digest_f = SHA-256(salt_f || canonical(body[f]))
    sig     = Ed25519_device(canonical({"h": signed header, "d": {f: digest_f}}))
    plain   = zlib(canonical({"b": body, "s": secret, "g": sig}))
    ct      = AES-256-GCM(HKDF(X25519(ephemeral, server)), plain, aad=canonical(header))

Wire form: ``{"h": header, "e": ephemeral public, "c": ciphertext, "t": tags}``.

Invariants:

- The signature is inside the ciphertext: health data is low-entropy and a
  signature in the clear would let anyone confirm a guess of it.
- The header (format version, server key id, device, record id, kind,
  revision) is the AEAD's associated data: it cannot be moved to another
  ciphertext.
- ``t`` holds a key check and one short MAC per header field, all keyed from
  the same exchange, so a failure is *named*: unknown key id, wrong server key,
  a changed header field, a replay under another record id, or a changed
  ciphertext each give their own :class:`~shared.errors.ReasonCode`.
- The signature covers salted per-field digests, so an export may withhold a
  field (health data) and still let an auditor verify every other field: the
  withheld field's digest is given, its value and salt are not.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import crypto
from .canonical import canonical_json, sha256_hex
from .errors import EnvelopeError, ReasonCode

FORMAT_VERSION = 1
HEADER_KEYS = ("v", "kid", "dev", "rid", "kind", "rev")
SIGNED_HEADER_KEYS = ("v", "dev", "rid", "kind", "rev")
_TAGGED = ("v", "dev", "rid", "kind", "rev")
_TAG_LEN = 6
_CHECK_LEN = 8
_INFO = b"fieldwatch/envelope/v1"
MAX_PLAINTEXT_BYTES = 256 * 1024  # a zip bomb inside an envelope stops here


@dataclass(frozen=True)
class Opened:
    """A verified-or-not opened envelope. ``verify_signature`` before trusting it."""

    header: dict
    body: dict
    secret: bytes
    signature: bytes
    digests: dict = field(default_factory=dict)
    message: bytes = b""  # what the device signed (signed_message): made once, hashed and verified
    salts: dict = field(default_factory=dict)  # {field: its salt}, made with the digests (a server keeps them for exports)

    def __post_init__(self):
        if not self.message:
            object.__setattr__(self, "message", signed_message(self.header, self.digests))

    @property
    def content_hash(self) -> str:
        """Hash of what the device signed; equal for a resend of the same revision."""
        return sha256_hex(self.message)


def signed_header(header: Mapping[str, Any]) -> dict:
    """The part of the header the device signs (the server key id is transport only)."""
    return {k: header[k] for k in SIGNED_HEADER_KEYS}


def field_salt(secret: bytes, name: str) -> bytes:
    """The salt of one field, derived from the revision's secret."""
    return crypto.hmac_sha256(secret, b"salt:" + name.encode("utf-8"))[:16]


def field_digest(salt: bytes, value: Any) -> str:
    """Salted digest of one field's value."""
    return sha256_hex(salt + canonical_json(value))


def field_salts(body: Mapping[str, Any], secret: bytes) -> dict:
    """{field: :func:`field_salt`} for every field of ``body``, in one pass."""
    names = list(body)
    macs = crypto.hmac_sha256_each(secret, b"salt:", [name.encode("utf-8") for name in names])
    return {name: mac[:16] for name, mac in zip(names, macs)}


def field_digests(body: Mapping[str, Any], secret: bytes, salts: Mapping[str, bytes] | None = None) -> dict:
    """Digest of every field of ``body`` (``salts``: :func:`field_salts`, when already made)."""
    salts = field_salts(body, secret) if salts is None else salts
    return {name: field_digest(salts[name], value) for name, value in body.items()}


def signed_message(header: Mapping[str, Any], digests: Mapping[str, str]) -> bytes:
    """The exact bytes a device signs for one revision."""
    return canonical_json({"h": signed_header(header), "d": dict(digests)})


def _tags(mac_key: bytes, header: Mapping[str, Any]) -> bytes:
    check, *per_field = crypto.hmac_sha256_each(mac_key, b"", [b"key-check"] + [canonical_json([k, header[k]]) for k in _TAGGED])
    return check[:_CHECK_LEN] + b"".join(mac[:_TAG_LEN] for mac in per_field)


def make_header(kid: str, device_id: str, record_id: str, kind: str, revision: str) -> dict:
    """A header dict in wire form."""
    return {"v": FORMAT_VERSION, "kid": kid, "dev": device_id, "rid": record_id, "kind": kind, "rev": revision}


def seal(header: Mapping[str, Any], body: Mapping[str, Any], device_private: bytes, server_public: bytes) -> dict:
    """Sign ``body`` with the device key and encrypt it to the server key. Returns the wire form."""
    header = dict(header)
    secret = crypto.random_bytes(16)
    digests = field_digests(body, secret)
    signature = crypto.sign(device_private, signed_message(header, digests))
    plain = zlib.compress(
        canonical_json({"b": dict(body), "s": crypto.b64e(secret), "g": crypto.b64e(signature)}), 6
    )
    ephemeral, mac_key, ciphertext = crypto.seal_to(server_public, plain, canonical_json(header), _INFO)
    return {
        "h": header,
        "e": crypto.b64e(ephemeral),
        "c": crypto.b64e(ciphertext),
        "t": crypto.b64e(_tags(mac_key, header)),
    }


def envelope_hash(wire: Mapping[str, Any]) -> str:
    """Hash of an envelope as received (what a receipt lists)."""
    return sha256_hex(canonical_json(wire))


def _fail(reason: ReasonCode, message: str, **details) -> EnvelopeError:
    return EnvelopeError(reason, message, details)


def check_shape(wire: Any) -> dict:
    """Validate the wire form's structure; returns the header or raises malformed_envelope."""
    if not isinstance(wire, dict) or set(wire) != {"h", "e", "c", "t"}:
        raise _fail(ReasonCode.MALFORMED_ENVELOPE, "an envelope needs exactly the fields h, e, c and t")
    header = wire["h"]
    if not isinstance(header, dict) or set(header) != set(HEADER_KEYS):
        raise _fail(ReasonCode.MALFORMED_ENVELOPE, f"an envelope header needs exactly {', '.join(HEADER_KEYS)}")
    if not isinstance(header["v"], int) or isinstance(header["v"], bool):
        raise _fail(ReasonCode.MALFORMED_ENVELOPE, "header field v must be an integer")
    for key in HEADER_KEYS[1:]:
        if not isinstance(header[key], str) or not 0 < len(header[key]) <= 128 or "\x00" in header[key]:
            raise _fail(ReasonCode.MALFORMED_ENVELOPE, f"header field {key} must be a short string (no NUL character)")
    for key in ("e", "c", "t"):
        if not isinstance(wire[key], str):
            raise _fail(ReasonCode.MALFORMED_ENVELOPE, f"envelope field {key} must be base64 text")
    return header


def _decode(wire: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    try:
        ephemeral, ciphertext, tags = crypto.b64d(wire["e"]), crypto.b64d(wire["c"]), crypto.b64d(wire["t"])
    except ValueError as exc:
        raise _fail(ReasonCode.MALFORMED_ENVELOPE, "envelope fields e, c and t must be base64") from exc
    if len(ephemeral) != 32 or len(tags) != _CHECK_LEN + _TAG_LEN * len(_TAGGED):
        raise _fail(ReasonCode.MALFORMED_ENVELOPE, "envelope key or tags have the wrong length")
    return ephemeral, ciphertext, tags


def open_envelope(wire: Any, keyring: Mapping[str, bytes]) -> Opened:
    """Decrypt an envelope with the server's box keys (``{kid: private}``).

    Raises :class:`EnvelopeError` naming the first check that failed. The
    signature is not checked here: call :func:`verify_signature` with the
    sending device's public key.
    """
    header = check_shape(wire)
    if header["v"] != FORMAT_VERSION:
        raise _fail(ReasonCode.UNSUPPORTED_VERSION, f"envelope format {header['v']} is not supported (supported: {FORMAT_VERSION})")
    private = keyring.get(header["kid"])
    if private is None:
        raise _fail(ReasonCode.UNKNOWN_SERVER_KEY, f"the server has no key {header['kid']!r}", kid=header["kid"])
    ephemeral, ciphertext, tags = _decode(wire)
    try:
        aes_key, mac_key, nonce = crypto.derive_opening_keys(private, ephemeral, _INFO)
    except ValueError as exc:  # e.g. a low-order point: the key exchange has no result
        raise _fail(ReasonCode.MALFORMED_ENVELOPE, "the envelope's ephemeral key is not a usable X25519 key") from exc
    expected = _tags(mac_key, header)
    if not crypto.constant_time_equal(expected[:_CHECK_LEN], tags[:_CHECK_LEN]):
        raise _fail(ReasonCode.WRONG_SERVER_KEY, f"the envelope was not sealed to server key {header['kid']!r}")
    changed = [
        name
        for i, name in enumerate(_TAGGED)
        if not crypto.constant_time_equal(
            expected[_CHECK_LEN + i * _TAG_LEN:_CHECK_LEN + (i + 1) * _TAG_LEN],
            tags[_CHECK_LEN + i * _TAG_LEN:_CHECK_LEN + (i + 1) * _TAG_LEN],
        )
    ]
    if changed == ["rid"]:
        raise _fail(ReasonCode.RECORD_ID_MISMATCH, "the envelope was sealed for another record id", fields=changed)
    if changed:
        raise _fail(ReasonCode.HEADER_TAMPERED, f"header changed after sealing: {', '.join(changed)}", fields=changed)
    try:
        plain = crypto.aead_open(aes_key, nonce, ciphertext, canonical_json(header))
    except crypto.DecryptionError as exc:
        raise _fail(ReasonCode.CIPHERTEXT_TAMPERED, "the ciphertext was changed after sealing") from exc
    return _parse_plaintext(header, plain)


def _parse_plaintext(header: dict, plain: bytes) -> Opened:
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(plain, MAX_PLAINTEXT_BYTES)
        if inflater.unconsumed_tail:
            raise _fail(ReasonCode.MALFORMED_ENVELOPE, f"the record is over {MAX_PLAINTEXT_BYTES} bytes")
        inner = json.loads(raw)
        body, secret, signature = inner["b"], crypto.b64d(inner["s"]), crypto.b64d(inner["g"])
        if not isinstance(body, dict):
            raise _fail(ReasonCode.MALFORMED_ENVELOPE, "the sealed record must be an object")
        salts = field_salts(body, secret)
        digests = field_digests(body, secret, salts)  # ValueError for NaN / Infinity, which JSON does not have
    except EnvelopeError:
        raise
    except (zlib.error, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise _fail(ReasonCode.MALFORMED_ENVELOPE, "the sealed content is not a record") from exc
    return Opened(header, body, secret, signature, digests, salts=salts)


def verify_signature(opened: Opened, device_public: bytes) -> None:
    """Raise bad_signature unless the device with ``device_public`` signed this revision."""
    if not crypto.verify(device_public, opened.signature, opened.message):
        raise _fail(ReasonCode.BAD_SIGNATURE, "the record is not signed by the device that sent it")


# --- records as an auditor sees them ---------------------------------------------

def disclose(opened: Opened, device_public: bytes, withhold: frozenset[str] | set[str] = frozenset()) -> dict:
    """The export form of a revision: fields, their salts, digests of withheld fields, the signature."""
    shown = {k: v for k, v in opened.body.items() if k not in withhold}
    return {
        "header": signed_header(opened.header),
        "fields": shown,
        "salts": {k: crypto.b64e(field_salt(opened.secret, k)) for k in shown},
        "withheld": {k: opened.digests[k] for k in sorted(withhold) if k in opened.digests},
        "signature": crypto.b64e(opened.signature),
        "key": crypto.fingerprint(device_public),
    }


def verify_disclosed(record: Mapping[str, Any], device_public: bytes) -> bool:
    """True when an exported record's shown fields and withheld digests carry the device's signature."""
    try:
        digests = dict(record["withheld"])
        for name, value in record["fields"].items():
            digests[name] = field_digest(crypto.b64d(record["salts"][name]), value)
        signature = crypto.b64d(record["signature"])
        message = signed_message(record["header"], digests)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return crypto.verify(device_public, signature, message)
