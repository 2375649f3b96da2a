from datetime import timedelta

import pytest

from server.errors import Invalid
from server.extensions import db
from server.models import Device, EnrolCode
from server.services import enrolment
from shared import crypto


def _enrol(client, code, key=None):
    key = key or crypto.b64e(crypto.generate_signing_keypair()[1])
    return client.post("/api/v1/devices/enrol", json={"code": code, "public_key": key, "label": "p", "app_version": "1.0"})


def test_enrol_returns_device_token_and_keys(client, org):
    code, _ = enrolment.create_code("HN-T1", timedelta(hours=1), "W001")
    db.session.commit()
    r = _enrol(client, code.lower().replace("-", " "))  # people type codes loosely
    assert r.status_code == 201
    data = r.get_json()
    assert data["worker_id"] == "W001" and data["team_id"] == "HN-T1" and data["region_codes"] == ["HN"]
    assert data["keys"][0]["current"] and data["limits"]["max_items_per_batch"] > 0
    assert data["settings"]["response_targets"]["critical"]["restore_minutes"] > 0
    device = db.session.get(Device, data["device_id"])
    assert data["token"] not in device.token_hash and len(device.token_hash) == 64


def test_code_works_once(client, org):
    code, _ = enrolment.create_code("HN-T1", timedelta(hours=1))
    db.session.commit()
    assert _enrol(client, code).status_code == 201
    r = _enrol(client, code)
    assert r.status_code == 409 and r.get_json()["reason"] == "enrol_code_used"


def test_expired_and_unknown_codes(client, org):
    code, row = enrolment.create_code("HN-T1", timedelta(hours=1))
    row.expires_at = row.created_at - timedelta(minutes=1)
    db.session.commit()
    r = _enrol(client, code)
    assert r.status_code == 400 and r.get_json()["reason"] == "enrol_code_expired"
    r = _enrol(client, "AAAA-BBBB-CCCC")
    assert r.status_code == 400 and r.get_json()["reason"] == "enrol_code_invalid"
    assert "supervisor" in r.get_json()["message"]


def test_bad_public_key_is_422(client, org):
    code, _ = enrolment.create_code("HN-T1", timedelta(hours=1))
    db.session.commit()
    r = _enrol(client, code, key="A" * 44)
    assert r.status_code == 422 and r.get_json()["reason"] == "invalid_request"
    assert db.session.query(EnrolCode).one().used_at is None  # a failed try does not burn the code


@pytest.mark.parametrize("ttl", ["", "0h", "5x", "40d"])
def test_ttl_parsing_rejects_nonsense(ttl):
    with pytest.raises(Invalid):
        enrolment.parse_ttl(ttl)


def test_ttl_parsing():
    assert enrolment.parse_ttl("24h") == timedelta(hours=24)
    assert enrolment.parse_ttl("30m") == timedelta(minutes=30)


def test_revoked_device_gets_401_and_its_items_are_quarantined(client, phone):
    from server.models import QuarantineItem
    from tests.server.conftest import check_in

    enrolment.revoke(phone.device_id)
    db.session.commit()
    r = phone.push([phone.seal("check_in", check_in())])
    assert r.status_code == 401 and r.get_json()["reason"] == "device_revoked"
    q = db.session.query(QuarantineItem).one()
    assert q.reason == "device_revoked" and q.device_id == phone.device_id and '"c":' in q.raw
    assert phone.pull().status_code == 401
