"""The PIN gate: keys wrapped under the PIN, clear wrong-PIN errors, lock-outs that grow and persist."""
from __future__ import annotations

import pytest

from tests.mobile.core.conftest import PIN
from mobile.core.errors import PinError, PinLockedOut, StoreLocked, WrongPin
from mobile.core.keystore import KeyStore
from mobile.core.services import Device
from mobile.core.store import Store


@pytest.fixture
def keystore(make_settings):
    settings = make_settings("ks")
    store = Store(settings.db_path)
    yield KeyStore(store, settings)
    store.close()


def test_create_then_unlock_gives_back_the_same_keys(keystore):
    made = keystore.create(PIN)
    keystore.lock()
    with pytest.raises(StoreLocked):
        keystore.keys
    opened = keystore.unlock(PIN)
    assert (opened.data_key, opened.device_private, opened.device_public) == (made.data_key, made.device_private, made.device_public)


def test_wrapped_keys_are_not_stored_in_the_clear(keystore):
    made = keystore.create(PIN)
    raw = keystore.store.path.read_bytes() + keystore.store.path.with_name(keystore.store.path.name + "-wal").read_bytes()
    assert made.data_key not in raw and made.device_private not in raw


def test_wrong_pin_is_a_clear_error_and_counts_down(keystore):
    keystore.create(PIN)
    keystore.lock()
    with pytest.raises(WrongPin) as first:
        keystore.unlock("0000")
    assert first.value.attempts_left == 2 and "wrong PIN" in str(first.value)
    with pytest.raises(WrongPin) as second:
        keystore.unlock("0001")
    assert second.value.attempts_left == 1
    assert not keystore.is_unlocked


def test_lockout_grows_with_each_wrong_pin_and_ends(keystore, clock):
    keystore.create(PIN)
    keystore.lock()
    for bad in ("1111", "2222"):
        with pytest.raises(WrongPin):
            keystore.unlock(bad)
    lengths = []
    for bad in ("3333", "4444", "5555"):
        with pytest.raises(WrongPin):
            keystore.unlock(bad)
        with pytest.raises(PinLockedOut) as locked:
            keystore.unlock(PIN)  # even the right PIN is not checked during a lock-out
        lengths.append(locked.value.seconds_left)
        clock.advance(seconds=locked.value.seconds_left)
    assert lengths == [30, 60, 120]
    keystore.unlock(PIN)
    assert keystore.lockout() == {"failures": 0, "locked_until": None}


def test_lockout_survives_a_restart(make_settings, clock):
    settings = make_settings("restart")
    store = Store(settings.db_path)
    keystore = KeyStore(store, settings)
    keystore.create(PIN)
    for bad in ("1111", "2222", "3333"):
        with pytest.raises(WrongPin):
            keystore.unlock(bad)
    store.close()
    reopened = KeyStore(Store(settings.db_path), settings)
    with pytest.raises(PinLockedOut):
        reopened.unlock(PIN)
    clock.advance(seconds=31)
    reopened.unlock(PIN)
    reopened.store.close()


def test_lockout_is_capped(make_settings, clock):
    settings = make_settings("cap", lockout_max_s=100)
    store = Store(settings.db_path)
    keystore = KeyStore(store, settings)
    keystore.create(PIN)
    waits = []
    for n in range(8):
        with pytest.raises(WrongPin):
            keystore.unlock(f"99{n:02d}")
        if n >= 2:
            with pytest.raises(PinLockedOut) as locked:
                keystore.unlock(PIN)
            waits.append(locked.value.seconds_left)
            clock.advance(seconds=locked.value.seconds_left)
    assert waits == [30, 60, 100, 100, 100, 100]
    store.close()


def test_change_pin_rewraps(keystore):
    keys = keystore.create(PIN)
    keystore.change_pin(PIN, "97531")
    keystore.lock()
    with pytest.raises(WrongPin):
        keystore.unlock(PIN)
    assert keystore.unlock("97531").data_key == keys.data_key


def test_a_pin_too_short_is_refused(keystore):
    with pytest.raises(PinError, match="at least 4"):
        keystore.create("12")


def test_device_actions_need_the_pin(device):
    device.lock()
    with pytest.raises(StoreLocked):
        device.record_check_in("ok")
    device.unlock(PIN)
    assert device.record_check_in("ok").kind == "check_in"


def test_reopened_device_unlocks_with_its_pin(device, make_settings, fake):
    saved = device.record_check_in("ok", notes="first")
    data_dir = device.settings.data_dir
    device.close()
    again = Device(make_settings(data_dir.name))
    again.unlock(PIN)
    assert again.outbox_items()[0]["record_id"] == saved.record_id
    again.close()
