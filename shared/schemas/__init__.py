"""Record schemas (the wire truth for record bodies) and the kind registry."""
from __future__ import annotations

from marshmallow import Schema, ValidationError

from .base import BaseSchema, PositionSchema, RecordSchema
from .check_in import CHECK_IN_STATUSES, CheckInSchema
from .repair_job import JOB_STATES, RepairJobSchema, next_states
from .safety_check import HEALTH_FIELDS, SafetyCheckSchema, assess_fitness
from .site_status import SiteStatusSchema

RECORD_SCHEMAS: dict[str, type[RecordSchema]] = {
    "safety_check": SafetyCheckSchema,
    "check_in": CheckInSchema,
    "site_status": SiteStatusSchema,
    "repair_job": RepairJobSchema,
}
KINDS = tuple(RECORD_SCHEMAS)
# The field holding the time a record is about, per kind (filters, sorting, exports).
TIME_FIELD = {"safety_check": "taken_at", "check_in": "at", "site_status": "observed_at", "repair_job": "reported_at"}
_instances: dict[str, Schema] = {}


def schema_for(kind: str) -> Schema:
    """A shared instance of the schema of ``kind``; KeyError for an unknown kind."""
    if kind not in _instances:
        _instances[kind] = RECORD_SCHEMAS[kind]()
    return _instances[kind]


def record_errors(kind: str, body: dict) -> dict:
    """Validation errors of a record body (empty when valid)."""
    if kind not in RECORD_SCHEMAS:
        return {"kind": [f"unknown record kind {kind!r}; expected one of: {', '.join(KINDS)}"]}
    return schema_for(kind).validate(body)


def describe_errors(errors: dict, prefix: str = "") -> str:
    """One sentence from marshmallow's nested error dict: 'temperature_c: temperature must be ...'."""
    parts = []
    for name, value in errors.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            parts.append(describe_errors(value, f"{path}."))
        else:
            msgs = value if isinstance(value, list) else [value]
            parts.append(f"{path}: {'; '.join(str(m) for m in msgs)}")
    return "; ".join(parts)


__all__ = [
    "BaseSchema", "PositionSchema", "RecordSchema", "CheckInSchema", "RepairJobSchema", "SafetyCheckSchema",
    "SiteStatusSchema", "RECORD_SCHEMAS", "KINDS", "JOB_STATES", "CHECK_IN_STATUSES", "HEALTH_FIELDS",
    "TIME_FIELD", "schema_for", "record_errors", "describe_errors", "next_states", "assess_fitness", "ValidationError",
]
