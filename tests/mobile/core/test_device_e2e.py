"""End to end: the device core against a real server process over real HTTP."""
from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest
import requests

from tests.mobile.core.conftest import PIN
from mobile.core.config import DeviceSettings, local_now
from mobile.core.services import Device
from tests.mobile.core.realserver import SITES, RealServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class RecordingSession(requests.Session):
    """A real Session that remembers the kinds of every envelope pushed, in order, and each batch size."""

    def __init__(self):
        super().__init__()
        self.batches: list[list[str]] = []

    def request(self, method, url, data=None, headers=None, **kwargs):
        if url.endswith("/sync/push") and data:
            raw = gzip.decompress(data) if (headers or {}).get("Content-Encoding") == "gzip" else data
            self.batches.append([item["h"]["kind"] for item in json.loads(raw)["items"]])
        return super().request(method, url, data=data, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RealServer(tmp_path_factory.mktemp("server"), MAX_ITEMS_PER_BATCH=200)
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def phone(server, tmp_path, sleeps):
    made = []

    def make(name: str = "phone", worker: str = "W001", **overrides) -> Device:
        settings = DeviceSettings(data_dir=tmp_path / name, scrypt_n=2**4, sleep=sleeps, jitter=lambda: 0.5, **overrides)
        device = Device(settings, session=RecordingSession())
        device.enrol(server.url, server.new_codes(1, worker)[0], f"e2e {name}", PIN)
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


def _server_revisions(server, device_id: str) -> int:
    return server.query("SELECT COUNT(*) FROM revision WHERE device_id = :d", {"d": device_id})[0][0]


def test_enrol_record_sync_against_the_real_server(server, phone):
    device = phone()
    info = device.enrolment()
    assert info["worker_id"] == "W001" and info["server_url"] == server.url
    device.record_safety_check(36.5, ppe=["mask", "helmet"], site_code="HN001")
    device.record_check_in("ok", site_code="HN001", position={"lat": 21.0, "lon": 105.8})
    device.record_site_status("HN002", "down", power_source="battery", cause="grid outage")
    result = device.sync_now()
    assert result.ok, result.error
    assert (result.accepted, result.rejected) == (3, 0) and result.pulled >= 3
    assert device.sync_status()["pending_total"] == 0
    receipt = device.recent_receipts()[0]
    assert receipt["device_id"] == info["device_id"] and len(receipt["items"]) == 3
    again = device.sync_now()
    assert again.ok and again.pushed == 0
    sites = {s["code"]: s for s in device.list_region_sites(refresh=True)}
    assert set(sites) == set(SITES) and sites["HN002"]["status"]["state"] == "down"


def test_a_response_lost_after_commit_is_not_duplicated(server, phone, monkeypatch):
    device = phone("lost-answer")
    saved = device.record_check_in("need_help", site_code="HN001")
    session = device.session
    real = session.request
    state = {"dropped": False}

    def drop_first_push_answer(method, url, **kwargs):
        response = real(method, url, **kwargs)  # the server has committed
        if url.endswith("/sync/push") and not state["dropped"]:
            state["dropped"] = True
            raise requests.ConnectionError("answer lost on the way back")
        return response

    monkeypatch.setattr(session, "request", drop_first_push_answer)
    result = device.sync_now()
    assert result.ok and result.duplicate == 1 and result.accepted == 0
    rows = server.query("SELECT COUNT(*) FROM revision WHERE record_id = :r", {"r": saved.record_id})
    assert rows[0][0] == 1


def test_a_week_offline_then_one_sync_in_priority_order(server, phone):
    """Thousands of records saved offline over a simulated week reach the server in one sync, SOS first."""
    clock = {"now": local_now() - timedelta(days=7)}
    device = phone("week", now=lambda: clock["now"], synchronous="NORMAL")  # durability mode is not under test here
    device.sync_now()
    for day in range(7):
        device.record_safety_check(36.4 + day / 10, ppe=["mask"], site_code="HN001")
        for slot in range(200):  # 1,414 records: a heavy week, kept so the suite stays near a minute
            clock["now"] += timedelta(seconds=60)
            if slot % 3 == 0:
                device.record_check_in("ok", site_code=SITES[slot % 3])
            elif slot % 3 == 1:
                device.record_site_status(SITES[slot % 3], "up" if slot % 5 else "degraded", power_source="grid")
            else:
                device.record_check_in("ok", notes=f"day {day} slot {slot}")
        device.record_check_in("need_help" if day % 2 else "sos", site_code="HN003")
        clock["now"] += timedelta(hours=14)
    total = device.sync_status()["pending_total"]
    assert total == 7 * 202
    result = device.sync_now()
    assert result.ok, result.error
    assert result.accepted == total and result.rejected == 0
    batches = device.session.batches[-(result.batches):]
    assert all(len(b) <= 200 for b in batches) and sum(map(len, batches)) == total
    sent = [k for batch in batches for k in batch]
    urgent = 7
    assert sent[:urgent] == ["check_in"] * urgent
    rank = {"check_in": 1, "safety_check": 2, "site_status": 3, "repair_job": 4}
    assert [rank[k] for k in sent[urgent:]] == sorted(rank[k] for k in sent[urgent:])
    assert _server_revisions(server, device.enrolment()["device_id"]) == total


def test_two_devices_converge_on_a_job(server, phone):
    a, b = phone("a", "W002"), phone("b", "W003")
    for device in (a, b):
        device.record_safety_check(36.6, ppe=["mask"])
    job = a.report_fault("HN003", "power", "critical", "Rectifier down").record_id
    assert a.sync_now().ok and b.sync_now().ok
    a.update_job(job, to="acknowledged")
    a.update_job(job, to="en_route")
    assert a.sync_now().ok and b.sync_now().ok
    assert b.get_job(job)["status"] == "en_route"
    a.update_job(job, to="on_site", note="A: on site, cabinet open")  # both offline from here
    b.update_job(job, to="on_site", note="B: on site too")
    b.update_job(job, to="restored", note="B: rectifier replaced", parts=[("rectifier", 1)])
    for device in (a, b, a):
        assert device.sync_now().ok
    ja, jb = a.get_job(job), b.get_job(job)
    assert ja["status"] == jb["status"] == "restored"
    assert {n["text"] for n in ja["notes"]} == {n["text"] for n in jb["notes"]} == {
        "A: on site, cabinet open", "B: on site too", "B: rectifier replaced"}
    assert ja["steps"] == jb["steps"]
    assert ja["steps"]["on_site"] == min(ja["steps"]["on_site"], jb["steps"]["on_site"])


def test_validation_on_device_and_rejections_from_the_server(server, phone):
    device = phone("reject")
    device.record_check_in("ok", site_code="NOPE999")  # the device cannot know every site code
    result = device.sync_now()
    assert result.ok
    status = device.sync_status()
    assert status["pending_total"] == 0
    # whatever the server decides, nothing is lost: accepted, or kept with its reason
    assert result.accepted + status["rejected_total"] == 1
    for item in status["rejected"]:
        assert item["reason"] and item["message"]


def test_revoked_device_is_told_clearly(server, phone):
    device = phone("revoked")
    device.record_check_in("ok")
    server.revoke(device.enrolment()["device_id"])
    result = device.sync_now()
    assert not result.ok and result.error.reason == "device_revoked"
    assert device.sync_status()["pending_total"] == 1


def test_server_killed_and_restarted(server, phone):
    device = phone("kill", max_attempts=2)
    saved = [device.record_check_in("ok") for _ in range(5)]
    server.kill()
    try:
        down = device.sync_now()
        assert not down.ok and down.error.reason == "network_error"
        assert device.sync_status()["pending_total"] == 5
    finally:
        server.start()
    up = device.sync_now()
    assert up.ok and up.accepted == 5
    ids = {s.record_id for s in saved}
    rows = server.query("SELECT record_id FROM revision WHERE device_id = :d", {"d": device.enrolment()["device_id"]})
    assert {r[0] for r in rows} == ids and len(rows) == 5

# Network faults through a real TCP proxy are in tests/e2e/test_sync_faults.py.
