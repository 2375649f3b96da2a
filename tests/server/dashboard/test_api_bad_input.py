"""Every operation of the JSON API, driven from its own OpenAPI document, answers bad input with a 4xx:
wrong types and out-of-range numbers in each query parameter and body field, unknown fields, bodies that
are not objects, ids in the address beyond 64 bits or full of junk, the NUL character anywhere.

Each request runs with the rights to get past authentication (an admin's token, or a device's for the
sync routes), so the input reaches the handlers and the database."""
from __future__ import annotations

import re

from server.extensions import db
from tests.server.conftest import enrol_phone

NUL = "\x00"
BAD_QUERY = {"integer": ["abc", "", "1e400", str(2**31), str(10**30), "-1"], "number": ["abc", "nan", "inf", "1e400"],
             "string": ["", "x" * 3000, NUL, "2026-13-45T99:99"], "boolean": ["maybe"]}
BAD_FIELD = {"integer": ["x", 2**31, 10**30, -10**30, 1.5, None, [], {}], "number": ["x", None, 1e308, [], {}],
             "string": [5, None, "", "x" * 100_000, [], {}, NUL, f"a{NUL}b"], "boolean": ["x", 2, None],
             "array": ["x", {}, None, [None], [{}], [10**30], [NUL]], "object": ["x", [], None, {"zz": 1}]}
BAD_PATH = {"integer": ["0", str(2**31), str(2**63 - 1), str(10**30)], "string": ["nope", "x" * 300, "%00"]}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _type(spec: dict, schema: dict) -> str:
    kind = _resolve(spec, schema).get("type", "object")
    return kind[0] if isinstance(kind, list) else kind


def _requests(spec: dict):
    """(method, url, keyword arguments for the test client) for every bad input of every operation."""
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = op.get("parameters", []) + operations.get("parameters", [])
            urls = [path]
            for p in (p for p in params if p["in"] == "path"):
                urls = [u.replace("{%s}" % p["name"], v) for u in urls for v in BAD_PATH.get(_type(spec, p.get("schema", {})), BAD_PATH["string"])]
            cases = [{"query_string": {p["name"]: v}} for p in params if p["in"] == "query" for v in BAD_QUERY.get(_type(spec, p.get("schema", {})), ["x"])]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                cases += [{"json": v} for v in ([], {"zz": 1}, {}, "x", {f"z{NUL}": 1})]
                cases += [{"data": b"{bad", "content_type": "application/json"}]
                for name, prop in _resolve(spec, body).get("properties", {}).items():
                    cases += [{"json": {name: v}} for v in BAD_FIELD.get(_type(spec, prop), ["x"])]
            for url in urls:
                for case in cases or [{}]:
                    yield method, url, case


def test_every_api_operation_answers_bad_input_with_a_4xx(client, tokens):
    phone = enrol_phone(client)
    spec = client.get("/api/v1/openapi.json").get_json()
    answered, server_errors = 0, []
    for method, url, case in _requests(spec):
        auth = phone.auth if re.match(r"/api/v1/(sync|devices)/", url) else tokens["admin"]
        r = getattr(client, method)(url, headers=auth, **case)
        db.session.rollback()  # as the end of a real request would (the test keeps one app context)
        answered += 1
        if r.status_code >= 500:
            server_errors.append((method.upper(), url[:70], repr(case)[:80], r.status_code))
        elif r.status_code >= 400 and r.is_json:
            assert set(r.get_json()) >= {"code", "status", "message", "reason"}, (method, url, case)
    assert answered > 200  # the document lists every operation: a broken walk would check nothing
    assert server_errors == []


def test_ids_beyond_64_bits_are_not_found(client, tokens):
    r = client.post(f"/api/v1/alerts/{10**30}/acknowledge", headers=tokens["admin"])
    assert r.status_code == 404 and r.get_json()["reason"] == "not_found"
