"""Safety check: one technician's health-safety declaration; immutable once made."""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from .base import ID, PositionSchema, RecordSchema, one_of, text, when

SYMPTOMS = ("fever", "cough", "sore_throat", "shortness_of_breath", "loss_of_taste_or_smell", "fatigue", "headache", "diarrhoea")
EXPOSURES = ("none", "suspected_contact", "confirmed_contact", "household_quarantine", "positive_test")
PPE = ("mask", "gloves", "face_shield", "gown", "sanitiser", "helmet", "harness")
FEVER_C = 37.5
HEALTH_FIELDS = frozenset({"temperature_c", "symptoms", "exposure", "notes"})


class SafetyCheckSchema(RecordSchema):
    """A health-safety check before or during a shift."""

    worker_id = fields.String(required=True, validate=ID)
    taken_at = when(required=True)
    temperature_c = fields.Float(
        required=True, validate=validate.Range(30, 45, error="temperature must be between 30 and 45 °C")
    )
    symptoms = fields.List(one_of(SYMPTOMS, "each symptom"), load_default=list)
    exposure = one_of(EXPOSURES, "exposure", required=True)
    ppe = fields.List(one_of(PPE, "each piece of protective equipment"), load_default=list)
    site_code = fields.String(load_default=None, allow_none=True, validate=ID)
    in_quarantine_area = fields.Boolean(required=True)
    fit_for_duty = fields.Boolean(required=True)
    notes = text(1000, load_default="")
    position = fields.Nested(PositionSchema, load_default=None, allow_none=True)

    @validates_schema
    def _fit_only_when_safe(self, data, **kwargs):
        if not data.get("fit_for_duty"):
            return
        if data.get("temperature_c", 0) >= FEVER_C:
            # The message names the rule, never the value: it travels to quarantine and logs.
            raise ValidationError(f"cannot be fit for duty with a fever (temperature {FEVER_C} °C or more)", "fit_for_duty")
        if data.get("exposure") in ("confirmed_contact", "positive_test"):
            raise ValidationError(f"cannot be fit for duty after {data['exposure'].replace('_', ' ')}", "fit_for_duty")
        if data.get("in_quarantine_area") and "mask" not in data.get("ppe", []):
            raise ValidationError("a mask is required to work in a quarantined area", "ppe")


def assess_fitness(temperature_c: float, symptoms, exposure: str) -> bool:
    """The fit-for-duty rule the app proposes: no fever, no fever-like symptoms, no confirmed exposure."""
    return (
        temperature_c < FEVER_C
        and not {"fever", "shortness_of_breath", "loss_of_taste_or_smell"} & set(symptoms)
        and exposure not in ("confirmed_contact", "positive_test")
    )
