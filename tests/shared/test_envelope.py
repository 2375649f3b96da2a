"""shared.envelope: seal / open / verify, named tampering, selective disclosure."""
from __future__ import annotations

import base64
import copy
import json
import os
import zlib

import pytest

from shared import crypto
from shared import envelope as env
from shared.canonical import canonical_json
from shared.errors import EnvelopeError, ProtocolError, ReasonCode


R = ReasonCode


def expect(reason, wire, keyring):
    with pytest.raises(EnvelopeError) as info:
        env.open_envelope(wire, keyring)
    assert info.value.reason is reason, (info.value.reason, info.value.message)
    assert isinstance(info.value, ProtocolError)
    assert info.value.message and str(info.value) == info.value.message
    return info.value


def flip_bit(b64_text: str, index: int = 0, bit: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64_text))
    raw[index] ^= 1 << bit
    return base64.b64encode(bytes(raw)).decode("ascii")


def craft(server_public: bytes, header: dict, plain: bytes) -> dict:
    """An envelope whose ciphertext is valid for the header but holds ``plain`` (anyone can do this)."""
    eph, mac_key, ct = crypto.seal_to(server_public, plain, canonical_json(header), env._INFO)
    return {"h": dict(header), "e": crypto.b64e(eph), "c": crypto.b64e(ct), "t": crypto.b64e(env._tags(mac_key, header))}


# --- round trip ----------------------------------------------------------------

def test_seal_open_verify_round_trip(sealed, keyring, fever_check, device_keys, header):
    assert set(sealed) == {"h", "e", "c", "t"}
    assert sealed["h"] == header
    opened = env.open_envelope(sealed, keyring)
    assert opened.body == fever_check
    assert opened.header == header
    assert len(opened.secret) == 16
    env.verify_signature(opened, device_keys[1])
    assert set(opened.digests) == set(fever_check)


def test_wire_form_is_json_serialisable(sealed, keyring, fever_check):
    wire = json.loads(json.dumps(sealed))
    assert env.open_envelope(wire, keyring).body == fever_check


def test_round_trip_every_kind(ids, kind_and_body, keyring, server_box_keys, device_keys):
    kind, body = kind_and_body
    h = env.make_header(ids.KID, ids.DEVICE_ID, ids.RECORD_ID, kind, ids.REV)
    opened = env.open_envelope(env.seal(h, body, device_keys[0], server_box_keys[1]), keyring)
    assert opened.body == body and opened.header["kind"] == kind
    env.verify_signature(opened, device_keys[1])


def test_old_server_key_still_opens_old_envelopes(ids, fever_check, device_keys, old_server_box_keys, keyring):
    h = env.make_header(ids.OLD_KID, ids.DEVICE_ID, ids.RECORD_ID, "safety_check", ids.REV)
    opened = env.open_envelope(env.seal(h, fever_check, device_keys[0], old_server_box_keys[1]), keyring)
    assert opened.body == fever_check


def test_make_header_fields(ids):
    h = env.make_header("k", "d", "r", "check_in", ids.REV)
    assert h == {"v": 1, "kid": "k", "dev": "d", "rid": "r", "kind": "check_in", "rev": ids.REV}
    assert tuple(h) == env.HEADER_KEYS


def test_seal_does_not_mutate_inputs(header, fever_check, device_keys, server_box_keys):
    h, b = copy.deepcopy(header), copy.deepcopy(fever_check)
    env.seal(header, fever_check, device_keys[0], server_box_keys[1])
    assert header == h and fever_check == b


def test_each_seal_is_fresh(header, fever_check, device_keys, server_box_keys):
    a = env.seal(header, fever_check, device_keys[0], server_box_keys[1])
    b = env.seal(header, fever_check, device_keys[0], server_box_keys[1])
    assert a["e"] != b["e"] and a["c"] != b["c"]
    assert env.envelope_hash(a) != env.envelope_hash(b)


def test_envelope_hash_stable_under_key_order(sealed):
    reordered = {k: sealed[k] for k in reversed(list(sealed))}
    assert env.envelope_hash(reordered) == env.envelope_hash(sealed)
    assert len(env.envelope_hash(sealed)) == 64


# --- nothing readable on the wire ---------------------------------------------------

def test_health_values_not_in_sealed_wire(ids, sealed):
    text = json.dumps(sealed, ensure_ascii=False)
    assert str(ids.FEVER_TEMPERATURE) not in text
    assert ids.FEVER_NOTE not in text
    assert "fever" not in text and "suspected_contact" not in text
    assert "temperature_c" not in text


def test_signature_not_in_the_clear(sealed, keyring):
    opened = env.open_envelope(sealed, keyring)
    assert crypto.b64e(opened.signature) not in json.dumps(sealed)
    assert opened.signature.hex() not in json.dumps(sealed)


# --- tampering, each named ---------------------------------------------------------

@pytest.mark.parametrize("field, value", [("kind", "check_in"), ("rev", "1764109800001-0000-dev-0001"), ("dev", "dev-0002")])
def test_changed_header_field_is_header_tampered(sealed, keyring, field, value):
    wire = copy.deepcopy(sealed)
    wire["h"][field] = value
    err = expect(R.HEADER_TAMPERED, wire, keyring)
    assert err.details["fields"] == [field]
    assert field in err.message


def test_two_changed_fields_are_all_named(ids, sealed, keyring):
    wire = copy.deepcopy(sealed)
    wire["h"]["kind"] = "repair_job"
    wire["h"]["rid"] = ids.OTHER_RECORD_ID
    err = expect(R.HEADER_TAMPERED, wire, keyring)
    assert err.details["fields"] == ["rid", "kind"]


def test_replay_under_another_record_id(ids, sealed, keyring):
    wire = copy.deepcopy(sealed)
    wire["h"]["rid"] = ids.OTHER_RECORD_ID
    expect(R.RECORD_ID_MISMATCH, wire, keyring)


@pytest.mark.parametrize("index", [0, 5, -1])
def test_flipped_ciphertext_bit(sealed, keyring, index):
    wire = dict(sealed)
    raw_len = len(base64.b64decode(sealed["c"]))
    wire["c"] = flip_bit(sealed["c"], index % raw_len, bit=3)
    expect(R.CIPHERTEXT_TAMPERED, wire, keyring)


def test_truncated_ciphertext(sealed, keyring):
    wire = dict(sealed, c=crypto.b64e(base64.b64decode(sealed["c"])[:-1]))
    expect(R.CIPHERTEXT_TAMPERED, wire, keyring)


def test_sealed_to_another_key_naming_a_known_kid(header, fever_check, device_keys, old_server_box_keys, keyring):
    # Sealed to the old key's public half, but the header names the current key.
    wire = env.seal(header, fever_check, device_keys[0], old_server_box_keys[1])
    expect(R.WRONG_SERVER_KEY, wire, keyring)


def test_kid_changed_to_another_known_kid(ids, sealed, keyring):
    expect(R.WRONG_SERVER_KEY, dict(sealed, h=dict(sealed["h"], kid=ids.OLD_KID)), keyring)


def test_unknown_key_id(sealed, keyring):
    wire = dict(sealed, h=dict(sealed["h"], kid="srv-never"))
    err = expect(R.UNKNOWN_SERVER_KEY, wire, keyring)
    assert err.details["kid"] == "srv-never"


def test_empty_keyring_is_unknown_key(sealed):
    expect(R.UNKNOWN_SERVER_KEY, sealed, {})


@pytest.mark.parametrize("version", [0, 2, 99])
def test_unsupported_version(sealed, keyring, version):
    err = expect(R.UNSUPPORTED_VERSION, dict(sealed, h=dict(sealed["h"], v=version)), keyring)
    assert str(version) in err.message


def test_signature_by_another_enrolled_device(header, fever_check, device_keys, other_device_keys, server_box_keys, keyring):
    # The other device seals a record claiming to be DEVICE_ID.
    wire = env.seal(header, fever_check, other_device_keys[0], server_box_keys[1])
    opened = env.open_envelope(wire, keyring)
    with pytest.raises(EnvelopeError) as info:
        env.verify_signature(opened, device_keys[1])
    assert info.value.reason is R.BAD_SIGNATURE
    env.verify_signature(opened, other_device_keys[1])  # its own key does verify


def test_signature_fails_when_opened_body_is_changed(sealed, keyring, device_keys):
    opened = env.open_envelope(sealed, keyring)
    body = dict(opened.body, temperature_c=36.0)
    forged = env.Opened(opened.header, body, opened.secret, opened.signature, env.field_digests(body, opened.secret))
    with pytest.raises(EnvelopeError) as info:
        env.verify_signature(forged, device_keys[1])
    assert info.value.reason is R.BAD_SIGNATURE


def test_signature_does_not_cover_transport_kid(ids, header, fever_check, device_keys, old_server_box_keys, keyring):
    # Re-sealing the same revision to a rotated key keeps a valid device signature.
    h = dict(header, kid=ids.OLD_KID)
    opened = env.open_envelope(env.seal(h, fever_check, device_keys[0], old_server_box_keys[1]), keyring)
    env.verify_signature(opened, device_keys[1])
    assert "kid" not in env.signed_header(h)


def test_tampered_tags_are_caught(sealed, keyring):
    # t = 8-byte key check, then a 6-byte tag per field of v, dev, rid, kind, rev: byte 26 starts "kind".
    wire = dict(sealed, t=flip_bit(sealed["t"], 26))
    err = expect(R.HEADER_TAMPERED, wire, keyring)
    assert err.details["fields"] == ["kind"]


def test_tampered_key_check_is_wrong_server_key(sealed, keyring):
    expect(R.WRONG_SERVER_KEY, dict(sealed, t=flip_bit(sealed["t"], 0)), keyring)


def test_changed_ephemeral_key_is_caught(sealed, keyring):
    with pytest.raises(EnvelopeError) as info:
        env.open_envelope(dict(sealed, e=flip_bit(sealed["e"], 4)), keyring)
    assert info.value.reason in (R.WRONG_SERVER_KEY, R.MALFORMED_ENVELOPE)


# --- malformed shapes --------------------------------------------------------------

def _malformed_variants(w):
    h = w["h"]
    return {
        "not a dict": ["h", "e", "c", "t"],
        "none": None,
        "string": json.dumps(w),
        "missing t": {k: w[k] for k in ("h", "e", "c")},
        "extra field": dict(w, x=1),
        "header not a dict": dict(w, h=[h]),
        "header missing kid": dict(w, h={k: v for k, v in h.items() if k != "kid"}),
        "header extra field": dict(w, h=dict(h, sig="x")),
        "version is a string": dict(w, h=dict(h, v="1")),
        "version is a bool": dict(w, h=dict(h, v=True)),
        "version is a float": dict(w, h=dict(h, v=1.0)),
        "empty rid": dict(w, h=dict(h, rid="")),
        "rid too long": dict(w, h=dict(h, rid="r" * 129)),
        "kind not a string": dict(w, h=dict(h, kind=1)),
        "e not a string": dict(w, e=None),
        "c not base64": dict(w, c="%%%not base64%%%"),
        "t not base64": dict(w, t="t!"),
        "e wrong length": dict(w, e=crypto.b64e(b"\x01" * 31)),
        "t wrong length": dict(w, t=crypto.b64e(base64.b64decode(w["t"])[:-1])),
        "e not ascii": dict(w, e="é" * 44),
    }


@pytest.mark.parametrize("variant", sorted(_malformed_variants({"h": {k: "x" for k in env.HEADER_KEYS}, "e": "", "c": "", "t": ""})))
def test_malformed_shapes(sealed, keyring, variant):
    expect(R.MALFORMED_ENVELOPE, _malformed_variants(sealed)[variant], keyring)


def test_check_shape_returns_header(sealed):
    assert env.check_shape(sealed) is sealed["h"]


def test_low_order_ephemeral_key_is_malformed_not_a_crash(sealed, keyring):
    # An all-zero X25519 public key makes the key exchange fail inside cryptography.
    expect(R.MALFORMED_ENVELOPE, dict(sealed, e=crypto.b64e(bytes(32))), keyring)


@pytest.mark.parametrize(
    "plain",
    [
        b"not zlib at all",
        zlib.compress(b"not json"),
        zlib.compress(b"[1, 2]"),
        zlib.compress(b'{"b": {}}'),
        zlib.compress(b'{"b": [], "s": "AAAA", "g": "AAAA"}'),
        zlib.compress(b'{"b": {}, "s": "***", "g": "AAAA"}'),
        zlib.compress(b'{"b": {}, "s": 1, "g": "AAAA"}'),
        zlib.compress(b'{"b": {}, "s": "AAAA", "g": null}'),
        zlib.compress(b'{"b": {"t": NaN}, "s": "AAAA", "g": "AAAA"}'),
        zlib.compress(b'{"b": {"t": Infinity}, "s": "AAAA", "g": "AAAA"}'),
        zlib.compress(b'{"b": {"t": ' + b"[" * 100_000 + b"]" * 100_000 + b'}, "s": "AAAA", "g": "AAAA"}'),
        zlib.compress(b"\xff\xfe not utf-8"),
    ],
    ids=["not-zlib", "not-json", "list", "missing-keys", "body-list", "bad-secret", "secret-int",
         "sig-null", "nan", "infinity", "deeply-nested", "not-utf8"],
)
def test_sealed_content_that_is_not_a_record(header, server_box_keys, keyring, plain):
    # Validly encrypted to the server key (its public half is public), so only the content is wrong.
    expect(R.MALFORMED_ENVELOPE, craft(server_box_keys[1], header, plain), keyring)


def test_zip_bomb_is_refused(header, server_box_keys, keyring):
    inner = canonical_json({"b": {"x": "a" * (env.MAX_PLAINTEXT_BYTES + 10)}, "s": "AAAA", "g": "AAAA"})
    err = expect(R.MALFORMED_ENVELOPE, craft(server_box_keys[1], header, zlib.compress(inner, 9)), keyring)
    assert str(env.MAX_PLAINTEXT_BYTES) in err.message


# --- content hash ---------------------------------------------------------------------

def test_content_hash_equal_for_the_same_revision(sealed, keyring):
    a = env.open_envelope(sealed, keyring)
    b = env.open_envelope(json.loads(json.dumps(sealed)), keyring)
    assert a.content_hash == b.content_hash
    assert len(a.content_hash) == 64


def test_content_hash_differs_for_other_content(header, fever_check, device_keys, server_box_keys, keyring):
    base = env.open_envelope(env.seal(header, fever_check, device_keys[0], server_box_keys[1]), keyring)
    other_body = dict(fever_check, notes="different")
    other = env.open_envelope(env.seal(header, other_body, device_keys[0], server_box_keys[1]), keyring)
    assert base.content_hash != other.content_hash
    same_body = env.Opened(base.header, other_body, base.secret, base.signature, env.field_digests(other_body, base.secret))
    assert same_body.content_hash != base.content_hash
    other_rev = env.Opened(dict(header, rev="1764109800001-0000-dev-0001"), base.body, base.secret, base.signature, base.digests)
    assert other_rev.content_hash != base.content_hash


def test_content_hash_ignores_transport_kid(ids, sealed, keyring):
    opened = env.open_envelope(sealed, keyring)
    moved = env.Opened(dict(opened.header, kid=ids.OLD_KID), opened.body, opened.secret, opened.signature, opened.digests)
    assert moved.content_hash == opened.content_hash


# --- selective disclosure ------------------------------------------------------------------

@pytest.fixture
def opened(sealed, keyring):
    return env.open_envelope(sealed, keyring)


def test_disclose_all_fields_verifies(opened, device_keys, fever_check):
    record = env.disclose(opened, device_keys[1])
    assert record["fields"] == fever_check
    assert record["withheld"] == {}
    assert record["key"] == crypto.fingerprint(device_keys[1])
    assert record["header"] == env.signed_header(opened.header)
    assert env.verify_disclosed(record, device_keys[1])
    assert env.verify_disclosed(json.loads(json.dumps(record)), device_keys[1])


def test_disclose_with_health_fields_withheld(ids, opened, device_keys):
    from shared.schemas import HEALTH_FIELDS

    record = env.disclose(opened, device_keys[1], withhold=HEALTH_FIELDS)
    assert env.verify_disclosed(record, device_keys[1])
    assert set(record["withheld"]) == set(HEALTH_FIELDS)
    assert not set(record["fields"]) & HEALTH_FIELDS
    assert not set(record["salts"]) & HEALTH_FIELDS
    text = json.dumps(record, ensure_ascii=False)
    assert str(ids.FEVER_TEMPERATURE) not in text
    assert ids.FEVER_NOTE not in text
    assert "suspected_contact" not in text and "headache" not in text
    for name in HEALTH_FIELDS:
        assert crypto.b64e(env.field_salt(opened.secret, name)) not in text
    assert crypto.b64e(opened.secret) not in text


def test_withholding_an_absent_field_is_harmless(opened, device_keys):
    record = env.disclose(opened, device_keys[1], withhold={"no_such_field"})
    assert record["withheld"] == {}
    assert env.verify_disclosed(record, device_keys[1])


@pytest.mark.parametrize("name", ["worker_id", "site_code", "taken_at"])
def test_disclosed_field_changed_by_one_byte_fails(opened, device_keys, name):
    record = env.disclose(opened, device_keys[1], withhold={"temperature_c", "notes"})
    value = record["fields"][name]
    record["fields"][name] = value[:-1] + chr(ord(value[-1]) ^ 1)
    assert not env.verify_disclosed(record, device_keys[1])


def test_disclosed_number_changed_fails(opened, device_keys):
    record = env.disclose(opened, device_keys[1])
    record["fields"]["temperature_c"] = 36.7
    assert not env.verify_disclosed(record, device_keys[1])


def test_altered_withheld_digest_fails(opened, device_keys):
    record = env.disclose(opened, device_keys[1], withhold={"temperature_c"})
    digest = record["withheld"]["temperature_c"]
    record["withheld"]["temperature_c"] = ("0" if digest[0] != "0" else "1") + digest[1:]
    assert not env.verify_disclosed(record, device_keys[1])


def test_disclosed_header_changed_fails(ids, opened, device_keys):
    record = env.disclose(opened, device_keys[1])
    record["header"]["rid"] = ids.OTHER_RECORD_ID
    assert not env.verify_disclosed(record, device_keys[1])


def test_disclosed_field_dropped_fails(opened, device_keys):
    record = env.disclose(opened, device_keys[1])
    del record["fields"]["fit_for_duty"]
    assert not env.verify_disclosed(record, device_keys[1])


def test_disclosed_with_another_device_key_fails(opened, device_keys, other_device_keys):
    record = env.disclose(opened, device_keys[1], withhold={"temperature_c"})
    assert not env.verify_disclosed(record, other_device_keys[1])


@pytest.mark.parametrize(
    "breakage",
    ["no-signature", "signature-not-base64", "salt-missing", "salt-not-text", "fields-not-a-dict", "withheld-not-a-dict"],
)
def test_verify_disclosed_false_for_broken_records(opened, device_keys, breakage):
    record = env.disclose(opened, device_keys[1])
    if breakage == "no-signature":
        del record["signature"]
    elif breakage == "signature-not-base64":
        record["signature"] = "!!"
    elif breakage == "salt-missing":
        del record["salts"]["worker_id"]
    elif breakage == "salt-not-text":
        record["salts"]["worker_id"] = 7
    elif breakage == "fields-not-a-dict":
        record["fields"] = ["worker_id"]
    elif breakage == "withheld-not-a-dict":
        record["withheld"] = 5
    assert env.verify_disclosed(record, device_keys[1]) is False


def test_field_salts_are_field_salt_and_opening_keeps_them(opened):
    names = ["worker_id", "taken_at", "temperature_c", "ghi_chú", ""]
    for secret in (b"\x00" * 16, os.urandom(16), os.urandom(64), os.urandom(65)):
        assert env.field_salts(dict.fromkeys(names, 1), secret) == {n: env.field_salt(secret, n) for n in names}
    assert set(opened.salts) == set(opened.body)
    assert opened.salts == {n: env.field_salt(opened.secret, n) for n in opened.body}
    assert opened.digests == {n: env.field_digest(opened.salts[n], v) for n, v in opened.body.items()}
