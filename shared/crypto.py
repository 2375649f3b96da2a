"""All cryptography in fieldwatch lives here (the only importer of ``cryptography`` and ``nacl``).

Keys travel as raw bytes (32 bytes each) or their base64 text; nothing outside
this module handles a key object. Private keys never leave the function that
uses them.

- Ed25519: device signatures on records, server signatures on receipts,
  export manifests and key endorsements. Verification goes through libsodium
  (PyNaCl): about twice as fast as OpenSSL's here (40 vs 83 µs), and the server
  and the export verifier check one signature per record.
- X25519 + HKDF-SHA256 + AES-256-GCM: sealing envelopes to the server.
- scrypt + AES-256-GCM: wrapping keys under a technician's PIN on the phone.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError

_RAW = serialization.Encoding.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_NO_ENC = serialization.NoEncryption()


class DecryptionError(Exception):
    """Authenticated decryption failed: wrong key, or the data was changed."""


def b64e(data: bytes) -> str:
    """Standard base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    """Bytes of standard base64 ``text``; raises ValueError on bad input."""
    if not isinstance(text, str):
        raise ValueError(f"base64 text expected, not {type(text).__name__}")
    return base64.b64decode(text.encode("ascii"), validate=True)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's CSPRNG."""
    return os.urandom(n)


def fingerprint(public_key: bytes) -> str:
    """A short, stable name for a public key (first 16 bytes of SHA-256, hex)."""
    return hashlib.sha256(public_key).hexdigest()[:32]


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data`` under ``key``."""
    return hmac.digest(key, data, "sha256")


def hmac_sha256_each(key: bytes, prefix: bytes, messages) -> list[bytes]:
    """HMAC-SHA256 of ``prefix + m`` for each message (RFC 2104), the key's pads and the prefix hashed once.

    Each message then costs two copies of a hash state instead of a new HMAC context: the
    envelope's per-field salts and an export's, a dozen per record, are its hot callers.
    Tests compare it with :func:`hmac_sha256`.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD))
    inner.update(prefix)
    outer = hashlib.sha256(key.translate(_OPAD))
    out = []
    for message in messages:
        h = inner.copy()
        h.update(message)
        o = outer.copy()
        o.update(h.digest())
        out.append(o.digest())
    return out


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare secrets without leaking where they differ."""
    return hmac.compare_digest(a, b)


# --- Ed25519 -----------------------------------------------------------------

def generate_signing_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private, public) raw bytes."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(_RAW, _RAW_PRIV, _NO_ENC), key.public_key().public_bytes(_RAW, _RAW_PUB)


def signing_public_key(private_key: bytes) -> bytes:
    """The Ed25519 public key of a raw private key."""
    return Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(_RAW, _RAW_PUB)


def sign(private_key: bytes, message: bytes) -> bytes:
    """Ed25519 signature of ``message``."""
    return Ed25519PrivateKey.from_private_bytes(private_key).sign(message)


@lru_cache(maxsize=64)
def _x25519_private(private_key: bytes) -> tuple[X25519PrivateKey, bytes]:
    # Deriving the public half is a full scalar multiplication: once per server key, not per envelope.
    key = X25519PrivateKey.from_private_bytes(private_key)
    return key, key.public_key().public_bytes(_RAW, _RAW_PUB)


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message``."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True


# --- X25519 sealing ------------------------------------------------------------

def generate_box_keypair() -> tuple[bytes, bytes]:
    """A new X25519 key pair as (private, public) raw bytes."""
    key = X25519PrivateKey.generate()
    return key.private_bytes(_RAW, _RAW_PRIV, _NO_ENC), key.public_key().public_bytes(_RAW, _RAW_PUB)


def box_public_key(private_key: bytes) -> bytes:
    """The X25519 public key of a raw private key."""
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(_RAW, _RAW_PUB)


def _derive(shared: bytes, ephemeral_public: bytes, recipient_public: bytes, info: bytes) -> bytes:
    # 32 bytes AES key, 32 bytes MAC key, 12 bytes nonce: the key is unique per
    # ephemeral key, so a derived nonce is never reused with it.
    return HKDF(hashes.SHA256(), 76, ephemeral_public + recipient_public, info).derive(shared)


def seal_to(recipient_public: bytes, plaintext: bytes, aad: bytes, info: bytes) -> tuple[bytes, bytes, bytes]:
    """Encrypt to an X25519 public key. Returns (ephemeral_public, mac_key, ciphertext)."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(_RAW, _RAW_PUB)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    okm = _derive(shared, ephemeral_public, recipient_public, info)
    ciphertext = AESGCM(okm[:32]).encrypt(okm[64:76], plaintext, aad)
    return ephemeral_public, okm[32:64], ciphertext


def derive_opening_keys(recipient_private: bytes, ephemeral_public: bytes, info: bytes) -> tuple[bytes, bytes, bytes]:
    """Recompute (aes_key, mac_key, nonce) on the recipient's side."""
    private, recipient_public = _x25519_private(bytes(recipient_private))
    shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    okm = _derive(shared, ephemeral_public, recipient_public, info)
    return okm[:32], okm[32:64], okm[64:76]


def aead_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM decryption; raises DecryptionError when the tag fails."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionError("authentication tag mismatch") from exc


# --- symmetric keys at rest -------------------------------------------------------

def aead_encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """AES-256-GCM with a random nonce; returns nonce || ciphertext."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def aead_decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Inverse of :func:`aead_encrypt`; raises DecryptionError on a wrong key or changed data."""
    if len(blob) < 28:
        raise DecryptionError("ciphertext too short")
    return aead_open(key, blob[:12], blob[12:], aad)


def derive_pin_key(pin: str, salt: bytes, n: int = 2**15) -> bytes:
    """A 32-byte key from a PIN with scrypt (memory-hard, so guessing costs)."""
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(pin.encode("utf-8"))
