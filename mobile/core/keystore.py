"""The PIN gate: a random data key and the device's Ed25519 key, both wrapped under the PIN.

Layout in ``meta`` (all values base64 or plain numbers, nothing usable without the PIN)::

    pin            {"salt", "n", "data_key", "device_key"}   # wrapped with scrypt(PIN) + AES-256-GCM
    device_public  b64 Ed25519 public key (sent at enrolment; not a secret)
    pin_failures   wrong PINs in a row
    pin_locked_until  ISO time before which no PIN is checked

Why a data key: the readable copies are encrypted once with a random key, so a
PIN change rewraps 64 bytes instead of re-encrypting every record.

Wrong PINs: ``free_pin_attempts`` are free, then each further wrong PIN locks the
app for ``lockout_base_s * 2**k`` seconds (capped). The attempt is counted *before*
scrypt runs, so killing the app mid-check does not earn a free guess. The
counters are in the clear in SQLite: someone with the file can reset them, but
then each guess still costs a full scrypt (the real protection of a lost phone).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared import crypto
from shared.canonical import canonical_json

from .config import DeviceSettings
from .errors import PinError, PinLockedOut, StoreLocked, WrongPin
from .store import Store

MIN_PIN_LENGTH = 4
_DATA_KEY_AAD = b"fieldwatch/device/data-key/v1"
_DEVICE_KEY_AAD = b"fieldwatch/device/signing-key/v1"


@dataclass
class Keys:
    """The unlocked secrets of a device; dropped on :meth:`KeyStore.lock`."""

    data_key: bytes = field(repr=False)
    device_private: bytes = field(repr=False)
    device_public: bytes

    def encrypt(self, value, aad: str) -> bytes:
        """Encrypt a JSON value at rest; ``aad`` binds it to its row (so rows cannot be swapped)."""
        return crypto.aead_encrypt(self.data_key, canonical_json(value), aad.encode("utf-8"))

    def decrypt(self, blob: bytes, aad: str):
        """Inverse of :meth:`encrypt`."""
        return json.loads(crypto.aead_decrypt(self.data_key, bytes(blob), aad.encode("utf-8")))


class KeyStore:
    """Creates, unlocks, re-PINs and locks the device's keys."""

    def __init__(self, store: Store, settings: DeviceSettings):
        self.store = store
        self.settings = settings
        self._keys: Keys | None = None

    @property
    def is_set_up(self) -> bool:
        """True once a PIN has been set."""
        return self.store.get_meta("pin") is not None

    @property
    def keys(self) -> Keys:
        """The unlocked keys; raises StoreLocked when locked."""
        if self._keys is None:
            raise StoreLocked("the app is locked; enter the PIN first")
        return self._keys

    @property
    def is_unlocked(self) -> bool:
        """True while the keys are in memory."""
        return self._keys is not None

    def create(self, pin: str) -> Keys:
        """Make a new data key and device key pair, wrapped under ``pin``; unlocks."""
        _check_pin_shape(pin)
        private, public = crypto.generate_signing_keypair()
        keys = Keys(crypto.random_bytes(32), private, public)
        with self.store.transaction():
            self._wrap(keys, pin)
            self.store.set_meta("device_public", crypto.b64e(public))
            self._reset_failures()
        self._keys = keys
        return keys

    def unlock(self, pin: str) -> Keys:
        """Open the keys with ``pin``. Raises PinLockedOut, WrongPin or StoreLocked (never set up)."""
        wrapped = self.store.get_meta("pin")
        if wrapped is None:
            raise StoreLocked("no PIN is set on this device; enrol first")
        self._refuse_while_locked_out()
        failures = self.store.get_meta("pin_failures", 0) + 1
        self.store.set_many_meta({"pin_failures": failures})  # counted before checking: no free guess by killing the app
        keys = self._unwrap(wrapped, pin)
        if keys is None:
            raise self._wrong_pin(failures)
        self.store.set_many_meta({"pin_failures": 0, "pin_locked_until": None})
        self._keys = keys
        return keys

    def change_pin(self, old_pin: str, new_pin: str) -> Keys:
        """Rewrap the keys under ``new_pin`` after checking ``old_pin``."""
        _check_pin_shape(new_pin)
        keys = self.unlock(old_pin)
        with self.store.transaction():
            self._wrap(keys, new_pin)
        return keys

    def lock(self) -> None:
        """Forget the keys (the next action needs the PIN)."""
        self._keys = None

    def lockout(self) -> dict:
        """Wrong PINs so far and the end of any lock-out (for a screen)."""
        until = self.store.get_meta("pin_locked_until")
        return {"failures": self.store.get_meta("pin_failures", 0), "locked_until": until}

    # --- internals ----------------------------------------------------------------------

    def _wrap(self, keys: Keys, pin: str) -> None:
        salt = crypto.random_bytes(16)
        pin_key = crypto.derive_pin_key(pin, salt, self.settings.scrypt_n)
        self.store.set_meta("pin", {
            "salt": crypto.b64e(salt),
            "n": self.settings.scrypt_n,
            "data_key": crypto.b64e(crypto.aead_encrypt(pin_key, keys.data_key, _DATA_KEY_AAD)),
            "device_key": crypto.b64e(crypto.aead_encrypt(pin_key, keys.device_private, _DEVICE_KEY_AAD)),
        })

    def _unwrap(self, wrapped: dict, pin: str) -> Keys | None:
        pin_key = crypto.derive_pin_key(pin, crypto.b64d(wrapped["salt"]), wrapped["n"])
        try:
            data_key = crypto.aead_decrypt(pin_key, crypto.b64d(wrapped["data_key"]), _DATA_KEY_AAD)
            private = crypto.aead_decrypt(pin_key, crypto.b64d(wrapped["device_key"]), _DEVICE_KEY_AAD)
        except crypto.DecryptionError:
            return None
        return Keys(data_key, private, crypto.signing_public_key(private))

    def _refuse_while_locked_out(self) -> None:
        until_text = self.store.get_meta("pin_locked_until")
        if not until_text:
            return
        until, now = datetime.fromisoformat(until_text), self.settings.now()
        if now < until:
            raise PinLockedOut(until, max(1, int((until - now).total_seconds() + 0.999)))

    def _wrong_pin(self, failures: int) -> WrongPin:
        free = self.settings.free_pin_attempts
        if failures >= free:
            seconds = min(self.settings.lockout_max_s, self.settings.lockout_base_s * 2 ** (failures - free))
            until = self.settings.now() + timedelta(seconds=seconds)
            self.store.set_many_meta({"pin_locked_until": until.isoformat()})
        return WrongPin(max(0, free - failures))

    def _reset_failures(self) -> None:
        self.store.set_meta("pin_failures", 0)
        self.store.set_meta("pin_locked_until", None)


def _check_pin_shape(pin: str) -> None:
    if not isinstance(pin, str) or len(pin) < MIN_PIN_LENGTH:
        raise PinError(f"a PIN needs at least {MIN_PIN_LENGTH} characters", reason="pin_too_short")
