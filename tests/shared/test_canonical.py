"""shared.canonical: the one byte form that signatures and hashes are computed over."""
from __future__ import annotations

import hashlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.canonical import canonical_json, sha256_hex

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


def test_keys_sorted_and_no_whitespace():
    assert canonical_json({"b": 1, "a": [1, 2, {"d": None, "c": True}]}) == b'{"a":[1,2,{"c":true,"d":null}],"b":1}'


def test_nested_keys_sorted_at_every_level():
    assert canonical_json({"z": {"y": 1, "x": 2}}) == b'{"z":{"x":2,"y":1}}'


def test_utf8_not_escaped():
    out = canonical_json({"note": "nhiệt độ 38,7 °C"})
    assert out == '{"note":"nhiệt độ 38,7 °C"}'.encode("utf-8")
    assert b"\\u" not in out


def test_returns_bytes():
    assert isinstance(canonical_json([]), bytes)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"t": math.nan}, [math.inf]])
def test_nan_and_infinities_rejected(bad):
    with pytest.raises(ValueError):
        canonical_json(bad)


def test_int_and_float_have_distinct_forms():
    # A signature over 1 must not verify for 1.0: the byte forms differ.
    assert canonical_json(1) != canonical_json(1.0)


@settings(max_examples=60)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_insertion_order_does_not_matter(d):
    reversed_d = dict(reversed(list(d.items())))
    assert canonical_json(d) == canonical_json(reversed_d)


@settings(max_examples=60)
@given(json_values)
def test_round_trips_through_json(value):
    out = canonical_json(value)
    assert json.loads(out.decode("utf-8")) == value
    assert canonical_json(json.loads(out)) == out


def test_sha256_hex_known_vector():
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_sha256_hex_matches_hashlib():
    data = canonical_json({"a": 1})
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert sha256_hex(data) != sha256_hex(data + b" ")


from hypothesis import given, strategies as st

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_json = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@given(_json)
def test_fast_paths_match_the_json_encoder_byte_for_byte(value):
    import json

    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    assert canonical_json(value) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), [float("-inf")]])
def test_non_finite_floats_are_refused(bad):
    with pytest.raises(ValueError):
        canonical_json(bad)
