"""Bad input never causes a 500: each gets a 4xx with {code, status, message, reason}."""
import pytest

from server.extensions import db
from server.models import QuarantineItem
from tests.server.conftest import check_in


def _shape(r, status, reason):
    data = r.get_json()
    assert r.status_code == status, data
    assert set(data) >= {"code", "status", "message", "reason"}
    assert data["code"] == status and data["reason"] == reason and data["message"]


def test_malformed_json(phone):
    r = phone.client.post("/api/v1/sync/push", data="{not json", headers={**phone.auth, "Content-Type": "application/json"})
    _shape(r, 400, "malformed_json")


def test_wrong_content_type(phone):
    r = phone.client.post("/api/v1/sync/push", data="items=1", headers={**phone.auth, "Content-Type": "application/x-www-form-urlencoded"})
    _shape(r, 415, "unsupported_media_type")


def test_bad_gzip(phone):
    r = phone.client.post("/api/v1/sync/push", data=b"nope", headers={**phone.auth, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    _shape(r, 400, "malformed_json")


@pytest.mark.parametrize("body", [{"items": [], "surprise": 1}, {"items": "many"}, {}, {"items": [], "outbox_depth": "lots"}])
def test_unknown_fields_and_wrong_types(phone, body):
    _shape(phone.client.post("/api/v1/sync/push", json=body, headers=phone.auth), 422, "invalid_request")


def test_body_over_limit(app, phone):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    r = phone.client.post("/api/v1/sync/push", json={"items": ["x" * 5000]}, headers=phone.auth)
    _shape(r, 413, "body_too_large")


def test_gzip_bomb_over_limit(app, phone):
    import gzip
    import json

    body = gzip.compress(json.dumps({"items": ["a" * 3_000_000]}).encode())
    r = phone.client.post("/api/v1/sync/push", data=body, headers={**phone.auth, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    _shape(r, 413, "body_too_large")
    assert "max_body_bytes" in r.get_json()["message"]


def test_batch_over_limit(app, phone):
    app.config["MAX_ITEMS_PER_BATCH"] = 3
    r = phone.push([phone.seal("check_in", check_in()) for _ in range(4)])
    _shape(r, 413, "batch_too_large")
    assert "max_items_per_batch=3" in r.get_json()["message"]


def test_page_over_limit(phone):
    _shape(phone.pull(limit=10 ** 6), 422, "page_too_large")


def test_missing_and_wrong_token(client, org):
    _shape(client.post("/api/v1/sync/push", json={"items": []}), 401, "unauthorized")
    _shape(client.get("/api/v1/sync/pull", headers={"Authorization": "Bearer fwd_nope"}), 401, "unauthorized")
    _shape(client.get("/api/v1/sync/pull", headers={"Authorization": "Basic abc"}), 401, "unauthorized")


def test_negative_cursor(phone):
    _shape(phone.pull(cursor=-1), 422, "invalid_request")


def test_unknown_route_is_json_404(client):
    _shape(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_limits_and_openapi_published(client):
    assert client.get("/api/v1/sync/limits").get_json()["max_items_per_batch"] == 500
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/sync/push" in spec["paths"] and "/api/v1/devices/enrol" in spec["paths"]
    assert client.get("/api/docs").status_code == 200


def test_numbers_beyond_what_the_columns_hold(phone):
    # A number the database would refuse (SQLite: over 64 bits; PostgreSQL: over the column's type)
    # is the client's mistake: 422 naming the field, never a 500 from the database.
    r = phone.pull(cursor=2**63)
    _shape(r, 422, "invalid_request")
    assert "cursor" in r.get_json()["errors"]
    r = phone.push([], outbox_depth=2**31)
    _shape(r, 422, "invalid_request")
    assert "outbox_depth" in r.get_json()["errors"]
    assert phone.push([], outbox_depth=2**31 - 1).status_code == 200


@pytest.mark.parametrize("path, query", [
    ("/api/v1/sync/pull", {"app_version": "1.0\x00"}),
    ("/api/v1/sync/pull", {"cursor\x00": "1"}),
    ("/api/v1/sync/status\x00", {}),
])
def test_nul_characters_in_the_address_are_refused(phone, path, query):
    r = phone.client.get(path, query_string=query, headers=phone.auth)
    _shape(r, 400, "invalid_request")
    assert "NUL" in r.get_json()["message"]


def test_nul_characters_in_a_push_reject_only_their_items(phone):
    # PostgreSQL text cannot hold NUL: such an item is rejected and quarantined like any bad item, and the
    # batch's other items are stored (before, the whole batch failed with a 500 on PostgreSQL).
    good = phone.seal("check_in", check_in())
    in_record = phone.seal("check_in", check_in(notes="gate code 12\x0034"))
    in_header = phone.seal("check_in", check_in())
    in_header["h"]["rid"] = "rid-\x00"
    r = phone.push([good, in_record, in_header])
    assert r.status_code == 200, r.get_json()
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["accepted", "rejected", "rejected"]
    assert results[1]["reason"] == "invalid_record" and "notes" in results[1]["message"] and "NUL" in results[1]["message"]
    assert results[2]["reason"] == "malformed_envelope"
    kept = {q.reason: q for q in db.session.query(QuarantineItem)}
    assert set(kept) == {"invalid_record", "malformed_envelope"}
    assert kept["malformed_envelope"].record_id == "rid-\ufffd"  # what it said, NUL shown as U+FFFD
    assert "\\u0000" in kept["malformed_envelope"].raw  # the envelope itself kept whole (JSON-escaped)


def _malformed_items(good: dict) -> list:
    """Every kind of broken item a push may carry: not an object, fields missing or of the wrong type, junk values."""
    deep: list = []
    for _ in range(900):
        deep = [deep]
    items = [None, 5, "x", [], {}, {"h": None}, {"h": 5, "e": 1, "c": 2, "t": 3}, deep, {"h": deep, "e": "", "c": "", "t": ""},
             {**good, "zz": 1}]
    for key in ("v", "kid", "dev", "rid", "kind", "rev"):
        for value in (None, 10**30, -1, "", "x" * 10_000, [], {}, "\x00", True, 1.5):
            items.append({**good, "h": {**good["h"], key: value}})
    for key in ("e", "c", "t"):
        for value in (None, "", "!!!", "AAAA", 5, [], "\x00"):
            items.append({**good, key: value})
    return items


def test_every_malformed_item_is_rejected_alone(phone):
    bad = _malformed_items(phone.seal("check_in", check_in()))
    for start in range(0, len(bad), 25):
        batch = bad[start:start + 25]
        r = phone.push(batch + [phone.seal("check_in", check_in())])
        assert r.status_code == 200, r.get_json()
        results = r.get_json()["results"]
        assert [x["status"] for x in results] == ["rejected"] * len(batch) + ["accepted"], results
        assert all(x["reason"] and x["message"] for x in results[:-1])
    assert db.session.query(QuarantineItem).count() == len(bad)
