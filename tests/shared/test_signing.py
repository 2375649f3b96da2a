"""shared.signing: server-signed documents (receipts, endorsements, manifests)."""
from __future__ import annotations

import copy
import json
import math

import pytest

from shared import crypto
from shared.signing import sign_document, verify_document


@pytest.fixture
def receipt():
    return {
        "device_id": "dev-0001",
        "issued_at": "2026-11-26T05:30:00+00:00",
        "kid": "srv-2026-01",
        "items": [{"rid": "r1", "rev": "1764109800000-0000-dev-0001", "hash": "ab" * 32}],
    }


def test_round_trip(server_sign_keys, receipt):
    signed = sign_document(server_sign_keys[0], receipt)
    assert set(signed) == set(receipt) | {"sig"}
    assert len(crypto.b64d(signed["sig"])) == 64
    assert verify_document(server_sign_keys[1], signed)
    assert verify_document(server_sign_keys[1], json.loads(json.dumps(signed)))


def test_does_not_mutate_input(server_sign_keys, receipt):
    before = copy.deepcopy(receipt)
    sign_document(server_sign_keys[0], receipt)
    assert receipt == before


def test_key_order_irrelevant(server_sign_keys, receipt):
    signed = sign_document(server_sign_keys[0], receipt)
    assert verify_document(server_sign_keys[1], {k: signed[k] for k in reversed(list(signed))})


def test_old_sig_is_replaced_not_signed(server_sign_keys, receipt):
    first = sign_document(server_sign_keys[0], {**receipt, "sig": "stale"})
    assert first["sig"] != "stale"
    assert verify_document(server_sign_keys[1], first)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(device_id="dev-0002"),
        lambda d: d["items"][0].update(hash="cd" * 32),
        lambda d: d["items"].append({"rid": "r2", "rev": "x", "hash": "y"}),
        lambda d: d.update(extra=True),
        lambda d: d.pop("kid"),
    ],
    ids=["top-field", "nested-field", "added-item", "added-field", "removed-field"],
)
def test_tampered_field_fails(server_sign_keys, receipt, change):
    signed = sign_document(server_sign_keys[0], receipt)
    change(signed)
    assert verify_document(server_sign_keys[1], signed) is False


def test_tampered_sig_fails(server_sign_keys, receipt):
    signed = sign_document(server_sign_keys[0], receipt)
    raw = bytearray(crypto.b64d(signed["sig"]))
    raw[10] ^= 0x80
    signed["sig"] = crypto.b64e(bytes(raw))
    assert verify_document(server_sign_keys[1], signed) is False


def test_wrong_key_fails(server_sign_keys, device_keys, receipt):
    signed = sign_document(server_sign_keys[0], receipt)
    assert verify_document(device_keys[1], signed) is False


@pytest.mark.parametrize("sig", [None, 5, ["AAAA"], "", "!!not base64!!", crypto.b64e(b"\x00" * 64)])
def test_bad_sig_values_are_false_not_errors(server_sign_keys, receipt, sig):
    assert verify_document(server_sign_keys[1], {**receipt, "sig": sig}) is False


def test_missing_sig_is_false(server_sign_keys, receipt):
    assert verify_document(server_sign_keys[1], receipt) is False


def test_non_json_content_is_false_not_an_error(server_sign_keys, receipt):
    # JSON parsers such as requests' accept NaN; a document carrying it is simply not valid.
    signed = sign_document(server_sign_keys[0], receipt)
    assert verify_document(server_sign_keys[1], {**signed, "x": math.nan}) is False
