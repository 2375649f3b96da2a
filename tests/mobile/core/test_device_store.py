"""The local store: migrations, atomic saves, and a lost phone that gives nothing readable."""
from __future__ import annotations

import sqlite3

import pytest

from mobile.core.store import SCHEMA_VERSION, Store, StoreError

SECRET_NOTE = "dizzy after the climb at tower seven"


def _file_bytes(store: Store) -> bytes:
    wal = store.path.with_name(store.path.name + "-wal")
    return store.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_new_store_is_wal_and_migrated(tmp_path):
    store = Store(tmp_path / "d.sqlite3")
    assert store.schema_version == SCHEMA_VERSION
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    store.close()


def test_store_from_a_newer_app_is_refused(tmp_path):
    path = tmp_path / "d.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer app"):
        Store(path)


def test_transaction_rolls_back_and_nests(tmp_path):
    store = Store(tmp_path / "d.sqlite3")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.set_meta("a", 1)
            with store.transaction():
                store.set_meta("b", 2)
            raise RuntimeError("killed")
    assert store.get_meta("a") is None and store.get_meta("b") is None
    store.close()


def test_a_save_is_all_or_nothing(device, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt("app killed while queueing")

    monkeypatch.setattr(device.outbox, "add", boom)
    with pytest.raises(KeyboardInterrupt):
        device.record_check_in("ok")
    monkeypatch.undo()
    assert device.store.count_records() == {} and device.outbox_items() == []


def test_lost_phone_file_holds_no_health_data(device, fake):
    """Without the PIN, neither the SQLite file nor its WAL shows the health fields."""
    device.record_safety_check(38.9, symptoms=["fever", "cough"], exposure="suspected_contact", notes=SECRET_NOTE)
    device.record_check_in("need_help", notes=SECRET_NOTE)
    job = fake.add_job()
    device.sync_now()
    device.update_job(job, note=SECRET_NOTE)
    # the server's rejection message may quote a value: it is kept encrypted too
    leaky = device.record_safety_check(38.9, notes=SECRET_NOTE)
    fake.rejections[leaky.record_id] = ("invalid_record", f"temperature 38.9 is too high; note {SECRET_NOTE}")
    device.sync_now()
    assert device.sync_status()["rejected"][0]["message"].startswith("temperature 38.9")
    raw = _file_bytes(device.store)
    for needle in ("38.9", SECRET_NOTE, "suspected_contact", "shortness", "fever", "temperature_c"):
        assert needle.encode() not in raw, needle
    device.close()
    raw = device.store.path.read_bytes()
    assert b"38.9" not in raw and SECRET_NOTE.encode() not in raw


def test_readable_copies_cannot_be_swapped_between_rows(device):
    a = device.record_check_in("ok", notes="a")
    b = device.record_check_in("sos", notes="b")
    row_a, row_b = device.store.get_record_row(a.record_id), device.store.get_record_row(b.record_id)
    with device.store.transaction():
        device.store.execute("UPDATE records SET blob = ? WHERE id = ?", (row_b["blob"], a.record_id))
    from shared.crypto import DecryptionError
    with pytest.raises(DecryptionError):
        device._records().get(a.record_id)
    assert row_a["blob"] != row_b["blob"]
