"""Checks every request passes before any view reads it (create_app registers them first).

Each turns a client's mistake that would otherwise reach the database, and fail there as a 500, into a
clear 4xx. Bodies are checked by their schemas (``shared.schemas.base.BaseSchema``).
"""
from __future__ import annotations

from flask import request
from werkzeug.routing import IntegerConverter

from shared.protocol import INT64_MAX
from shared.schemas.base import has_nul

from .errors import DomainError


class Int64Converter(IntegerConverter):
    """``<int:...>`` in every route goes up to 2**63 - 1, the largest id a database holds: a larger
    number is a page that does not exist (404), not an integer the database refuses."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = INT64_MAX, signed: bool = False):
        super().__init__(map, fixed_digits, min, max, signed)


def refuse_nul_characters() -> None:
    """No address, query or form field has a use for the NUL character, and PostgreSQL text cannot hold it."""
    if has_nul(request.path) or any(has_nul(k) or has_nul(v) for source in (request.args, request.form)
                                    for k, v in source.items(multi=True)):
        raise DomainError("The address, its query or the form holds a NUL character (\\u0000), which no field accepts.")


def register(app) -> None:
    """Install the checks; call before any blueprint is registered (routes take their converters then)."""
    app.url_map.converters["int"] = Int64Converter
    app.before_request(refuse_nul_characters)
