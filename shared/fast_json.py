"""Canonical JSON at C speed (orjson), byte for byte what :mod:`shared.canonical` makes.

For the export bundles, which write and check a few hundred thousand records a
second: :func:`canon` is :func:`shared.canonical.canonical_json` and :func:`loads`
is :func:`json.loads`, only faster. Where orjson would differ, they hand the
value to the reference functions, so the result is always the same bytes (or
the same exception type):

- orjson writes floats below 1e-4 without Python's two-digit exponent
  (``1e-5`` / ``0.00001`` where Python writes ``1e-05``), NaN and infinities
  as ``null``, and refuses integers outside 64 bits, dict subclasses and
  non-string keys;
- orjson reads integers outside 64 bits as floats (json reads them exactly),
  and refuses NaN, Infinity and lone surrogates (json reads them).

So :func:`canon` uses orjson only for plain JSON values (exact types str, int,
float, bool, None, list, dict with str keys) whose floats are finite with
1e-4 <= |x| < 1e16 (or zero), and :func:`loads` keeps orjson's result only when
it holds no float outside that range. Tests compare both with the reference
functions on awkward values.
"""
from __future__ import annotations

import json
from typing import Any

import orjson

from .canonical import canonical_json

_SORT = orjson.OPT_SORT_KEYS
_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_LOW, _HIGH = 1e-4, 1e16


def tame(value: Any) -> bool:
    """True when orjson writes ``value`` exactly as canonical_json does (and reads it back as json would)."""
    kind = type(value)
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str:
                return False
            kind = type(v)
            if kind is str or v is None or kind is bool or kind is int:
                continue
            if kind is float:
                if not (v == 0.0 or _LOW <= abs(v) < _HIGH):  # NaN and the infinities fail both
                    return False
            elif not tame(v):
                return False
        return True
    if kind is list:
        for v in value:
            kind = type(v)
            if kind is str or v is None or kind is bool or kind is int:
                continue
            if kind is float:
                if not (v == 0.0 or _LOW <= abs(v) < _HIGH):
                    return False
            elif not tame(v):
                return False
        return True
    if kind is str or value is None or kind is bool or kind is int:
        return True
    if kind is float:
        return value == 0.0 or _LOW <= abs(value) < _HIGH
    return False


def canon(value: Any) -> bytes:
    """``canonical_json(value)``, through orjson when that gives the same bytes."""
    if tame(value):
        try:
            return _dumps(value, option=_SORT)
        except TypeError:  # an integer outside 64 bits, nesting deeper than orjson goes
            pass
    return canonical_json(value)


def canon_trusted(value: Any) -> bytes:
    """canon() for a value the caller has already found :func:`tame` (or built of str / int / None only)."""
    try:
        return _dumps(value, option=_SORT)
    except TypeError:
        return canonical_json(value)


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``, through orjson when that reads the same value."""
    try:
        value = _loads(data)
    except _JSONDecodeError:
        return json.loads(data)  # NaN, Infinity, lone surrogates, UTF-16 input: or the same error json gives
    if tame(value):
        return value
    return json.loads(data)


def loads_tame(data: bytes | str) -> tuple[Any, bool]:
    """(``json.loads(data)``, whether the value is :func:`tame`), checking tameness once."""
    try:
        value = _loads(data)
    except _JSONDecodeError:
        value = json.loads(data)
        return value, tame(value)
    if tame(value):
        return value, True
    value = json.loads(data)
    return value, tame(value)


__all__ = ["canon", "canon_trusted", "loads", "loads_tame", "tame"]
