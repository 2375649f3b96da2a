"""Concurrent pushers and a device pulling in a loop: every change seen exactly once, no cursor skip.

Runs on SQLite and, when FIELDWATCH_TEST_DATABASE_URL is set, on PostgreSQL,
where pushes really commit in parallel.
"""
import random
import threading

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.server.conftest import enrol_phone, repair_job


@pytest.fixture
def slow_commits():
    """Widen the window between numbering a change and committing it, in pushing threads only."""
    local = threading.local()

    def delay(session):
        if getattr(local, "slow", False):
            import time
            time.sleep(random.uniform(0, 0.03))

    event.listen(Session, "before_commit", delay)
    yield local
    event.remove(Session, "before_commit", delay)


def test_pulling_device_sees_every_change_exactly_once(app, client, org, slow_commits):
    from server.models import User
    from server.extensions import db

    pushers = [enrol_phone(client, worker=None, label=f"pusher {i}") for i in range(4)]
    watcher = enrol_phone(client, worker=None, label="watcher")
    db.session.remove()
    batches, per_batch = 6, 20
    sent: set[str] = set()
    errors: list = []
    done = threading.Event()

    def push(phone):
        try:
            slow_commits.slow = True
            with app.app_context():
                c = app.test_client()
                for b in range(batches):
                    # new jobs of the watcher's team: no row is shared between pushers, nothing serialises them but the feed
                    items = [phone.seal("repair_job", repair_job()) for _ in range(per_batch)]
                    r = c.post("/api/v1/sync/push", json={"items": items}, headers=phone.auth)
                    assert r.status_code == 200, r.get_json()
                    assert all(x["status"] == "accepted" for x in r.get_json()["results"])
                    sent.update(i["h"]["rid"] for i in items)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    seen: list[int] = []
    rids: list[str] = []

    def pull_until_done():
        cursor = 0
        with app.app_context():
            c = app.test_client()
            while True:
                finished = done.is_set()  # read before pulling: the last pull starts after every push committed
                page = c.get("/api/v1/sync/pull", query_string={"cursor": cursor, "limit": 37}, headers=watcher.auth).get_json()
                for change in page["changes"]:
                    seen.append(change["seq"])
                    rids.append(change["rid"])
                assert page["next_cursor"] >= cursor
                cursor = page["next_cursor"]
                if finished and not page["has_more"]:
                    return

    threads = [threading.Thread(target=push, args=(p,)) for p in pushers]
    puller = threading.Thread(target=pull_until_done)
    puller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    puller.join(120)
    assert not errors, errors
    assert len(sent) == 4 * batches * per_batch
    assert len(seen) == len(set(seen)), "a change was delivered twice"
    assert set(rids) == sent, f"{len(sent - set(rids))} changes skipped by the cursor"
    assert seen == sorted(seen)


def test_concurrent_edits_of_one_job_lose_no_note(app, client, org, slow_commits):
    # Every pusher appends notes to the same job at once: each merge must start from the state the
    # previous one committed (on PostgreSQL the state row is read FOR UPDATE), or notes vanish.
    from server.extensions import db
    from server.models import RecordState

    pushers = [enrol_phone(client, worker=None, label=f"editor {i}") for i in range(4)]
    db.session.remove()
    job = "job-shared"
    first = pushers[0].push([pushers[0].seal("repair_job", repair_job(), rid=job)])
    assert first.get_json()["results"][0]["status"] == "accepted"
    errors: list = []

    def edit(i, phone):
        try:
            slow_commits.slow = True
            with app.app_context():
                c = app.test_client()
                for n in range(5):
                    note = {"id": f"n{i}-{n}", "at": "2026-11-26T08:00:00+07:00", "author": f"W00{i}", "text": f"note {n} by {i}"}
                    item = phone.seal("repair_job", repair_job(notes=[note], changed=["notes"]), rid=job)
                    r = c.post("/api/v1/sync/push", json={"items": [item]}, headers=phone.auth)
                    assert r.status_code == 200 and r.get_json()["results"][0]["status"] == "accepted", r.get_json()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(i, p)) for i, p in enumerate(pushers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    db.session.remove()
    notes = {n["id"] for n in db.session.get(RecordState, job).body["notes"]}
    assert notes == {f"n{i}-{n}" for i in range(4) for n in range(5)}
