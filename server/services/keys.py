"""Server keys, kept in files outside the database (``KEYS_DIR/keys.json``, mode 0600).

- *server keys* (one X25519 box key + one Ed25519 signing key per ``kid``):
  devices seal envelopes to the current box key; receipts are signed with the
  current signing key. Rotation adds a new pair, endorsed by the previous
  signing key so pinned devices can accept it; old private keys stay to open
  old envelopes.
- *data keys*: AES-256 keys that encrypt health fields at rest; rotation adds
  one, old ones still decrypt.
- the *export key*: Ed25519, signs export manifests; public at /api/v1/keys.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone

from shared import crypto
from shared.canonical import canonical_json
from shared.signing import sign_document

FILENAME = "keys.json"
_cache: dict[str, tuple[float, "KeyRing"]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class KeyRing:
    """The loaded keys. Private halves never leave this module's functions and services.sync."""

    data: dict

    @property
    def current_kid(self) -> str:
        return self.data["current"]

    @cached_property
    def box_privates(self) -> dict[str, bytes]:
        """{kid: X25519 private} for opening envelopes, old keys included."""
        return {k["kid"]: crypto.b64d(k["box_private"]) for k in self.data["keys"]}

    def sign_private(self, kid: str | None = None) -> bytes:
        kid = kid or self.current_kid
        return crypto.b64d(next(k["sign_private"] for k in self.data["keys"] if k["kid"] == kid))

    def public_keys(self) -> list[dict]:
        """The published halves, oldest first, with endorsements."""
        return [
            {
                "kid": k["kid"],
                "box_public": crypto.b64e(crypto.box_public_key(crypto.b64d(k["box_private"]))),
                "sign_public": crypto.b64e(crypto.signing_public_key(crypto.b64d(k["sign_private"]))),
                "created_at": k["created_at"],
                "current": k["kid"] == self.current_kid,
                "endorsement": k.get("endorsement"),
            }
            for k in self.data["keys"]
        ]

    def sign(self, document: dict) -> dict:
        """Sign a document (receipt) with the current signing key; adds ``kid``."""
        return sign_document(self.sign_private(), {**document, "kid": self.current_kid})

    @property
    def export_private(self) -> bytes:
        return crypto.b64d(self.data["export"]["sign_private"])

    @property
    def export_public(self) -> str:
        return crypto.b64e(crypto.signing_public_key(self.export_private))

    def encrypt_health(self, plaintext: bytes) -> tuple[str, bytes]:
        """Encrypt health fields with the current data key; returns (key id, blob)."""
        key = self.data["data_keys"][-1]
        return key["id"], crypto.aead_encrypt(crypto.b64d(key["key"]), plaintext, key["id"].encode())

    def decrypt_health(self, key_id: str, blob: bytes) -> bytes:
        key = next(k for k in self.data["data_keys"] if k["id"] == key_id)
        return crypto.aead_decrypt(crypto.b64d(key["key"]), blob, key_id.encode())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _new_server_key(previous: dict | None) -> dict:
    box_private, _ = crypto.generate_box_keypair()
    sign_private, _ = crypto.generate_signing_keypair()
    key = {
        "kid": "k" + secrets.token_hex(4),
        "box_private": crypto.b64e(box_private),
        "sign_private": crypto.b64e(sign_private),
        "created_at": _now(),
        "endorsement": None,
    }
    if previous is not None:
        key["endorsement"] = crypto.b64e(crypto.sign(crypto.b64d(previous["sign_private"]), endorsement_message(key)))
    return key


def endorsement_message(key: dict) -> bytes:
    """What the previous signing key signs to vouch for a new key (devices check this)."""
    box_public = key.get("box_public") or crypto.b64e(crypto.box_public_key(crypto.b64d(key["box_private"])))
    sign_public = key.get("sign_public") or crypto.b64e(crypto.signing_public_key(crypto.b64d(key["sign_private"])))
    return canonical_json({"kid": key["kid"], "box_public": box_public, "sign_public": sign_public})


def _new_data_key() -> dict:
    return {"id": "d" + secrets.token_hex(4), "key": crypto.b64e(crypto.random_bytes(32)), "created_at": _now()}


def _path(keys_dir: str) -> str:
    return os.path.join(keys_dir, FILENAME)


def _write(keys_dir: str, data: dict) -> None:
    os.makedirs(keys_dir, mode=0o700, exist_ok=True)
    tmp = _path(keys_dir) + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, _path(keys_dir))


def init_keys(keys_dir: str) -> bool:
    """Create the key file if missing. Returns True when keys were made."""
    with _lock:
        if os.path.exists(_path(keys_dir)):
            return False
        key = _new_server_key(None)
        export_private, _ = crypto.generate_signing_keypair()
        _write(keys_dir, {
            "keys": [key], "current": key["kid"], "data_keys": [_new_data_key()],
            "export": {"sign_private": crypto.b64e(export_private), "created_at": _now()},
        })
        return True


def rotate_keys(keys_dir: str) -> str:
    """Add a new server key pair (endorsed by the current one) and a new data key; returns the new kid."""
    with _lock:
        data = load_keyring(keys_dir).data
        previous = next(k for k in data["keys"] if k["kid"] == data["current"])
        key = _new_server_key(previous)
        data = {**data, "keys": data["keys"] + [key], "current": key["kid"], "data_keys": data["data_keys"] + [_new_data_key()]}
        _write(keys_dir, data)
        _cache.pop(keys_dir, None)
        return key["kid"]


def load_keyring(keys_dir: str) -> KeyRing:
    """The key ring, re-read when the file changes (a rotation by the CLI reaches running servers)."""
    path = _path(keys_dir)
    mtime = os.stat(path).st_mtime
    cached = _cache.get(keys_dir)
    if cached and cached[0] == mtime:
        return cached[1]
    with open(path) as f:
        ring = KeyRing(json.load(f))
    _cache[keys_dir] = (mtime, ring)
    return ring


def keyring() -> KeyRing:
    """The key ring of the current app."""
    from flask import current_app

    return load_keyring(current_app.config["KEYS_DIR"])
