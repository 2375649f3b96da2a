"""shared.schemas: record bodies, with errors a person can act on."""
from __future__ import annotations

import datetime as dt

import pytest
from marshmallow import ValidationError

from shared.schemas import (
    CHECK_IN_STATUSES, HEALTH_FIELDS, JOB_STATES, KINDS, RECORD_SCHEMAS, SafetyCheckSchema, assess_fitness,
    describe_errors, next_states, record_errors, schema_for,
)
from shared.schemas.repair_job import LWW_FIELDS, STATE_RANK, TRANSITIONS

ZONE_MESSAGE = "must include a time zone, e.g. +07:00"


def errors_of(kind, body):
    errors = record_errors(kind, body)
    assert errors, f"{kind} body unexpectedly valid"
    return errors


def test_registry():
    assert set(KINDS) == {"safety_check", "check_in", "site_status", "repair_job"}
    assert set(RECORD_SCHEMAS) == set(KINDS)
    assert schema_for("check_in") is schema_for("check_in")
    with pytest.raises(KeyError):
        schema_for("gossip")


def test_each_kind_valid_sample_loads(kind_and_body):
    kind, body = kind_and_body
    assert record_errors(kind, body) == {}
    loaded = schema_for(kind).load(body)
    assert loaded["schema_version"] == 1
    assert set(loaded) <= set(schema_for(kind).fields)


def test_times_load_aware(sample_bodies):
    loaded = schema_for("safety_check").load(sample_bodies["safety_check"])
    assert loaded["taken_at"] == dt.datetime(2026, 11, 25, 22, 30, tzinfo=dt.timezone.utc)


def test_unknown_kind_named():
    errors = record_errors("gossip", {})
    assert "unknown record kind 'gossip'" in errors["kind"][0]
    assert "repair_job" in errors["kind"][0]


def test_unknown_fields_rejected(kind_and_body):
    kind, body = kind_and_body
    body["temprature_c"] = 36.6
    errors = errors_of(kind, body)
    assert errors == {"temprature_c": ["Unknown field."]}


def test_text_with_a_nul_character_is_refused_in_every_kind(kind_and_body):
    # PostgreSQL text cannot hold NUL: refused by the schema, the phone says so before saving, and a
    # record that carries one anyway is rejected alone on push.
    kind, body = kind_and_body
    text_fields = [name for name, value in body.items() if isinstance(value, str) and name != "schema_version"]
    assert text_fields
    for name in text_fields:
        bad = {**body, name: body[name] + "\x00"}
        assert errors_of(kind, bad) == {name: ["must not contain the NUL character (\\u0000)"]}


def test_a_nul_character_deep_inside_or_in_a_field_name_is_named(sample_bodies):
    job = {**sample_bodies["repair_job"], "parts": ["fuse", "relay\x00"]}
    assert list(errors_of("repair_job", job)) == ["parts"]
    errors = errors_of("check_in", {**sample_bodies["check_in"], "no\x00te": ""})
    assert errors == {"no\\u0000te": ["must not contain the NUL character (\\u0000)"]}  # the name shown escaped


def test_unknown_nested_field_rejected(sample_bodies):
    body = sample_bodies["check_in"]
    body["position"]["altitude"] = 12
    assert errors_of("check_in", body) == {"position": {"altitude": ["Unknown field."]}}


def test_schema_version_other_than_1(kind_and_body):
    kind, body = kind_and_body
    body["schema_version"] = 2
    assert errors_of(kind, body) == {"schema_version": ["record schema version 2 is not supported; update the app"]}


def test_missing_required_field_named(kind_and_body):
    kind, body = kind_and_body
    del body["schema_version"]
    assert "schema_version" in errors_of(kind, body)


@pytest.mark.parametrize("temperature", [50, 29.9, 45.1])
def test_temperature_out_of_range(sample_bodies, temperature):
    body = dict(sample_bodies["safety_check"], temperature_c=temperature, fit_for_duty=False)
    assert errors_of("safety_check", body) == {"temperature_c": ["temperature must be between 30 and 45 °C"]}


@pytest.mark.parametrize("temperature", [30, 37.4, 45])
def test_temperature_bounds_accepted(sample_bodies, temperature):
    body = dict(sample_bodies["safety_check"], temperature_c=temperature, fit_for_duty=temperature < 37.5)
    assert record_errors("safety_check", body) == {}


@pytest.mark.parametrize("temperature", [37.5, 38.7])
def test_fit_for_duty_with_fever_rejected(sample_bodies, temperature):
    body = dict(sample_bodies["safety_check"], temperature_c=temperature, fit_for_duty=True)
    errors = errors_of("safety_check", body)
    assert errors == {
        "fit_for_duty": ["cannot be fit for duty with a fever (temperature 37.5 °C or more)"]
    }
    body["fit_for_duty"] = False
    assert record_errors("safety_check", body) == {}


@pytest.mark.parametrize("exposure", ["confirmed_contact", "positive_test"])
def test_fit_for_duty_after_exposure_rejected(sample_bodies, exposure):
    body = dict(sample_bodies["safety_check"], exposure=exposure)
    assert errors_of("safety_check", body) == {"fit_for_duty": [f"cannot be fit for duty after {exposure.replace('_', ' ')}"]}


def test_quarantine_area_needs_a_mask(sample_bodies):
    body = dict(sample_bodies["safety_check"], in_quarantine_area=True, ppe=["gloves"])
    assert errors_of("safety_check", body) == {"ppe": ["a mask is required to work in a quarantined area"]}
    body["ppe"] = ["gloves", "mask"]
    assert record_errors("safety_check", body) == {}


def test_unknown_symptom_lists_choices(sample_bodies):
    body = dict(sample_bodies["safety_check"], symptoms=["sneezing"], fit_for_duty=False)
    message = errors_of("safety_check", body)["symptoms"][0][0]
    assert message.startswith("each symptom must be one of: fever, cough")


@pytest.mark.parametrize(
    "kind, field",
    [("safety_check", "taken_at"), ("check_in", "at"), ("site_status", "observed_at"), ("repair_job", "reported_at")],
)
def test_naive_datetime_rejected_with_zone_message(sample_bodies, kind, field):
    body = dict(sample_bodies[kind], **{field: "2026-11-26T05:30:00"})
    assert errors_of(kind, body) == {field: [ZONE_MESSAGE]}


def test_not_a_time_message(sample_bodies):
    body = dict(sample_bodies["check_in"], at="yesterday")
    assert errors_of("check_in", body) == {"at": ["must be a time like 2026-11-26T05:30:00+07:00"]}


def test_utc_z_suffix_accepted(sample_bodies):
    body = dict(sample_bodies["check_in"], at="2026-11-26T05:30:00Z")
    assert record_errors("check_in", body) == {}


def test_repair_job_status_without_step_time(sample_bodies):
    body = sample_bodies["repair_job"]
    del body["steps"]["on_site"]
    assert errors_of("repair_job", body) == {"steps": ["the time of step 'on_site' is missing"]}


def test_repair_job_naive_step_time(sample_bodies):
    body = sample_bodies["repair_job"]
    body["steps"]["on_site"] = "2026-11-26T07:10:00"
    assert errors_of("repair_job", body) == {"steps": {"on_site": {"value": [ZONE_MESSAGE]}}}


def test_repair_job_unknown_step(sample_bodies):
    body = sample_bodies["repair_job"]
    body["steps"]["lunch"] = "2026-11-26T07:10:00+07:00"
    assert errors_of("repair_job", body)["steps"]["lunch"]["key"][0].startswith("step must be one of: reported")


def test_repair_job_parts_and_notes(sample_bodies):
    body = sample_bodies["repair_job"]
    body["parts"] = [{"name": "fuse", "quantity": 0}]
    body["notes"][0]["text"] = ""
    assert errors_of("repair_job", body) == {
        "parts": {0: {"quantity": ["quantity must be at least 1"]}},
        "notes": {0: {"text": ["a note must be 1 to 2000 characters"]}},
    }


def test_text_length_limit(sample_bodies):
    body = dict(sample_bodies["site_status"], cause="x" * 201)
    assert errors_of("site_status", body) == {"cause": ["must be at most 200 characters"]}


def test_check_in_without_position_is_fine(sample_bodies):
    body = sample_bodies["check_in"]
    del body["position"]
    assert record_errors("check_in", body) == {}
    body["position"] = None
    assert record_errors("check_in", body) == {}


@pytest.mark.parametrize("status", CHECK_IN_STATUSES)
def test_check_in_statuses(sample_bodies, status):
    assert record_errors("check_in", dict(sample_bodies["check_in"], status=status)) == {}


def test_check_in_bad_status(sample_bodies):
    assert errors_of("check_in", dict(sample_bodies["check_in"], status="fine")) == {
        "status": ["status must be one of: ok, need_help, sos"]
    }


def test_position_bounds(sample_bodies):
    body = sample_bodies["check_in"]
    body["position"] = {"lat": 91, "lon": -181}
    assert errors_of("check_in", body) == {
        "position": {"lat": ["latitude must be between -90 and 90"], "lon": ["longitude must be between -180 and 180"]}
    }


def test_load_raises_validation_error(sample_bodies):
    with pytest.raises(ValidationError) as info:
        SafetyCheckSchema().load(dict(sample_bodies["safety_check"], temperature_c=50))
    assert "temperature_c" in info.value.messages


# --- describe_errors ---------------------------------------------------------------------

def test_describe_errors_flat():
    assert describe_errors({"temperature_c": ["temperature must be between 30 and 45 °C"]}) == (
        "temperature_c: temperature must be between 30 and 45 °C"
    )


def test_describe_errors_nested_and_multiple():
    errors = {
        "position": {"lat": ["latitude must be between -90 and 90"]},
        "notes": {0: {"text": ["a note must be 1 to 2000 characters"]}},
        "at": ["first", "second"],
        "plain": "a bare string",
    }
    assert describe_errors(errors) == (
        "position.lat: latitude must be between -90 and 90; "
        "notes.0.text: a note must be 1 to 2000 characters; "
        "at: first; second; "
        "plain: a bare string"
    )


def test_describe_errors_of_real_record(sample_bodies):
    body = dict(sample_bodies["safety_check"], temperature_c=50, taken_at="2026-11-26T05:30:00", fit_for_duty=False)
    text = describe_errors(record_errors("safety_check", body))
    assert "temperature_c: temperature must be between 30 and 45 °C" in text
    assert f"taken_at: {ZONE_MESSAGE}" in text


def test_describe_errors_empty():
    assert describe_errors({}) == ""


# --- rules shared with the app and the merge ---------------------------------------------------

@pytest.mark.parametrize(
    "temperature, symptoms, exposure, fit",
    [
        (36.6, [], "none", True),
        (37.4, ["cough"], "suspected_contact", True),
        (37.5, [], "none", False),
        (36.6, ["fever"], "none", False),
        (36.6, ["loss_of_taste_or_smell"], "none", False),
        (36.6, ["shortness_of_breath"], "none", False),
        (36.6, [], "confirmed_contact", False),
        (36.6, [], "positive_test", False),
    ],
)
def test_assess_fitness(temperature, symptoms, exposure, fit):
    assert assess_fitness(temperature, symptoms, exposure) is fit


def test_assessed_fitness_is_accepted_by_schema(sample_bodies):
    for temperature in (36.0, 37.5, 39.0):
        for exposure in ("none", "confirmed_contact"):
            fit = assess_fitness(temperature, [], exposure)
            body = dict(sample_bodies["safety_check"], temperature_c=temperature, exposure=exposure, fit_for_duty=fit)
            assert record_errors("safety_check", body) == {}


def test_health_fields_exist_on_safety_check():
    assert HEALTH_FIELDS <= set(SafetyCheckSchema().fields)
    assert {"temperature_c", "notes"} <= HEALTH_FIELDS


def test_state_machine_only_moves_up_the_merge_rank():
    assert set(STATE_RANK) == set(JOB_STATES) == set(TRANSITIONS)
    for state in JOB_STATES:
        for nxt in next_states(state):
            assert STATE_RANK[nxt] > STATE_RANK[state], (state, nxt)
    assert next_states("closed") == () and next_states("cancelled") == ()
    assert next_states("no such state") == ()
    assert "restored" in next_states("on_site") and "on_site" not in next_states("restored")


def test_lww_fields_are_job_fields():
    fields = set(schema_for("repair_job").fields)
    assert set(LWW_FIELDS) <= fields
    assert not {"status", "steps", "notes", "changed"} & set(LWW_FIELDS)


@pytest.mark.parametrize("over", [{"temperature_c": 51.3}, {"temperature_c": 38.7, "fit_for_duty": True},
                                  {"exposure": "sneezed-on-by-38.7"}, {"symptoms": ["fever-38.7"]}])
def test_messages_never_quote_health_values(sample_bodies, over):
    """Rejection messages go to the quarantine table and the phone's sync screen: no health values in them."""
    from shared.schemas import describe_errors

    body = dict(sample_bodies["safety_check"], **over)
    message = describe_errors(record_errors("safety_check", body))
    assert message and "51.3" not in message and "38.7" not in message
