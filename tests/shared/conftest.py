"""Fixtures for the tests of ``shared/``: key pairs, a valid body per record kind, headers."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from shared import crypto
from shared import envelope as env

DEVICE_ID = "dev-0001"
OTHER_DEVICE_ID = "dev-0002"
RECORD_ID = "5a8f3c2e-1d4b-4e6f-9a7b-0c1d2e3f4a5b"
OTHER_RECORD_ID = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
REV = "1764109800000-0000-dev-0001"
KID = "srv-2026-01"
OLD_KID = "srv-2025-01"

SAFETY_CHECK = {
    "schema_version": 1,
    "worker_id": "w-0017",
    "taken_at": "2026-11-26T05:30:00+07:00",
    "temperature_c": 36.6,
    "symptoms": [],
    "exposure": "none",
    "ppe": ["mask", "gloves", "helmet"],
    "site_code": "HN-0042",
    "in_quarantine_area": False,
    "fit_for_duty": True,
    "notes": "",
    "position": {"lat": 21.0285, "lon": 105.8542, "accuracy_m": 8.0},
}
# A check that is not fit for duty: the health values a sealed envelope must never show.
FEVER_TEMPERATURE = 38.7
FEVER_NOTE = "felt dizzy and shivering after the climb at tower 7"
FEVER_CHECK = {
    **SAFETY_CHECK,
    "temperature_c": FEVER_TEMPERATURE,
    "symptoms": ["fever", "headache"],
    "exposure": "suspected_contact",
    "fit_for_duty": False,
    "notes": FEVER_NOTE,
}
CHECK_IN = {
    "schema_version": 1,
    "worker_id": "w-0017",
    "at": "2026-11-26T09:15:00+07:00",
    "site_code": "HN-0042",
    "status": "ok",
    "position": {"lat": 21.0285, "lon": 105.8542, "accuracy_m": 12.5},
    "notes": "on the roof, signal weak",
}
SITE_STATUS = {
    "schema_version": 1,
    "site_code": "HN-0042",
    "observed_at": "2026-11-26T10:00:00+07:00",
    "state": "degraded",
    "power_source": "generator",
    "backup_transmission": True,
    "mobile_bts_deployed": False,
    "access": "restricted",
    "cause": "grid outage",
    "notes": "generator fuel for 6 hours",
    "reported_by": "w-0017",
}
REPAIR_JOB = {
    "schema_version": 1,
    "site_code": "HN-0042",
    "fault_type": "power",
    "priority": "high",
    "title": "Rectifier down after grid outage",
    "status": "on_site",
    "steps": {
        "reported": "2026-11-26T06:00:00+07:00",
        "assigned": "2026-11-26T06:05:00+07:00",
        "acknowledged": "2026-11-26T06:07:00+07:00",
        "en_route": "2026-11-26T06:20:00+07:00",
        "on_site": "2026-11-26T07:10:00+07:00",
    },
    "reported_at": "2026-11-26T06:00:00+07:00",
    "actions": ["checked rectifier modules"],
    "parts": [{"name": "fuse 63A", "quantity": 2}],
    "notes": [{"id": "note-1", "at": "2026-11-26T07:12:00+07:00", "author": "w-0017", "text": "fuse blown on module 2"}],
    "team_id": "team-3",
    "team_operator": "w-0017",
    "changed": ["status"],
}
SAMPLES = {
    "safety_check": SAFETY_CHECK,
    "check_in": CHECK_IN,
    "site_status": SITE_STATUS,
    "repair_job": REPAIR_JOB,
}


@pytest.fixture
def ids():
    """The names used by the fixtures (ids, key ids, revision, secret health values)."""
    return SimpleNamespace(
        DEVICE_ID=DEVICE_ID, OTHER_DEVICE_ID=OTHER_DEVICE_ID, RECORD_ID=RECORD_ID, OTHER_RECORD_ID=OTHER_RECORD_ID,
        REV=REV, KID=KID, OLD_KID=OLD_KID, FEVER_TEMPERATURE=FEVER_TEMPERATURE, FEVER_NOTE=FEVER_NOTE,
    )


@pytest.fixture(scope="session")
def _device_pair():
    return crypto.generate_signing_keypair()


@pytest.fixture(scope="session")
def _other_device_pair():
    return crypto.generate_signing_keypair()


@pytest.fixture(scope="session")
def _server_box_pair():
    return crypto.generate_box_keypair()


@pytest.fixture(scope="session")
def _old_server_box_pair():
    return crypto.generate_box_keypair()


@pytest.fixture(scope="session")
def _server_sign_pair():
    return crypto.generate_signing_keypair()


@pytest.fixture
def device_keys(_device_pair):
    """(private, public) Ed25519 key pair of the sending device."""
    return _device_pair


@pytest.fixture
def other_device_keys(_other_device_pair):
    """Another enrolled device's Ed25519 key pair."""
    return _other_device_pair


@pytest.fixture
def server_box_keys(_server_box_pair):
    """(private, public) X25519 key pair of the current server key ``KID``."""
    return _server_box_pair


@pytest.fixture
def old_server_box_keys(_old_server_box_pair):
    """(private, public) X25519 key pair of the rotated-out server key ``OLD_KID``."""
    return _old_server_box_pair


@pytest.fixture
def server_sign_keys(_server_sign_pair):
    """(private, public) Ed25519 key pair the server signs documents with."""
    return _server_sign_pair


@pytest.fixture
def keyring(server_box_keys, old_server_box_keys):
    """The server's box keys by key id: the current one and a rotated-out one."""
    return {KID: server_box_keys[0], OLD_KID: old_server_box_keys[0]}


@pytest.fixture
def sample_bodies():
    """A valid body per record kind (fresh copies: tests may change them)."""
    return copy.deepcopy(SAMPLES)


@pytest.fixture(params=sorted(SAMPLES))
def kind_and_body(request):
    """Each record kind with its valid sample body."""
    return request.param, copy.deepcopy(SAMPLES[request.param])


@pytest.fixture
def fever_check():
    """A safety check with health values that must stay secret."""
    return copy.deepcopy(FEVER_CHECK)


@pytest.fixture
def header():
    """A wire header for a safety check revision sealed to ``KID``."""
    return env.make_header(KID, DEVICE_ID, RECORD_ID, "safety_check", REV)


@pytest.fixture
def sealed(header, fever_check, device_keys, server_box_keys):
    """A sealed envelope (wire form) of ``fever_check``."""
    return env.seal(header, fever_check, device_keys[0], server_box_keys[1])
