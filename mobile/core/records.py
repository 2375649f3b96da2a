"""Readable copies of records: the merged state (:mod:`shared.merge`), encrypted with the data key.

A state is ``{"rev", "body", "field_revs"}``. Local saves and pulled changes
both go through :meth:`Records.apply`, so a device's copy follows the same
merge rules as the server's and converges with it.
"""
from __future__ import annotations

from typing import Iterator

from shared import merge

from .keystore import Keys
from .store import Store


def _aad(record_id: str, kind: str) -> str:
    return f"record|{record_id}|{kind}"


class Records:
    """Encrypted access to the ``records`` table."""

    def __init__(self, store: Store, keys: Keys):
        self.store = store
        self.keys = keys

    def get(self, record_id: str) -> tuple[str, dict] | None:
        """(kind, state) of one record, or None."""
        row = self.store.get_record_row(record_id)
        if row is None:
            return None
        return row["kind"], self.keys.decrypt(row["blob"], _aad(record_id, row["kind"]))

    def apply(self, kind: str, record_id: str, body: dict, rev: str, origin: str, at: str) -> dict:
        """Merge one revision into the readable copy; call inside a transaction. Returns the new state."""
        current = self.get(record_id)
        state = merge.apply(kind, current[1] if current else None, body, rev)
        if current is None or state != current[1]:
            self.store.put_record_row(record_id, kind, state["rev"], origin, at, self.keys.encrypt(state, _aad(record_id, kind)))
        return state

    def of_kind(self, kind: str, newest_first: bool = True, limit: int | None = None) -> Iterator[tuple[str, dict]]:
        """(record id, state) of every record of ``kind``, by revision."""
        for row in self.store.record_rows(kind, newest_first, limit):
            yield row["id"], self.keys.decrypt(row["blob"], _aad(row["id"], kind))
