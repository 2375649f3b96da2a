"""Outbox order and batching: SOS first, then check-ins, safety checks, site status, jobs; batches fit the limits."""
from __future__ import annotations

import json

from shared import protocol
from mobile.core.outbox import BODY_OVERHEAD, Outbox, priority_of

def _save_mix(device, fake):
    job = fake.add_job()
    device.sync_now()
    device.update_job(job, note="parts ordered")                     # repair_job
    device.record_site_status("S-001", "down", power_source="none")  # site_status
    device.record_safety_check(36.5)                                 # safety_check
    device.record_check_in("ok")                                     # check_in
    device.record_check_in("need_help")                              # urgent
    device.record_check_in("sos")                                    # urgent


def test_priority_of_each_kind():
    assert priority_of("check_in", {"status": "sos"}) == priority_of("check_in", {"status": "need_help"}) == 0
    assert [priority_of(k, {"status": "ok"}) for k in ("check_in", "safety_check", "site_status", "repair_job")] == [1, 2, 3, 4]


def test_outbox_lists_in_priority_order_then_save_order(device, fake):
    _save_mix(device, fake)
    items = device.outbox_items()
    assert [i["priority"] for i in items] == [0, 0, 1, 2, 3, 4]
    assert [i["kind"] for i in items] == ["check_in", "check_in", "check_in", "safety_check", "site_status", "repair_job"]
    # ties keep the save order: need_help was saved before sos
    assert items[0]["seq"] < items[1]["seq"]


def test_push_goes_out_in_priority_order(device, fake):
    _save_mix(device, fake)
    fake.pushed_items.clear()
    assert device.sync_now().ok
    kinds = [i["h"]["kind"] for i in fake.pushed_items]
    assert kinds == ["check_in", "check_in", "check_in", "safety_check", "site_status", "repair_job"]


def test_batches_respect_max_items(make_device, fake):
    fake.limits = protocol.Limits(max_items_per_batch=7)
    device = make_device()
    for _ in range(30):
        device.record_check_in("ok")
    result = device.sync_now()
    assert result.ok and result.accepted == 30
    assert fake.pushes() == [7, 7, 7, 7, 2]


def test_batches_respect_max_body_bytes(make_device, fake):
    device = make_device()
    for _ in range(40):
        device.record_check_in("ok", notes="x" * 300)
    size = device.outbox.items()[0].size
    fake.limits = protocol.Limits(max_body_bytes=BODY_OVERHEAD + 5 * (size + 1) + 10)
    result = device.sync_now()
    assert result.ok and result.accepted == 40
    assert max(fake.pushes()) <= 5 and sum(fake.pushes()) == 40


def test_next_batch_never_exceeds_the_byte_budget(device):
    for n in range(25):
        device.record_check_in("ok", notes="y" * (n * 20))
    outbox = Outbox(device.store)
    limit = 4000
    batch = outbox.next_batch(100, limit)
    body = json.dumps({"items": [i.envelope for i in batch]}, separators=(",", ":"))
    assert len(body) + 300 <= limit and len(batch) >= 1


def test_an_item_that_can_never_fit_is_parked_not_looped(make_device, fake):
    device = make_device()
    device.record_check_in("ok", notes="z" * 400)
    fake.limits = protocol.Limits(max_body_bytes=600)
    result = device.sync_now()
    assert result.ok and result.rejected == 1
    assert device.sync_status()["rejected"][0]["reason"] == "body_too_large"


def test_server_limit_shrink_is_followed(make_device, fake):
    device = make_device()
    for _ in range(12):
        device.record_check_in("ok")
    fake.fail(protocol.PUSH_PATH, 413, "batch_too_large")  # the server's limit changed under us
    result = device.sync_now()
    assert result.ok and result.accepted == 12
