"""A record saved offline reaches the server exactly once, through real network and process faults.

DESIGN §3.1: "Nothing captured is ever lost ... exactly once in effect, through
any mix of: no signal for days, a request dropped, a response dropped after the
server committed, the same batch sent twice, batches out of order, the server
killed mid-batch, the app killed mid-sync."

Everything here is real: a server process (``RealServer``), HTTP over TCP, a
fault proxy with real sockets (:mod:`tests.e2e.faultnet`), SIGKILL of the server
and of a device process. The server's counts are read from its database
read-only, with ``fieldwatch stats --json``, or through the pull API of another
device. Synchronisation is by events and polling with time-outs, never by sleeps.
"""
from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import namedtuple

import pytest

from tests.e2e.faultnet import decompress
from tests.e2e.syncrig import PIN, REPO, RealServer, ServerDB, fieldwatch_stats, reopen

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

Rev = namedtuple("Rev", "record_id rev")
PUSH, PULL = "/sync/push", "/sync/pull"


def offline_records(device, tag: str) -> list:
    """One record of each everyday kind, saved with no network."""
    return [
        device.record_check_in("ok", site_code="HN001", notes=f"{tag} check-in"),
        device.record_safety_check(36.6, ppe=["mask", "helmet"], site_code="HN001"),
        device.record_site_status("HN002", "degraded", power_source="battery", cause=f"{tag} grid outage"),
    ]


def job_rev(update: dict) -> Rev:
    """The revision an ``update_job`` saved."""
    return Rev(update["saved"]["record_id"], update["saved"]["rev"])


def device_outbox(device) -> int:
    return device.sync_status()["pending_total"]


def device_file_counts(data_dir) -> tuple[int, int]:
    """(outbox rows, cursor) read from a device's SQLite file read-only (its process may be running)."""
    con = sqlite3.connect(f"file:{data_dir / 'device.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        outbox = con.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
        row = con.execute("SELECT value FROM cursor").fetchone()
    finally:
        con.close()
    return outbox, (row[0] if row else 0)


# --- (1) the server down for a while ---------------------------------------------------------------

def test_server_down_for_a_while_then_everything_arrives_once(server, server_db, proxy, make_device):
    """Two phones: one talks to the server's port (refused while it is down), one through a gateway (502).

    The server stops right after answering the gateway phone's ``/limits``, so that phone's push itself fails.
    """
    direct, gateway = make_device("down-direct", "W001", via="direct"), make_device("down-gateway", "W001")
    phones = (direct, gateway)
    saved = {id(p): offline_records(p, "before") for p in phones}
    proxy.inject("/limits", "pass", hook=server.stop)
    try:
        mid = gateway.sync_now()
        assert not mid.ok and mid.error.reason == "server_error" and mid.error.status == 502
        assert proxy.actions_on(PUSH) == ["pass"] * gateway.settings.max_attempts  # every push attempt met the 502
        assert server.proc.poll() is not None
        first = direct.sync_now()
        assert not first.ok and first.error.reason == "network_error"
        for phone in phones:  # the technicians keep working; later syncs fail too
            saved[id(phone)] += offline_records(phone, "during")
            again = phone.sync_now()
            assert not again.ok
            status = phone.sync_status()
            assert status["pending_total"] == 6 and status["pending"] == {"check_in": 2, "safety_check": 2, "site_status": 2}
            assert status["last_attempt_ok"] is False and status["last_error"]["reason"] == again.error.reason
            assert status["last_error"]["message"]
            assert server_db.device_revisions(phone.enrolment()["device_id"]) == 0
    finally:
        if server.proc.poll() is not None:
            server.start()
    for phone in phones:
        result = phone.sync_now()
        assert result.ok, result.error
        assert (result.accepted, result.duplicate, result.rejected) == (6, 0, 0)
        assert device_outbox(phone) == 0 and phone.sync_status()["last_error"] is None
        server_db.assert_exactly_once(saved[id(phone)])
    stats = fieldwatch_stats(server)
    for phone in phones:
        mine = next(d for d in stats["devices"] if d["device_id"] == phone.enrolment()["device_id"])
        assert (mine["revisions"], mine["rejected"]) == (6, 0)


# --- (2) connection refused ---------------------------------------------------------------------------

def test_connection_refused_then_accepted_once(server_db, proxy, make_device):
    device = make_device("refused", "W001")
    saved = offline_records(device, "refused")
    seen_before = len(proxy.seen)
    proxy.refuse()  # nothing listens on the device's server port any more
    down = device.sync_now()
    assert not down.ok and down.error.reason == "network_error"
    assert "127.0.0.1" in down.error.message
    assert len(proxy.seen) == seen_before and device_outbox(device) == 3
    proxy.listen()
    proxy.inject("/limits", "pass", hook=proxy.refuse)  # this time the refusals start at the push itself
    mid = device.sync_now()
    assert not mid.ok and mid.error.reason == "network_error"
    assert [p.rsplit("/", 1)[1] for p, _ in proxy.seen[seen_before:]] == ["keys", "limits"]
    assert device_outbox(device) == 3
    assert server_db.revisions({s.record_id for s in saved}) == []
    proxy.listen()
    up = device.sync_now()
    assert up.ok, up.error
    assert (up.accepted, up.duplicate) == (3, 0) and device_outbox(device) == 0
    server_db.assert_exactly_once(saved)


# --- (3) the request dropped ----------------------------------------------------------------------------

def test_request_dropped_before_the_server_sees_it(server_db, proxy, make_device):
    device = make_device("drop-request", "W002")
    saved = offline_records(device, "drop-request")
    attempts = device.settings.max_attempts
    proxy.inject(PUSH, "drop_request", times=attempts)  # every attempt of this sync is lost
    down = device.sync_now()
    assert not down.ok and down.error.reason == "network_error"
    assert device_outbox(device) == 3
    assert server_db.revisions({s.record_id for s in saved}) == []
    proxy.inject(PUSH, "drop_request")  # the next sync loses one more, then its retry goes through
    up = device.sync_now()
    assert up.ok, up.error
    assert (up.accepted, up.duplicate) == (3, 0) and device_outbox(device) == 0
    assert proxy.actions_on(PUSH) == ["drop_request"] * (attempts + 1) + ["pass"]
    server_db.assert_exactly_once(saved)


# --- (4) the response dropped after the server committed ---------------------------------------------------

def _body(raw: bytes) -> bytes:
    """The JSON of a captured HTTP answer, decompressed, without spaces."""
    head, _, body = raw.partition(b"\r\n\r\n")
    encoding = next((line.partition(b":")[2] for line in head.split(b"\r\n") if line.lower().startswith(b"content-encoding:")), b"")
    return decompress(body, encoding).replace(b" ", b"")


def test_response_dropped_after_commit_is_answered_duplicate_and_counted_once(server_db, proxy, make_device):
    device = make_device("drop-response", "W002")
    saved = offline_records(device, "drop-response")
    attempts = device.settings.max_attempts
    faults = proxy.inject(PUSH, "drop_response", times=attempts)
    lost = device.sync_now()
    assert not lost.ok and lost.error.reason == "network_error"
    first, *_ = faults
    assert b'"status":"accepted"' in _body(first.response)  # the server committed the first attempt
    assert all(b'"status":"duplicate"' in _body(f.response) for f in faults[1:])
    server_db.assert_exactly_once(saved)  # stored once although the device never heard back
    assert device_outbox(device) == 3      # ... so the device keeps them
    again = device.sync_now()
    assert again.ok, again.error
    assert (again.accepted, again.duplicate, again.rejected) == (0, 3, 0)
    assert device_outbox(device) == 0
    receipt = device.recent_receipts()[0]
    assert sorted((i["rid"], i["rev"]) for i in receipt["items"]) == sorted((s.record_id, s.rev) for s in saved)
    server_db.assert_exactly_once(saved)


# --- (5) the server killed with SIGKILL in the middle of a batch ------------------------------------------------

def test_server_sigkilled_mid_batch_then_restarted(server, server_db, proxy, make_device):
    device = make_device("kill-server", "W003", synchronous="NORMAL")  # durability of the phone is not under test here
    device_id = device.enrolment()["device_id"]
    saved = []
    for i in range(200):  # two pushes of 100 items: the server dies during the second
        if i % 5 == 0:
            saved.append(device.record_site_status("HN003", "up" if i % 2 else "degraded", power_source="grid"))
        elif i % 7 == 0:
            saved.append(device.record_safety_check(36.5, ppe=["mask"]))
        else:
            saved.append(device.record_check_in("ok", notes=f"round {i}"))
    proxy.inject(PUSH, "pass")
    killed = proxy.inject(PUSH, "after_forward", hook=server.kill)[0]  # SIGKILL once the 2nd batch's bytes are sent
    try:
        result = device.sync_now()
        killed.wait()
        assert server.proc.returncode == -signal.SIGKILL
        assert killed.response == b""  # the server died before answering
        assert not result.ok and result.error.reason in ("network_error", "server_error")
        assert (result.batches, result.accepted) == (1, 100)
        stored = server_db.device_revisions(device_id)
        assert stored in (100, 200), f"a killed batch must be all or nothing, found {stored}"
        assert device_outbox(device) == 100
    finally:
        if server.proc.poll() is not None:
            server.start()
    result = device.sync_now()
    assert result.ok, result.error
    assert result.accepted + result.duplicate == 100 and result.rejected == 0
    assert result.duplicate == stored - 100
    assert device_outbox(device) == 0
    server_db.assert_exactly_once(saved)
    mine = next(d for d in fieldwatch_stats(server)["devices"] if d["device_id"] == device_id)
    assert mine["revisions"] == 200


# --- (6) the app killed between push and cursor save -------------------------------------------------------------

DEVICE_SYNC = "import sys; from mobile.device_cli import main; sys.exit(main())"  # the fieldwatch-device console script


@pytest.mark.parametrize("held", [PUSH, PULL], ids=["killed-before-push-answer", "killed-before-cursor-save"])
def test_app_killed_mid_sync_loses_and_duplicates_nothing(server_db, proxy, make_device, held):
    device = make_device(f"app-kill-{held.rsplit('/', 1)[1]}", "W004")
    data_dir = device.settings.data_dir
    assert device.sync_now().ok  # a cursor of its own before the faulty sync
    saved = offline_records(device, "app-kill")
    job = device.report_fault("HN001", "power", "high", "Rectifier alarm")
    saved.append(job)
    saved.append(job_rev(device.update_job(job.record_id, to="acknowledged", note="on my way")))
    cursor_before = device.store.get_cursor()
    device.close()

    fault = proxy.inject(held, "hold_response")[0]
    app = subprocess.Popen([sys.executable, "-c", DEVICE_SYNC, "--data-dir", str(data_dir), "--pin", PIN, "--json", "sync"],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        fault.wait(timeout=30)  # the server answered; the device process waits for that answer
        server_db.assert_exactly_once(saved)  # the push is committed on the server
        outbox, cursor = device_file_counts(data_dir)
        assert cursor == cursor_before
        assert outbox == (5 if held == PUSH else 0)  # pull held: the push was settled, the cursor not yet saved
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(timeout=10)
        fault.release.set()
    assert app.returncode == -signal.SIGKILL

    restarted = reopen(device)
    try:
        assert restarted.sync_status()["cursor"] == cursor_before
        result = restarted.sync_now()
        assert result.ok, result.error
        if held == PUSH:
            assert (result.pushed, result.accepted, result.duplicate) == (5, 0, 5)
        else:
            assert result.pushed == 0
        assert result.pulled >= 5  # the page the kill interrupted is pulled again and merges idempotently
        assert restarted.sync_status()["pending_total"] == 0
        assert restarted.store.get_cursor() == result.cursor == server_db.max_seq()
        assert restarted.get_job(job.record_id)["status"] == "acknowledged"
        assert [n["text"] for n in restarted.get_job(job.record_id)["notes"]] == ["on my way"]
        ids = {s.record_id for s in saved}
        local = restarted.store.query("SELECT id FROM records WHERE id IN (%s)" % ",".join("?" * len(ids)), tuple(ids))
        assert len(local) == len(ids)
        assert restarted.sync_now().pulled == 0  # the cursor is consistent: nothing comes back twice
    finally:
        restarted.close()
    server_db.assert_exactly_once(saved)


# --- (7) the same batch delivered twice -------------------------------------------------------------------------------

def test_same_batch_delivered_twice_back_to_back(server_db, proxy, make_device):
    device = make_device("twice", "W001")
    saved = offline_records(device, "twice")
    proxy.inject(PUSH, "duplicate")
    result = device.sync_now()
    assert result.ok, result.error
    assert (result.accepted, result.duplicate) == (0, 3)  # the device heard the second delivery's answer
    assert proxy.actions_on(PUSH) == ["duplicate"]
    server_db.assert_exactly_once(saved)


def test_a_late_copy_of_a_delivered_batch_changes_nothing(server_db, proxy, make_device):
    device = make_device("late-copy", "W001")
    saved = offline_records(device, "late-copy")
    assert device.sync_now().accepted == 3
    copy = proxy.pushes[-1]
    later = offline_records(device, "after")
    assert device.sync_now().accepted == 3
    feed = server_db.max_seq()
    status, answer = proxy.deliver(copy)  # the first batch, delayed in the network, arrives again
    assert status == 200 and [r["status"] for r in answer["results"]] == ["duplicate"] * 3
    assert server_db.max_seq() == feed  # no new change in the feed
    server_db.assert_exactly_once(saved + later)


def test_two_copies_of_one_batch_at_the_same_time(server_db, proxy, make_device):
    device = make_device("concurrent-copies", "W002", max_attempts=1)
    saved = offline_records(device, "concurrent")
    captured = proxy.inject(PUSH, "capture")[0]
    lost = device.sync_now()
    assert not lost.ok and captured.reached.is_set()
    answers = [None, None]

    def send(i):
        answers[i] = proxy.deliver(captured.request)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [a[0] for a in answers] == [200, 200]
    for item in range(3):
        assert sorted(a[1]["results"][item]["status"] for a in answers) == ["accepted", "duplicate"]
    server_db.assert_exactly_once(saved)
    retry = device.sync_now()
    assert retry.ok and (retry.accepted, retry.duplicate) == (0, 3)
    server_db.assert_exactly_once(saved)


# --- (8) batches out of order -----------------------------------------------------------------------------------------

STATE_FIELDS = ("rev", "kind", "status", "site_code", "team_id", "region_id", "worker_id", "occurred_at")


def _comparable(state: dict) -> dict:
    out = {k: state[k] for k in STATE_FIELDS}
    for k in ("body", "field_revs"):
        out[k] = json.loads(state[k]) if isinstance(state[k], str) else state[k]
    return out


def test_later_batch_first_converges_to_the_in_order_state(server, server_db, proxy, make_device, tmp_path):
    """One device's two pushes reach a second server, restored from a backup, in reverse order: same end state."""
    device = make_device("reorder", "W002")
    device.record_safety_check(36.6, ppe=["mask"])  # fit for duty: needed to accept a job
    assert device.sync_now().ok
    twin_base = tmp_path / "twin"
    twin_base.mkdir()
    src = sqlite3.connect(f"file:{server_db.path}?mode=ro", uri=True)
    dst = sqlite3.connect(twin_base / "fieldwatch.db")
    src.backup(dst)  # the server as it was before either batch
    src.close()
    dst.close()
    shutil.copytree(server.keys_dir, twin_base / "keys")

    job = device.report_fault("HN003", "transmission", "critical", "Microwave link down", note="reported by D")
    early = [job, job_rev(device.update_job(job.record_id, to="acknowledged")),
             device.record_site_status("HN003", "down", power_source="battery", cause="link")]
    assert device.sync_now().accepted == 3
    first = proxy.pushes[-1]
    late = [job_rev(device.update_job(job.record_id, to="en_route", note="leaving the depot")),
            job_rev(device.update_job(job.record_id, to="on_site", actions=["opened cabinet"])),
            job_rev(device.update_job(job.record_id, to="restored", note="ODU replaced", parts=[("odu", 1)])),
            device.record_site_status("HN003", "up", power_source="grid")]
    assert device.sync_now().accepted == 4
    second = proxy.pushes[-1]
    server_db.assert_exactly_once(early + late)

    twin = RealServer(twin_base, MAX_ITEMS_PER_BATCH=100)
    twin.start()
    try:
        status, answer = proxy.deliver(second, port=twin.port)  # the later batch first ...
        assert status == 200 and [r["status"] for r in answer["results"]] == ["accepted"] * 4
        status, answer = proxy.deliver(first, port=twin.port)   # ... then the earlier one
        assert status == 200 and [r["status"] for r in answer["results"]] == ["accepted"] * 3
        twin_db = ServerDB(twin)
        twin_db.assert_exactly_once(early + late)
        in_order, reversed_ = _comparable(server_db.state_of(job.record_id)), _comparable(twin_db.state_of(job.record_id))
        assert reversed_["status"] == in_order["status"] == "restored"
        assert reversed_["body"] == in_order["body"]
        assert reversed_ == in_order
        site_sql = "SELECT status_state, status_rev, status_power FROM site WHERE code = 'HN003'"
        assert twin_db.rows(site_sql) == server_db.rows(site_sql) == [("up", late[-1].rev, "grid")]

        # another device of the team, on the reordered server, pulls the same job the device holds
        observer = make_device("reorder-observer", "W003", on=twin)
        pulled = observer.sync_now()
        assert pulled.ok, pulled.error
        assert device.sync_now().ok
        seen, own = observer.get_job(job.record_id), device.get_job(job.record_id)
        assert seen["status"] == own["status"] == "restored"
        assert (seen["steps"], seen["notes"], seen["parts"], seen["actions"]) == (own["steps"], own["notes"], own["parts"], own["actions"])
    finally:
        twin.stop()


def test_two_devices_batches_delivered_in_reverse_order_converge(server, server_db, proxy, make_device):
    """Device A pushes its earlier edit, B its later one; both batches are held and delivered B first, then A."""
    a = make_device("reverse-a", "W002", max_attempts=1)
    b = make_device("reverse-b", "W003", max_attempts=1)
    for device in (a, b):
        device.record_safety_check(36.6, ppe=["mask"])  # fit for duty: needed to accept a job
    job = a.report_fault("HN002", "power", "high", "Mains failure").record_id
    a.update_job(job, to="acknowledged")
    a.update_job(job, to="en_route")
    assert a.sync_now().ok and b.sync_now().ok
    assert b.get_job(job)["status"] == "en_route"

    from_a = proxy.inject(PUSH, "capture")[0]
    a_on_site = a.update_job(job, to="on_site", note="A: on site, cabinet open")  # earlier
    assert not a.sync_now().ok and from_a.reached.is_set()
    from_b = proxy.inject(PUSH, "capture")[0]
    b.update_job(job, to="on_site", note="B: on site too")
    b.update_job(job, to="restored", note="B: rectifier replaced", parts=[("rectifier", 1)])  # later
    assert not b.sync_now().ok and from_b.reached.is_set()

    for captured, n in ((from_b, 2), (from_a, 1)):  # reverse order of sending
        status, answer = proxy.deliver(captured.request)
        assert status == 200 and [r["status"] for r in answer["results"]] == ["accepted"] * n

    for device in (a, b, a):
        result = device.sync_now()
        assert result.ok, result.error
    assert device_outbox(a) == device_outbox(b) == 0
    ja, jb = a.get_job(job), b.get_job(job)
    server_state = json.loads(server_db.state_of(job)["body"])
    assert ja["status"] == jb["status"] == server_state["status"] == "restored"
    notes = {"A: on site, cabinet open", "B: on site too", "B: rectifier replaced"}
    assert {n["text"] for n in ja["notes"]} == {n["text"] for n in jb["notes"]} == {n["text"] for n in server_state["notes"]} == notes
    assert ja["steps"] == jb["steps"] == server_state["steps"]
    assert ja["steps"]["on_site"] == a_on_site["steps"]["on_site"]  # each step keeps its first time (A's)
    assert len(server_db.revisions({job})) == 6
