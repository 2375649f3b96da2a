import gzip
import json

from sqlalchemy import func, select

from server.extensions import db
from server.models import Change, QuarantineItem, RecordState, Revision
from shared import crypto
from shared.signing import verify_document
from tests.server.conftest import check_in, enrol_phone, repair_job, safety_check, site_status


def _count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_push_accepts_and_signs_a_receipt(phone):
    items = [phone.seal("safety_check", safety_check()), phone.seal("check_in", check_in())]
    r = phone.push(items, outbox_depth=0, app_version="1.0.0", device_time="2026-11-26T01:00:00+00:00")
    assert r.status_code == 200, r.get_json()
    data = r.get_json()
    assert [x["status"] for x in data["results"]] == ["accepted", "accepted"]
    receipt = data["receipt"]
    key = next(k for k in phone.server_keys if k["kid"] == receipt["kid"])
    assert verify_document(crypto.b64d(key["sign_public"]), receipt)
    assert {i["rid"] for i in receipt["items"]} == {i["h"]["rid"] for i in items}
    receipt["items"][0]["rev"] = "forged"
    assert not verify_document(crypto.b64d(key["sign_public"]), receipt)
    assert _count(Revision) == 2 and _count(Change) == 2


def test_same_batch_twice_stores_nothing_twice(phone):
    items = [phone.seal("check_in", check_in()) for _ in range(5)]
    assert all(x["status"] == "accepted" for x in phone.push(items).get_json()["results"])
    # a response lost after commit, then the retry: every item is "duplicate"
    again = phone.push(items).get_json()
    assert [x["status"] for x in again["results"]] == ["duplicate"] * 5
    assert len(again["receipt"]["items"]) == 5
    assert _count(Revision) == 5 and _count(Change) == 5 and _count(RecordState) == 5


def test_repeat_inside_one_batch_is_a_duplicate(phone):
    item = phone.seal("check_in", check_in())
    assert [x["status"] for x in phone.push([item, item]).get_json()["results"]] == ["accepted", "duplicate"]


def test_bad_item_does_not_block_the_other_99(phone):
    items = [phone.seal("check_in", check_in()) for _ in range(100)]
    items[37] = phone.seal("safety_check", safety_check(temperature_c=51))
    results = phone.push(items).get_json()["results"]
    assert sum(r["status"] == "accepted" for r in results) == 99
    bad = results[37]
    assert bad["status"] == "rejected" and bad["reason"] == "invalid_record"
    assert "temperature must be between 30 and 45 °C" in bad["message"]
    q = db.session.query(QuarantineItem).one()
    assert q.reason == "invalid_record" and json.loads(q.raw) == items[37]


def test_same_revision_other_content_is_a_conflict_and_never_overwrites(phone):
    first = phone.seal("check_in", check_in(status="ok"), rid="r1", rev=str(phone.hlc.tick()))
    phone.push([first])
    other = phone.seal("check_in", check_in(status="sos"), rid="r1", rev=first["h"]["rev"])
    result = phone.push([other]).get_json()["results"][0]
    assert result["reason"] == "revision_conflict"
    assert db.session.get(RecordState, "r1").body["status"] == "ok"


def test_tampering_is_caught_and_named(client, org, phone):
    other_phone = enrol_phone(client, worker="W002", label="other")
    base = check_in()

    def changed_header():
        env = phone.seal("check_in", base)
        env["h"]["kind"] = "site_status"
        return env

    def flipped_bit():
        env = phone.seal("check_in", base)
        raw = bytearray(crypto.b64d(env["c"]))
        raw[5] ^= 0x01
        env["c"] = crypto.b64e(bytes(raw))
        return env

    def wrong_server_key():
        env = phone.seal("check_in", base)
        _, stranger = crypto.generate_box_keypair()
        from shared import envelope
        return envelope.seal(env["h"], base, phone.private_key, stranger)

    def other_device_signature():
        from shared import envelope
        header = envelope.make_header(phone.current_key()["kid"], phone.device_id, "rx", "check_in", str(phone.hlc.tick()))
        return envelope.seal(header, base, other_phone.private_key, crypto.b64d(phone.current_key()["box_public"]))

    def replayed_under_other_record():
        env = phone.seal("check_in", base)
        env["h"]["rid"] = "someone-elses-record"
        return env

    def unknown_key_id():
        env = phone.seal("check_in", base)
        env["h"]["kid"] = "k-never"
        return env

    def another_device_in_header():
        return other_phone.seal("check_in", check_in(worker="W002"))

    cases = {
        "header_tampered": changed_header(), "ciphertext_tampered": flipped_bit(), "wrong_server_key": wrong_server_key(),
        "bad_signature": other_device_signature(), "record_id_mismatch": replayed_under_other_record(),
        "unknown_server_key": unknown_key_id(), "device_mismatch": another_device_in_header(),
        "malformed_envelope": {"h": {}, "c": "x"},
    }
    results = phone.push(list(cases.values())).get_json()["results"]
    assert [r["reason"] for r in results] == list(cases)
    stored = {q.reason for q in db.session.query(QuarantineItem)}
    assert stored == set(cases)
    assert _count(Revision) == 0


def test_worker_may_only_record_for_self(phone):
    result = phone.push([phone.seal("check_in", check_in(worker="W003"))]).get_json()["results"][0]
    assert result["reason"] == "not_permitted"


def test_unknown_site_is_named(phone):
    result = phone.push([phone.seal("site_status", site_status(site="NOPE"))]).get_json()["results"][0]
    assert result["reason"] == "invalid_record" and "NOPE" in result["message"]


def test_health_fields_are_not_stored_in_clear(app, phone):
    phone.push([phone.seal("safety_check", safety_check(temperature_c=37.3, notes="slight headache since Tuesday", fit_for_duty=True))])
    rev = db.session.query(Revision).one()
    assert "temperature_c" not in rev.body and "notes" not in rev.body and rev.health
    dump = json.dumps(rev.body) + (rev.envelope or "")
    assert "headache" not in dump and "37.3" not in dump
    assert b"headache" not in rev.health


def test_gzip_body_accepted(phone):
    items = [phone.seal("check_in", check_in()) for _ in range(3)]
    body = gzip.compress(json.dumps({"items": items}).encode())
    r = phone.client.post("/api/v1/sync/push", data=body, headers={**phone.auth, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 200 and len(r.get_json()["results"]) == 3


def test_device_report_is_kept(phone):
    from server.models import Device

    phone.push([], outbox_depth=17, oldest_unsent_age_s=3600, app_version="1.2.3", device_time="2030-01-01T00:00:00+00:00")
    device = db.session.get(Device, phone.device_id)
    db.session.refresh(device)
    assert device.outbox_depth == 17 and device.oldest_unsent_age_s == 3600 and device.app_version == "1.2.3"
    assert device.clock_skew_ms > 10 ** 9 and device.last_push_at is not None


def test_site_status_newest_observation_wins_in_any_order(phone):
    from server.models import Site

    older = phone.seal("site_status", site_status(state="down"))
    newer = phone.seal("site_status", site_status(state="up"))
    phone.push([newer])
    phone.push([older])
    site = db.session.query(Site).filter_by(code="HN001").one()
    db.session.refresh(site)
    assert site.status_state == "up" and site.status_rev == newer["h"]["rev"]


def test_job_edits_from_two_devices_merge(client, org, phone):
    other = enrol_phone(client, worker="W002", label="second")
    created = phone.seal("repair_job", repair_job(), rid="job-1")
    phone.push([created])
    t = "2026-11-26T09:00:00+07:00"
    on_site = repair_job(status="on_site", steps={"reported": "2026-11-26T08:00:00+07:00", "on_site": t},
                         notes=[{"id": "n1", "at": t, "author": "W001", "text": "arrived"}], changed=["status"])
    restored = repair_job(status="restored", steps={"reported": "2026-11-26T08:00:00+07:00", "restored": "2026-11-26T10:00:00+07:00"},
                          notes=[{"id": "n2", "at": "2026-11-26T10:00:00+07:00", "author": "W002", "text": "generator on"}], changed=["status"])
    r_restored = other.seal("repair_job", restored, rid="job-1")
    r_on_site = phone.seal("repair_job", on_site, rid="job-1")
    other.push([r_restored])
    phone.push([r_on_site])  # synced late: must not undo "restored"
    state = db.session.get(RecordState, "job-1")
    assert state.body["status"] == "restored" and state.status == "restored"
    assert [n["id"] for n in state.body["notes"]] == ["n1", "n2"]
    assert state.body["steps"]["on_site"] == t


def test_person_revision_merges_and_reaches_the_team(app, org, phone):
    from server.services import sync
    from server.services.keys import keyring

    phone.push([phone.seal("repair_job", repair_job(team_id=None), rid="job-9")])
    assigned = repair_job(status="assigned", steps={"reported": "2026-11-26T08:00:00+07:00", "assigned": "2026-11-26T08:05:00+07:00"},
                          team_id="PT-HN", team_operator="PT", changed=["status", "team_id", "team_operator"])
    rev = sync.write_by_person("repair_job", "job-9", assigned, org.users["supervisor"].id, keyring())
    db.session.commit()
    state = db.session.get(RecordState, "job-9")
    assert state.rev == rev and state.body["team_id"] == "PT-HN" and state.team_id == org.teams["PT-HN"].id
    assert db.session.query(Revision).filter_by(record_id="job-9", author_user_id=org.users["supervisor"].id).count() == 1


def test_revision_must_be_a_clock_stamp(phone):
    # "zzzz" would otherwise win every last-writer-wins comparison forever
    result = phone.push([phone.seal("check_in", check_in(), rev="zzzz")]).get_json()["results"][0]
    assert result["reason"] == "malformed_envelope" and "clock" in result["message"]
