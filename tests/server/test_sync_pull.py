from tests.server.conftest import check_in, enrol_phone, repair_job, safety_check, site_status


def _drain(phone, cursor=0, limit=None):
    seen, pages = [], 0
    while True:
        page = phone.pull(cursor, limit).get_json()
        seen += page["changes"]
        cursor = page["next_cursor"]
        pages += 1
        if not page["has_more"]:
            return seen, cursor, pages


def test_pull_pages_in_order_with_cursor(phone):
    phone.push([phone.seal("check_in", check_in()) for _ in range(7)])
    seen, cursor, pages = _drain(phone, limit=3)
    assert len(seen) == 7 and pages == 3
    assert [c["seq"] for c in seen] == sorted(c["seq"] for c in seen)
    assert phone.pull(cursor).get_json()["changes"] == []


def test_device_sees_only_what_it_may(client, org, phone):
    far = enrol_phone(client, team="HP-T1", worker="W003", label="hai phong")
    mate = enrol_phone(client, worker="W002", label="team mate")
    phone.push([phone.seal("safety_check", safety_check(temperature_c=36.9)), phone.seal("site_status", site_status("HN002")),
                phone.seal("repair_job", repair_job(), rid="job-hn")])
    far.push([far.seal("check_in", check_in(worker="W003", site_code="HP001")), far.seal("site_status", site_status("HP001"))])

    mine = {c["kind"]: c for c in _drain(phone)[0]}
    assert set(mine) == {"safety_check", "site_status", "repair_job"}
    assert mine["safety_check"]["body"]["temperature_c"] == 36.9  # own health data comes back whole
    mate_kinds = sorted(c["kind"] for c in _drain(mate)[0])
    assert mate_kinds == ["repair_job", "site_status"]  # not another worker's safety check
    far_kinds = sorted(c["kind"] for c in _drain(far)[0])
    assert far_kinds == ["check_in", "site_status"]


def test_status_reports_counts(phone):
    phone.push([phone.seal("check_in", check_in())])
    data = phone.client.get("/api/v1/sync/status", headers=phone.auth).get_json()
    assert data["accepted"] == 1 and data["status"] == "active" and data["last_push_at"]


def test_pull_carries_the_device_settings(phone):
    settings = phone.pull().get_json()["settings"]
    assert settings["check_in_interval_minutes"] == 60 and "critical" in settings["response_targets"]


def test_pulls_send_changed_targets_at_once_from_this_process_and_within_the_ttl_from_others(app, org, phone, monkeypatch):
    import time

    from server.extensions import db
    from server.models import ResponseTarget
    from server.services.admin import set_target
    from tests.server.services.conftest import scope_of

    restore = lambda: phone.pull().get_json()["settings"]["response_targets"]["high"]["restore_minutes"]
    before = restore()
    set_target(scope_of(org.users["admin"]), "high", 50, 60, before + 1)
    db.session.commit()
    assert restore() == before + 1  # changed here: the next pull has it
    db.session.execute(ResponseTarget.__table__.update().where(ResponseTarget.criticality == "high").values(restore_minutes=before + 2))
    db.session.commit()  # as another server process would
    assert restore() == before + 1  # cached for DEVICE_TARGETS_SECONDS
    later = time.monotonic() + app.config["DEVICE_TARGETS_SECONDS"]
    monkeypatch.setattr("server.services.jobs.time.monotonic", lambda: later)
    assert restore() == before + 2


def test_pull_pages_are_gzipped_for_clients_that_ask(phone):
    import gzip
    import json

    phone.push([phone.seal("check_in", check_in(notes="waiting for the generator " * 10)) for _ in range(20)])
    r = phone.client.get("/api/v1/sync/pull", headers={**phone.auth, "Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    page = json.loads(gzip.decompress(r.get_data()))
    assert len(page["changes"]) == 20 and len(r.get_data()) < len(json.dumps(page)) / 3
    assert "Content-Encoding" not in phone.pull().headers  # a client that does not ask gets plain JSON


def test_pull_pages_are_zstd_for_clients_that_prefer_it(phone):
    import json

    from backports import zstd

    phone.push([phone.seal("check_in", check_in(notes="waiting for the generator " * 10)) for _ in range(20)])
    r = phone.client.get("/api/v1/sync/pull", headers={**phone.auth, "Accept-Encoding": "gzip, deflate, zstd"})
    assert r.headers["Content-Encoding"] == "zstd"
    page = json.loads(zstd.decompress(r.get_data()))
    assert len(page["changes"]) == 20 and len(r.get_data()) < len(json.dumps(page)) / 3


def test_small_pages_interleave_every_kind_the_device_sees_in_feed_order(phone):
    # Each visibility rule is read as its own index range; a page must still be the next N changes of all of them.
    kinds = ["check_in", "site_status", "repair_job", "safety_check", "site_status", "check_in", "repair_job", "site_status"]
    bodies = {"check_in": check_in, "site_status": lambda: site_status("HN002"), "repair_job": repair_job,
              "safety_check": lambda: safety_check(temperature_c=36.5)}
    for kind in kinds:  # one push each: the feed interleaves the kinds
        assert phone.push([phone.seal(kind, bodies[kind]())]).status_code == 200
    everything, _, _ = _drain(phone)
    for limit in (1, 2, 3):
        paged, cursor, pages = _drain(phone, limit=limit)
        assert [c["seq"] for c in paged] == [c["seq"] for c in everything]
        assert [c["kind"] for c in paged] == kinds and pages >= len(kinds) // limit


def test_health_fields_come_back_inside_the_body_and_other_bodies_unchanged(phone):
    sent = site_status("HN002")
    phone.push([phone.seal("safety_check", safety_check(temperature_c=37.1, symptoms=["cough"])), phone.seal("site_status", sent)])
    changes = {c["kind"]: c["body"] for c in _drain(phone)[0]}
    assert changes["safety_check"]["temperature_c"] == 37.1 and changes["safety_check"]["symptoms"] == ["cough"]
    assert changes["site_status"] == sent


def test_a_pull_runs_in_autocommit_on_postgresql_saving_its_begin_and_commit(app, phone):
    from sqlalchemy import event

    from server.extensions import db

    phone.push([phone.seal("check_in", check_in())])
    levels, drivers = [], set()

    def grab(conn, cursor, statement, params, context, many):
        if "FROM device" in statement or "FROM change" in statement or statement.startswith("UPDATE device"):
            driver = conn.connection.driver_connection
            levels.append(getattr(driver, "autocommit", None))
            drivers.add(id(driver))

    db.session.commit()  # the test's own reads end here, as a request's session starts empty
    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        assert len(phone.pull().get_json()["changes"]) == 1
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    # authentication and the device's report; the page between them is read with the driver's own cursor on
    # the same connection (feed._page_rows), which SQLAlchemy's events do not see
    assert len(levels) == 2 and len(drivers) == 1
    if db.engine.dialect.name == "postgresql":
        assert levels == [True, True]  # psycopg's autocommit
    else:
        assert not any(levels)  # SQLite keeps its transaction
