"""The sync engine: settle per item, receipts, crash safety of push and pull, key pinning."""
from __future__ import annotations

import pytest

from tests.mobile.core.conftest import PIN

from mobile.core.services import Device
from mobile.core.sync.engine import SyncResult
from shared import protocol


def test_accepted_leave_the_outbox_and_a_verified_receipt_is_kept(device, fake):
    saved = [device.record_check_in("ok") for _ in range(3)]
    result = device.sync_now()
    assert result.ok and result.accepted == 3
    assert device.outbox_items() == []
    receipt = device.recent_receipts()[0]
    assert {i["rid"] for i in receipt["items"]} == {s.record_id for s in saved}
    assert receipt["device_id"] == device.enrolment()["device_id"]


def test_rejected_items_stay_with_the_servers_reason(device, fake):
    bad = device.record_check_in("ok")
    good = device.record_check_in("ok")
    fake.rejections[bad.record_id] = ("not_permitted", "this worker may not check in for another")
    result = device.sync_now()
    assert result.ok and (result.accepted, result.rejected) == (1, 1)
    status = device.sync_status()
    assert status["pending_total"] == 0 and status["rejected_total"] == 1
    assert status["rejected"][0]["record_id"] == bad.record_id
    assert (status["rejected"][0]["reason"], status["rejected"][0]["message"]) == (
        "not_permitted", "this worker may not check in for another")
    assert good.record_id in {rid for rid, _ in fake.revisions}
    # a later sync does not resend it; retry_rejected queues it again
    assert device.sync_now().pushed == 0
    del fake.rejections[bad.record_id]
    assert device.retry_rejected() == 1
    assert device.sync_now().accepted == 1


def test_answer_lost_after_commit_is_resent_and_counted_once(device, fake):
    saved = device.record_check_in("sos")
    fake.drop(protocol.PUSH_PATH, when="after", times=1)
    result = device.sync_now()  # the client retries the same bytes
    assert result.ok and result.duplicate == 1 and result.accepted == 0
    assert list(fake.revisions) == [(saved.record_id, saved.rev)]
    assert device.outbox_items() == []


def test_network_down_keeps_everything_for_later(device, fake, sleeps):
    device.record_check_in("ok")
    fake.drop(protocol.KEYS_PATH, times=100)
    result = device.sync_now()
    assert not result.ok and result.error.reason == "network_error"
    assert len(device.outbox_items()) == 1
    assert device.sync_status()["last_error"]["reason"] == "network_error"
    fake.faults.clear()
    assert device.sync_now().accepted == 1
    assert device.sync_status()["last_error"] is None


def test_push_fails_midway_then_resumes_without_duplicates(make_device, fake):
    fake.limits = protocol.Limits(max_items_per_batch=5)
    device = make_device(max_attempts=1)
    for _ in range(12):
        device.record_check_in("ok")
    fake.drop(protocol.PUSH_PATH, when="before")  # first batch is lost on the way
    first = device.sync_now()
    assert not first.ok and len(device.outbox_items()) == 12
    second = device.sync_now()
    assert second.ok and second.accepted == 12 and len(fake.revisions) == 12


def test_a_receipt_not_signed_by_a_pinned_key_is_refused(device, fake):
    device.record_check_in("ok")
    real = fake.sign_private[fake.keys[0]["kid"]]
    from shared import crypto
    fake.sign_private[fake.keys[0]["kid"]] = crypto.generate_signing_keypair()[0]
    result = device.sync_now()
    assert not result.ok and result.error.reason == "receipt_invalid"
    assert len(device.outbox_items()) == 1  # kept: resending is harmless, the server answers duplicate
    fake.sign_private[fake.keys[0]["kid"]] = real
    result = device.sync_now()
    assert result.ok and result.duplicate == 1 and device.outbox_items() == []


def test_pull_applies_pages_and_moves_the_cursor(make_device, fake):
    fake.limits = protocol.Limits(default_page_size=3)
    jobs = [fake.add_job() for _ in range(8)]
    device = make_device()
    result = device.sync_now()
    assert result.ok and result.pulled == 8 and result.pages == 3
    assert device.store.get_cursor() == 8
    assert {j["id"] for j in device.list_my_jobs()} == set(jobs)


def test_cursor_is_saved_with_its_page_atomically(make_device, fake, monkeypatch):
    fake.limits = protocol.Limits(default_page_size=4)
    for _ in range(8):
        fake.add_job()
    device = make_device()
    original = device.store.set_cursor
    calls = {"n": 0}

    def crash_on_second_page(value, at, name="feed"):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("app killed between applying page 2 and saving its cursor")
        original(value, at, name)

    monkeypatch.setattr(device.store, "set_cursor", crash_on_second_page)
    with pytest.raises(KeyboardInterrupt):
        device.sync_now()
    monkeypatch.setattr(device.store, "set_cursor", original)
    # page 1 and its cursor are saved; nothing of page 2 is
    assert device.store.get_cursor() == 4
    assert len(device.list_my_jobs()) == 4
    result = device.sync_now()
    assert result.ok and result.pulled == 4 and device.store.get_cursor() == 8
    assert len(device.list_my_jobs()) == 8


def test_kill_between_push_and_cursor_save_loses_and_duplicates_nothing(make_device, fake, monkeypatch):
    device = make_device()
    saved = [device.record_safety_check(36.4) for _ in range(3)]
    monkeypatch.setattr(device.store, "set_cursor", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        device.sync_now()
    monkeypatch.undo()
    assert device.outbox_items() == []  # push was settled before the kill
    device.store.close()
    again = Device(device.settings, session=device.session)
    again.unlock(PIN)
    result = again.sync_now()
    assert result.ok and result.pushed == 0 and result.pulled == 3
    assert len(fake.revisions) == 3 and {r for r, _ in fake.revisions} == {s.record_id for s in saved}
    assert again.store.get_cursor() == 3
    again.close()


def test_a_change_this_app_cannot_read_is_skipped_not_stored(device, fake):
    fake._publish("site_status", "x1", str(fake.clock.tick()), {"schema_version": 2, "site_code": "S-001"}, owner=None)
    result = device.sync_now()
    assert result.ok and result.skipped == 1 and device.store.get_record_row("x1") is None


# --- server key pinning ------------------------------------------------------------------------

def test_unendorsed_key_change_is_refused(device, fake):
    device.record_check_in("ok")
    fake.replace_keys_unendorsed()
    result = device.sync_now()
    assert not result.ok and result.error.reason == "server_key_changed"
    assert len(device.outbox_items()) == 1 and fake.pushes() == []
    assert device.enrolment()["server_key"] == "k1"


def test_key_endorsed_by_an_unknown_key_is_refused(device, fake):
    from shared import crypto
    fake.rotate(endorse=True, endorser=crypto.generate_signing_keypair()[0])
    result = device.sync_now()
    assert result.error and result.error.reason == "server_key_changed"


def test_same_kid_with_other_key_bytes_is_refused(device, fake):
    from shared import crypto
    fake.keys[0]["box_public"] = crypto.b64e(crypto.generate_box_keypair()[1])
    assert device.sync_now().error.reason == "server_key_changed"


def test_endorsed_rotation_is_followed_through_a_chain(device, fake):
    before = device.record_check_in("ok")  # sealed to k1
    fake.rotate()
    fake.rotate()  # the device slept through two rotations
    result = device.sync_now()
    assert result.ok and result.new_keys == ["k2", "k3"] and result.accepted == 1
    assert device.enrolment()["server_key"] == "k3"
    after = device.record_check_in("ok")
    assert device.outbox.items()[0].envelope["h"]["kid"] == "k3"
    assert device.sync_now().accepted == 1
    assert {before.record_id, after.record_id} <= {r for r, _ in fake.revisions}


def test_revoked_device_gets_a_clear_error(device, fake):
    device.record_check_in("ok")
    next(iter(fake.devices.values()))["revoked"] = True
    result = device.sync_now()
    assert result.error.reason == "device_revoked" and len(device.outbox_items()) == 1


def test_sync_result_to_dict_is_plain():
    data = SyncResult(ok=True).to_dict()
    assert data["ok"] is True and data["error"] is None


def test_sync_log_counts(device):
    device.record_check_in("ok")
    device.sync_now()
    last = device.store.last_sync()
    assert last["ok"] == 1 and last["accepted"] == 1 and last["pushed"] == 1
