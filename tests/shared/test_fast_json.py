"""shared.fast_json: orjson where it gives canonical_json's bytes and json.loads's values, the reference elsewhere."""
from __future__ import annotations

import json
import math
import random
import struct

import pytest

from shared.canonical import canonical_json
from shared.fast_json import canon, canon_trusted, loads, loads_tame, tame


def _same_as_reference(value):
    try:
        expected = canonical_json(value)
    except Exception as exc:  # noqa: BLE001 - the same kind of failure is what is compared
        with pytest.raises(type(exc)):
            canon(value)
        return
    assert canon(value) == expected, value


AWKWARD = [
    None, True, False, 0, -0, 1, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1, 10**30, -10**30,
    0.0, -0.0, 1.0, 36.6, 1e-4, 9.99e-5, 1e-5, 1.5e-7, 5e-324, -2.5e-10, 1e15, 1e16, 1e17, 1.7976931348623157e308, 123456789.125,
    float("nan"), float("inf"), -float("inf"),
    "", "a", 'q"uote', "back\\slash", "\x00\x01\x1f\x7f", "\n\r\t\b\f", "é ạ ghi chú", "\u2028\u2029", "\ufeff", "😀", "\ud800",
    [], [1, "a", None], [[[]]], [1e-5], [2**70], {"b": 1, "a": 2}, {"é": 1, "z": 2, "😀": 3, "\uffff": 4, "A": 5},
    {"nested": {"x": [1.5, {"y": 1e-7}]}}, {1: "int key"}, {"t": (1, 2)}, (1, 2), {"s": {1, 2}}, b"bytes",
]


@pytest.mark.parametrize("value", AWKWARD, ids=repr)
def test_canon_is_canonical_json(value):
    _same_as_reference(value)


def test_canon_on_random_floats_and_structures():
    rnd = random.Random(6)
    for i in range(20000):
        bits = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        scaled = rnd.uniform(-1000, 1000) * 10 ** rnd.randint(-30, 30)
        for f in (bits, scaled, round(rnd.uniform(-50, 50), rnd.randint(0, 7))):
            _same_as_reference(f)
            _same_as_reference({"v": [f, str(i)], "k": f})


class _Str(str):
    pass


def test_subclasses_and_other_types_take_the_reference_path():
    assert not tame(_Str("x")) and not tame((1,)) and not tame({1: 2}) and not tame(float("nan"))
    assert canon({"a": _Str("x")}) == canonical_json({"a": _Str("x")})
    assert canon_trusted({"b": 2**70, "a": 1}) == canonical_json({"b": 2**70, "a": 1})


@pytest.mark.parametrize("text", [
    "18446744073709551616", "-9223372036854775809", "[12345678901234567890123, 1]", "9223372036854775808", '{"a":1,"a":2}',
    "NaN", "[Infinity]", "-Infinity", '"\\ud800"', '"\\ud83d\\ude00"', "1e400", "-1e-400", "1e-5", "0.1", "-0", "-0.0",
    '{"x": 1.5e-7, "y": [1E5]}', "  [1 , 2]  ", '"é\\n"', "true", "null",
])
def test_loads_reads_what_json_reads(text):
    for data in (text, text.encode("utf-8")):
        expected = json.loads(data)
        got = loads(data)
        assert repr(got) == repr(expected), text
        value, is_tame = loads_tame(data)
        assert repr(value) == repr(expected) and is_tame == tame(expected)


@pytest.mark.parametrize("text", ["", "[1,", "{'a': 1}", b"\xff\xfe", "[1] x", '"\x01"'])
def test_loads_fails_where_json_fails(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        loads(text)


def test_loads_on_random_numbers():
    rnd = random.Random(7)
    for _ in range(20000):
        f = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(f):
            text = repr(f)
            assert repr(loads(text)) == repr(json.loads(text))
        n = rnd.randint(-2**80, 2**80)
        assert loads(str(n)) == n and type(loads(str(n))) is int
