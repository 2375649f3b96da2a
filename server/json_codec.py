"""JSON for the database's JSON columns and for HTTP answers, through orjson.

The sync paths spend much of their time turning record bodies into JSON and
back (push stores three JSON columns per record, pull sends pages of
thousands). orjson does that several times faster than the standard library.
What is *signed* never goes through here: signatures and hashes use
:mod:`shared.canonical`, whose bytes every phone and verifier reproduce.

Values orjson refuses (an integer past 64 bits, a non-string key) fall back to
the standard library, so nothing that worked before fails now.
"""
from __future__ import annotations

import json
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

# Dates, dataclasses and the like keep Flask's own forms (its `default`), as before.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps_text(value: Any) -> str:
    """JSON text of a column value (SQLAlchemy's ``json_serializer``)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    """A column value or request body from JSON text (``json_deserializer``)."""
    return orjson.loads(text)


def engine_options() -> dict:
    """SQLAlchemy engine options that route JSON columns through orjson."""
    return {"json_serializer": dumps_text, "json_deserializer": loads}


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson underneath; pretty output (debug) still goes to the standard library."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS).decode()
        except TypeError:
            return super().dumps(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return super().loads(s, **kwargs)
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any):
        obj = self._prepare_response_obj(args, kwargs)
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(obj)
        try:
            body = orjson.dumps(obj, default=self.default, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            return super().response(obj)
        return self._app.response_class(body, mimetype=self.mimetype)
