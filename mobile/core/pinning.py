"""Server key pinning: the server's keys are pinned at enrolment; later keys need an endorsement.

A new key is accepted only when its ``endorsement`` (base64 Ed25519 signature
over ``canonical_json({"kid", "box_public", "sign_public"})``) verifies under a
sign key the device already trusts, keys accepted earlier in the same update
included, so a device that slept through two rotations follows the chain.
A pinned key id that comes back with other key bytes, or a new key nobody
endorsed, is refused with :class:`ServerKeyChanged`: the device stops syncing
rather than seal health data to a key it cannot trust.

Keys the server no longer lists stay pinned: old receipts stay verifiable.
"""
from __future__ import annotations

from shared import crypto
from shared.canonical import canonical_json

from .store import Store
from .sync.client import ServerKeyChanged

_PUBLIC_FIELDS = ("kid", "box_public", "sign_public")


def endorsement_message(key: dict) -> bytes:
    """The bytes an endorsement signs."""
    return canonical_json({k: key[k] for k in _PUBLIC_FIELDS})


def _endorsed_by(key: dict, trusted: list[dict]) -> bool:
    try:
        signature = crypto.b64d(key.get("endorsement") or "")
    except ValueError:
        return False
    message = endorsement_message(key)
    return any(crypto.verify(crypto.b64d(t["sign_public"]), signature, message) for t in trusted)


class ServerPins:
    """The pinned server keys of one device (``meta.server_keys``)."""

    def __init__(self, store: Store):
        self.store = store

    def pin_initial(self, keys: list[dict]) -> None:
        """Pin the keys given at enrolment (trust on first use, over the address the technician typed)."""
        if not any(k.get("current") for k in keys):
            raise ServerKeyChanged("the server named no current key at enrolment")
        self.store.set_meta("server_keys", [_public(k) for k in keys])

    def all(self) -> list[dict]:
        """Every pinned key."""
        return self.store.get_meta("server_keys", [])

    def current(self) -> dict:
        """The key new envelopes are sealed to."""
        for key in self.all():
            if key.get("current"):
                return key
        raise ServerKeyChanged("no current server key is pinned")

    def sign_key(self, kid: str) -> bytes | None:
        """The raw sign key of a pinned key id (receipt checks), or None."""
        for key in self.all():
            if key["kid"] == kid:
                return crypto.b64d(key["sign_public"])
        return None

    def update(self, offered: list[dict]) -> list[str]:
        """Accept the server's key list if every new key is endorsed; returns the new kids.

        Raises ServerKeyChanged (and changes nothing) otherwise.
        """
        pinned = {k["kid"]: k for k in self.all()}
        for key in offered:
            old = pinned.get(key["kid"])
            if old and (old["box_public"], old["sign_public"]) != (key["box_public"], key["sign_public"]):
                raise ServerKeyChanged(f"server key {key['kid']!r} came back with different key bytes; sync refused")
        trusted = list(pinned.values())
        pending = [k for k in offered if k["kid"] not in pinned]
        added = self._follow_chain(trusted, pending)
        current = [k["kid"] for k in offered if k.get("current")]
        merged = {k["kid"]: {**k, "current": False} for k in trusted}
        if current:
            merged[current[0]]["current"] = True
        else:
            for kid, key in pinned.items():
                merged[kid]["current"] = bool(key.get("current"))
        with self.store.transaction():
            self.store.set_meta("server_keys", list(merged.values()))
        return added

    @staticmethod
    def _follow_chain(trusted: list[dict], pending: list[dict]) -> list[str]:
        added: list[str] = []
        while pending:
            accepted = [k for k in pending if _endorsed_by(k, trusted)]
            if not accepted:
                kids = ", ".join(k["kid"] for k in pending)
                raise ServerKeyChanged(f"the server presents key(s) {kids} that no pinned key endorses; sync refused")
            for key in accepted:
                trusted.append(_public(key))
                added.append(key["kid"])
            pending = [k for k in pending if k["kid"] not in added]
        return added


def _public(key: dict) -> dict:
    return {f: key.get(f) for f in ("kid", "box_public", "sign_public", "created_at", "current", "endorsement")}
