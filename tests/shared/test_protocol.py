"""shared.protocol: limits and the request / response schemas of /api/v1."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from shared import protocol as p
from shared.signing import sign_document, verify_document


def test_limits_to_dict_matches_schema():
    limits = p.Limits()
    data = limits.to_dict()
    assert set(data) == set(p.LimitsSchema().fields)
    assert p.LimitsSchema().load(data) == data
    assert p.LimitsSchema().dump(limits) == data


def test_limits_custom_values_round_trip():
    limits = p.Limits(max_items_per_batch=3, max_body_bytes=10, max_page_size=7, default_page_size=5)
    assert p.Limits(**p.LimitsSchema().load(limits.to_dict())) == limits


def test_default_limits_are_consistent():
    limits = p.Limits()
    assert 0 < limits.default_page_size <= limits.max_page_size
    assert limits.max_items_per_batch > 0 and limits.max_body_bytes > 0


def test_limits_schema_rejects_unknown_and_missing():
    with pytest.raises(ValidationError) as info:
        p.LimitsSchema().load({**p.Limits().to_dict(), "max_everything": 1})
    assert "max_everything" in info.value.messages
    with pytest.raises(ValidationError) as info:
        p.LimitsSchema().load({"max_items_per_batch": 1})
    assert "max_body_bytes" in info.value.messages


def test_paths_live_under_the_api_prefix():
    paths = [p.ENROL_PATH, p.PUSH_PATH, p.PULL_PATH, p.STATUS_PATH, p.KEYS_PATH, p.LIMITS_PATH]
    assert all(path.startswith(p.API_PREFIX + "/") for path in paths)
    assert len(set(paths)) == len(paths)


def test_push_request_minimal_and_full():
    assert p.PushRequestSchema().load({"items": []}) == {
        "items": [], "outbox_depth": None, "oldest_unsent_age_s": None, "app_version": None, "device_time": None,
    }
    loaded = p.PushRequestSchema().load({
        "items": [{"h": {}}, "anything"],
        "outbox_depth": 3, "oldest_unsent_age_s": 120, "app_version": "1.2.0",
        "device_time": "2026-11-26T05:30:00+07:00",
    })
    assert loaded["items"] == [{"h": {}}, "anything"]  # items are judged by the server, one by one
    assert loaded["device_time"].utcoffset().total_seconds() == 7 * 3600


def test_push_request_rejects_unknown_fields():
    with pytest.raises(ValidationError) as info:
        p.PushRequestSchema().load({"items": [], "envelopes": []})
    assert "envelopes" in info.value.messages


@pytest.mark.parametrize(
    "data, field",
    [
        ({}, "items"),
        ({"items": {}}, "items"),
        ({"items": [], "outbox_depth": -1}, "outbox_depth"),
        ({"items": [], "device_time": "2026-11-26T05:30:00"}, "device_time"),
        ({"items": [], "app_version": "x" * 41}, "app_version"),
    ],
)
def test_push_request_rejects_bad_values(data, field):
    with pytest.raises(ValidationError) as info:
        p.PushRequestSchema().load(data)
    assert field in info.value.messages


def test_pull_query_defaults_and_bounds():
    assert p.PullQuerySchema().load({})["cursor"] == 0
    assert p.PullQuerySchema().load({"cursor": "12", "limit": "5"})["cursor"] == 12
    for bad in ({"cursor": -1}, {"limit": 0}, {"page": 1}):
        with pytest.raises(ValidationError):
            p.PullQuerySchema().load(bad)


def test_item_result_status_vocabulary():
    for status in (p.ITEM_ACCEPTED, p.ITEM_DUPLICATE, p.ITEM_REJECTED):
        assert p.ItemResultSchema().load({"status": status, "rid": "r", "rev": "x"})["status"] == status
    with pytest.raises(ValidationError):
        p.ItemResultSchema().load({"status": "stored"})


def test_signed_receipt_fits_push_response(server_sign_keys):
    receipt = sign_document(server_sign_keys[0], {
        "device_id": "dev-0001", "issued_at": "2026-11-26T05:30:00+00:00", "kid": "srv-2026-01",
        "items": [{"rid": "r1", "rev": "1764109800000-0000-dev-0001", "hash": "ab" * 32}],
    })
    response = {
        "results": [{"rid": "r1", "rev": "1764109800000-0000-dev-0001", "status": "accepted", "reason": None, "message": None}],
        "receipt": receipt,
        "server_time": "2026-11-26T05:30:00+00:00",
    }
    loaded = p.PushResponseSchema().load(response)
    assert verify_document(server_sign_keys[1], loaded["receipt"])


def test_pull_response_and_change():
    data = {
        "changes": [{"seq": 1, "kind": "check_in", "rid": "r", "rev": "1764109800000-0000-d", "body": {"a": 1}}],
        "next_cursor": 1, "has_more": False, "server_time": "2026-11-26T05:30:00+00:00",
    }
    assert p.PullResponseSchema().load(data) == {**data, "settings": None}  # settings: optional
    with pytest.raises(ValidationError):
        p.PullResponseSchema().load({**data, "changes": [{**data["changes"][0], "secret": 1}]})


def test_enrol_request_bounds():
    ok = {"code": "ABCD-1234", "public_key": "A" * 44, "label": "Phone 7", "app_version": "1.0"}
    assert p.EnrolRequestSchema().load(ok) == ok
    for key, bad in (("code", "abc"), ("public_key", "A" * 10), ("label", ""), ("app_version", "")):
        with pytest.raises(ValidationError) as info:
            p.EnrolRequestSchema().load({**ok, key: bad})
        assert key in info.value.messages


def test_enrol_response_carries_limits():
    data = {
        "device_id": "d", "token": "t", "worker_id": None, "team_id": None, "region_codes": ["HN"],
        "keys": [{"kid": "k", "box_public": "b", "sign_public": "s", "created_at": "c", "current": True, "endorsement": None}],
        "limits": p.Limits().to_dict(), "settings": {},
    }
    assert p.EnrolResponseSchema().load(data)["limits"] == p.Limits().to_dict()
