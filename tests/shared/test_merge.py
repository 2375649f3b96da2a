"""shared.merge: the same revisions in any order (and any number of times) give the same state."""
from __future__ import annotations

import copy
from datetime import datetime
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import merge
from shared.clock import Stamp
from shared.schemas import JOB_STATES, record_errors
from shared.schemas.repair_job import FAULT_TYPES, LWW_FIELDS, PRIORITIES, STATE_RANK

T0 = "2026-11-26T06:00:00+07:00"


def rev(wall: int, counter: int = 0, node: str = "dev-a") -> str:
    return str(Stamp(1764109800000 + wall, counter, node))


def job(**overrides) -> dict:
    body = {
        "schema_version": 1,
        "site_code": "HN-0042",
        "fault_type": "power",
        "priority": "high",
        "title": "Rectifier down",
        "status": "reported",
        "steps": {"reported": T0},
        "reported_at": T0,
        "actions": [],
        "parts": [],
        "notes": [],
        "team_id": "team-3",
        "team_operator": None,
        "changed": [],
    }
    body.update(overrides)
    assert record_errors("repair_job", body) == {}, record_errors("repair_job", body)
    return body


def fold(kind: str, revisions) -> dict:
    return reduce(lambda state, item: merge.apply(kind, state, item[1], item[0]), revisions, None)


def both_orders(kind, a, b):
    ab, ba = fold(kind, [a, b]), fold(kind, [b, a])
    assert ab == ba
    return ab


# --- property: any order, any duplicates ----------------------------------------------------------

# Times, including one instant written in two zones (05:00+07:00 == 22:00Z the day before).
TIMES = [
    "2026-11-26T05:00:00+07:00",
    "2026-11-25T22:00:00+00:00",
    "2026-11-26T05:30:00+07:00",
    "2026-11-26T06:15:00+07:00",
    "2026-11-26T01:00:00+02:00",
    "2026-11-26T07:00:00Z",
]
# Notes are made once, so a note id always comes with the same content.
NOTE_POOL = [
    {"id": f"note-{i}", "at": TIMES[i % len(TIMES)], "author": f"w-{i % 3}", "text": f"note number {i}"}
    for i in range(7)
]
OPTIONAL = ("title", "actions", "parts", "team_id", "team_operator")

revision_stamps = st.builds(
    lambda w, c, n: str(Stamp(1764109800000 + w, c, n)),
    st.integers(0, 5), st.integers(0, 3), st.sampled_from(["dev-a", "dev-b", "srv"]),
)


# Strategies built once: hypothesis validates each strategy object the first time it is used.
STATUS_S = st.sampled_from(JOB_STATES)
EXTRA_STEPS_S = st.lists(st.sampled_from(JOB_STATES), max_size=4, unique=True)
TIME_S = st.sampled_from(TIMES)
SITE_S = st.sampled_from(["HN-0042", "HN-0043"])
FAULT_S = st.sampled_from(FAULT_TYPES[:3])
PRIORITY_S = st.sampled_from(PRIORITIES)
TITLE_S = st.sampled_from(["", "Rectifier down", "Fibre cut at km 12"])
ACTIONS_S = st.lists(st.sampled_from(["reset", "replaced fuse", "spliced"]), max_size=2)
PARTS_S = st.sampled_from([[], [{"name": "fuse 63A", "quantity": 2}], [{"name": "splice kit", "quantity": 1}]])
TEAM_S = st.sampled_from([None, "team-3", "team-4"])
OPERATOR_S = st.sampled_from([None, "w-1", "w-2"])
NOTES_S = st.lists(st.sampled_from(NOTE_POOL), max_size=3, unique_by=lambda n: n["id"])
CHANGED_S = st.lists(st.sampled_from([*LWW_FIELDS, "status", "notes"]), max_size=4, unique=True)
DROPPED_S = st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=2)


@st.composite
def job_revision(draw):
    status = draw(STATUS_S)
    steps = {s: draw(TIME_S) for s in sorted({status, *draw(EXTRA_STEPS_S)})}
    body = {
        "schema_version": 1,
        "site_code": draw(SITE_S),
        "fault_type": draw(FAULT_S),
        "priority": draw(PRIORITY_S),
        "status": status,
        "steps": steps,
        "reported_at": draw(TIME_S),
        "title": draw(TITLE_S),
        "actions": draw(ACTIONS_S),
        "parts": draw(PARTS_S),
        "team_id": draw(TEAM_S),
        "team_operator": draw(OPERATOR_S),
        "notes": draw(NOTES_S),
        "changed": draw(CHANGED_S),
    }
    for name in draw(DROPPED_S):
        del body[name]  # optional fields a revision may not carry
    if draw(st.booleans()):
        del body["notes"]
    return body


@st.composite
def job_history(draw):
    revs = draw(REVS_S)
    return [(r, draw(JOB_REVISION_S)) for r in revs]


JOB_REVISION_S = job_revision()
REVS_S = st.lists(revision_stamps, min_size=1, max_size=7, unique=True)


@st.composite
def shuffled_with_duplicates(draw, items):
    order = list(draw(st.permutations(items)))
    for _ in range(draw(st.integers(0, 4))):
        order.insert(draw(st.integers(0, len(order))), draw(st.sampled_from(items)))
    return order


def _instant(text):
    return datetime.fromisoformat(text)


def expected_job_state(history):
    """What the merge rules say the result is, computed directly from the whole set."""
    statuses = [b["status"] for _, b in history]
    steps = {}
    for _, b in history:
        for step, at in b["steps"].items():
            steps.setdefault(step, []).append(at)
    notes = {n["id"]: n for _, b in history for n in b.get("notes", [])}
    fields = {}
    for f in LWW_FIELDS:
        carriers = [(f in b["changed"], r, b[f]) for r, b in history if f in b]
        if carriers:
            fields[f] = max(carriers, key=lambda c: (c[0], c[1]))[2]
    return {
        "rev": max(r for r, _ in history),
        "status": max(statuses, key=STATE_RANK.__getitem__),
        "steps": {s: min(ats, key=lambda a: (_instant(a), a)) for s, ats in steps.items()},
        "notes": sorted(notes.values(), key=lambda n: (_instant(n["at"]), n["id"])),
        "fields": fields,
    }


@settings(max_examples=30, deadline=None)
@given(job_revision())
def test_generated_revisions_are_valid_records(body):
    # The property below is only worth something if it merges revisions the schema accepts.
    assert record_errors("repair_job", body) == {}


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_repair_job_any_order_and_duplicates_same_state(data):
    history = data.draw(job_history())
    snapshot = copy.deepcopy(history)
    reference = fold("repair_job", sorted(history, key=lambda item: item[0]))
    for _ in range(3):
        order = data.draw(shuffled_with_duplicates(history))
        assert fold("repair_job", order) == reference
    assert history == snapshot  # applying never changes the revisions themselves

    want = expected_job_state(history)
    body = reference["body"]
    assert reference["rev"] == want["rev"]
    assert body["status"] == want["status"]
    assert body["steps"] == want["steps"]
    assert body["notes"] == want["notes"]
    for f, value in want["fields"].items():
        assert body[f] == value, f
    assert "changed" not in body


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_facts_any_order_keep_lowest_revision(data):
    revs = data.draw(st.lists(revision_stamps, min_size=1, max_size=6, unique=True))
    history = [(r, {"schema_version": 1, "n": i}) for i, r in enumerate(revs)]
    order = data.draw(shuffled_with_duplicates(history))
    lowest = min(history)
    for kind in sorted(merge.FACT_KINDS):
        state = fold(kind, order)
        assert state["rev"] == lowest[0] and state["body"] == lowest[1]


# --- concrete cases -------------------------------------------------------------------------------

ON_SITE_STEPS = {"reported": T0, "en_route": "2026-11-26T06:20:00+07:00", "on_site": "2026-11-26T07:10:00+07:00"}
RESTORED_STEPS = {**ON_SITE_STEPS, "restored": "2026-11-26T09:00:00+07:00"}


def test_late_on_site_never_undoes_restored():
    restored = (rev(1), job(status="restored", steps=RESTORED_STEPS, changed=["status"]))
    late_on_site = (rev(2, node="dev-b"), job(status="on_site", steps=ON_SITE_STEPS, changed=["status"]))
    state = both_orders("repair_job", restored, late_on_site)
    assert state["body"]["status"] == "restored"
    assert state["body"]["steps"]["restored"] == "2026-11-26T09:00:00+07:00"
    assert state["rev"] == rev(2, node="dev-b")


def test_status_moves_forward_in_order():
    state = fold("repair_job", [
        (rev(1), job(status="reported")),
        (rev(2), job(status="on_site", steps=ON_SITE_STEPS)),
    ])
    assert state["body"]["status"] == "on_site"


def test_closed_outranks_cancelled_and_cancelled_outranks_restored():
    cancelled = (rev(1), job(status="cancelled", steps={"reported": T0, "cancelled": T0}))
    restored = (rev(2), job(status="restored", steps=RESTORED_STEPS))
    closed = (rev(3), job(status="closed", steps={**RESTORED_STEPS, "closed": "2026-11-26T10:00:00+07:00"}))
    assert both_orders("repair_job", cancelled, restored)["body"]["status"] == "cancelled"
    assert both_orders("repair_job", cancelled, closed)["body"]["status"] == "closed"


def test_each_step_keeps_its_first_time():
    early = (rev(5), job(status="on_site", steps={**ON_SITE_STEPS, "on_site": "2026-11-26T07:00:00+07:00"}))
    late = (rev(1), job(status="on_site", steps={**ON_SITE_STEPS, "on_site": "2026-11-26T07:30:00+07:00"}))
    state = both_orders("repair_job", early, late)
    assert state["body"]["steps"]["on_site"] == "2026-11-26T07:00:00+07:00"


def test_step_times_compared_as_instants_not_strings():
    # 01:30+00:00 is after 07:00+07:00 (= 00:00Z), though it sorts first as text.
    a = (rev(1), job(status="on_site", steps={**ON_SITE_STEPS, "on_site": "2026-11-26T07:00:00+07:00"}))
    b = (rev(2), job(status="on_site", steps={**ON_SITE_STEPS, "on_site": "2026-11-26T01:30:00+00:00"}))
    assert both_orders("repair_job", a, b)["body"]["steps"]["on_site"] == "2026-11-26T07:00:00+07:00"


def test_steps_from_both_sides_are_united():
    a = (rev(1), job(status="assigned", steps={"reported": T0, "assigned": "2026-11-26T06:05:00+07:00"}))
    b = (rev(2), job(status="acknowledged", steps={"reported": T0, "acknowledged": "2026-11-26T06:07:00+07:00"}))
    assert set(both_orders("repair_job", a, b)["body"]["steps"]) == {"reported", "assigned", "acknowledged"}


def test_notes_from_two_devices_both_kept():
    n1 = {"id": "n-a", "at": "2026-11-26T07:00:00+07:00", "author": "w-1", "text": "generator fuel low"}
    n2 = {"id": "n-b", "at": "2026-11-26T06:50:00+07:00", "author": "w-2", "text": "gate locked, key at office"}
    a = (rev(1, node="dev-a"), job(notes=[n1], changed=["notes"]))
    b = (rev(1, node="dev-b"), job(notes=[n2], changed=["notes"]))
    state = both_orders("repair_job", a, b)
    assert state["body"]["notes"] == [n2, n1]  # by time


def test_note_not_lost_when_later_revision_omits_it():
    n1 = {"id": "n-a", "at": T0, "author": "w-1", "text": "first"}
    state = both_orders("repair_job", (rev(1), job(notes=[n1])), (rev(2), job(notes=[])))
    assert state["body"]["notes"] == [n1]


def test_same_note_id_with_different_content_converges():
    # A note must never be overwritten, but should two copies of one note id ever differ
    # (an app bug, a hand-made request), every replica must still keep the same one.
    first = {"id": "n-a", "at": T0, "author": "w-1", "text": "gate locked"}
    edited = dict(first, text="gate locked, key at office")
    a = (rev(1), job(notes=[first]))
    b = (rev(2), job(notes=[edited]))
    state = both_orders("repair_job", a, b)
    assert len(state["body"]["notes"]) == 1


CONFLICTING_NOTES = [
    {"id": "n-a", "at": TIMES[0], "author": "w-1", "text": "gate locked"},
    {"id": "n-a", "at": TIMES[0], "author": "w-1", "text": "gate locked, key at office"},
    {"id": "n-a", "at": TIMES[1], "author": "w-1", "text": "gate locked"},  # same instant, other zone
    {"id": "n-a", "at": TIMES[2], "author": "w-2", "text": "gate locked"},
    {"id": "n-b", "at": TIMES[0], "author": "w-2", "text": "fuel low"},
]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_conflicting_note_copies_converge(data):
    revs = data.draw(st.lists(revision_stamps, min_size=1, max_size=5, unique=True))
    history = [(r, job(notes=data.draw(st.lists(st.sampled_from(CONFLICTING_NOTES), max_size=3)))) for r in revs]
    reference = fold("repair_job", history)
    order = data.draw(shuffled_with_duplicates(history))
    assert fold("repair_job", order) == reference
    ids = [n["id"] for n in reference["body"]["notes"]]
    assert len(ids) == len(set(ids))


def test_field_lww_by_hlc():
    a = (rev(1), job(title="Rectifier down", changed=["title"]))
    b = (rev(2), job(title="Rectifier and battery down", changed=["title"]))
    assert both_orders("repair_job", a, b)["body"]["title"] == "Rectifier and battery down"


def test_field_lww_ties_broken_by_node():
    a = (rev(1, node="dev-a"), job(priority="low", changed=["priority"]))
    b = (rev(1, node="dev-b"), job(priority="critical", changed=["priority"]))
    assert both_orders("repair_job", a, b)["body"]["priority"] == "critical"


def test_change_beats_a_later_carry():
    # dev-a changes the priority; dev-b, later by HLC, saves the job with the old priority carried along.
    changed = (rev(1, node="dev-a"), job(priority="critical", changed=["priority"]))
    carried = (rev(9, node="dev-b"), job(priority="high", title="New title", changed=["title"]))
    state = both_orders("repair_job", changed, carried)
    assert state["body"]["priority"] == "critical"
    assert state["body"]["title"] == "New title"
    assert state["rev"] == rev(9, node="dev-b")


def test_fields_merged_independently():
    a = (rev(1), job(title="From A", team_id="team-9", changed=["title"]))
    b = (rev(2), job(title="Rectifier down", team_id="team-4", changed=["team_id"]))
    body = both_orders("repair_job", a, b)["body"]
    assert body["title"] == "From A" and body["team_id"] == "team-4"


def test_field_carried_by_only_one_revision_is_kept():
    a = job(title="Only here", changed=["title"])
    b = job()
    del b["title"]
    assert both_orders("repair_job", (rev(2), a), (rev(3), b))["body"]["title"] == "Only here"


def test_duplicate_revision_is_a_no_op():
    a = (rev(1), job(title="X", changed=["title"]))
    once = fold("repair_job", [a])
    assert fold("repair_job", [a, a, a]) == once


def test_apply_does_not_mutate_state_or_body():
    a = (rev(1), job(status="on_site", steps=ON_SITE_STEPS, notes=[NOTE_POOL[0]]))
    b = (rev(2), job(status="restored", steps=RESTORED_STEPS, notes=[NOTE_POOL[1]], title="T", changed=["title"]))
    state = fold("repair_job", [a])
    before_state, before_body = copy.deepcopy(state), copy.deepcopy(b[1])
    merge.apply("repair_job", state, b[1], b[0])
    assert state == before_state and b[1] == before_body


@pytest.mark.parametrize("kind", sorted(merge.FACT_KINDS))
def test_facts_keep_the_lowest_revision_regardless_of_order(kind):
    low, high = (rev(1), {"v": "first"}), (rev(2), {"v": "second"})
    assert both_orders(kind, low, high) == {"rev": rev(1), "body": {"v": "first"}, "field_revs": {}}
    assert fold(kind, [high, low, high]) == fold(kind, [low])


def test_unknown_kind():
    with pytest.raises(KeyError):
        merge.apply("gossip", None, {}, rev(1))


def test_newest():
    older = {"rev": rev(1), "body": {"state": "down"}, "field_revs": {}}
    newer = {"rev": rev(2), "body": {"state": "up"}, "field_revs": {}}
    assert merge.newest(None, older) is older
    assert merge.newest(older, newer) is newer
    assert merge.newest(newer, older) is newer
    assert merge.newest(newer, newer) is newer


@given(st.lists(revision_stamps, min_size=1, max_size=8, unique=True), st.randoms(use_true_random=False))
def test_newest_any_order_is_greatest(revs, rnd):
    states = [{"rev": r, "body": {}, "field_revs": {}} for r in revs]
    rnd.shuffle(states)
    assert reduce(merge.newest, states, None)["rev"] == max(revs)
