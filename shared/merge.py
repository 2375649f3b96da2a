"""Pure merge rules (DESIGN §3.4): the same revisions in any order give the same state.

A *state* is what the server (and each phone) keeps per record::

    {"rev": <greatest revision applied>, "body": <merged body>, "field_revs": {...}}

- Facts (safety check, check-in, site status observation) are append-only: a
  record has one body. Should two revisions of one fact ever meet, the lowest
  revision wins everywhere, so all copies still agree.
- Repair jobs: ``status`` only moves up :data:`STATE_RANK` (a late "on site"
  never undoes "restored"); each step keeps its earliest time; notes are a
  union by note id, ordered by (time, id); every other field is
  last-writer-wins by HLC, field by field, where a revision that *changed* a
  field always beats one that only carried it along.
- The current state of a site is its observation with the greatest revision
  (:func:`newest`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from .canonical import canonical_json
from .schemas.repair_job import LWW_FIELDS, STATE_RANK

FACT_KINDS = frozenset({"safety_check", "check_in", "site_status"})


def apply(kind: str, state: dict | None, body: dict, rev: str) -> dict:
    """The state after applying revision ``rev`` with ``body`` to ``state``."""
    if kind in FACT_KINDS:
        return _apply_fact(state, body, rev)
    if kind == "repair_job":
        return _apply_job(state, body, rev)
    raise KeyError(f"no merge rule for kind {kind!r}")


def newest(a: dict | None, b: dict) -> dict:
    """Of two states, the one with the greater revision (site status: the current observation)."""
    return b if a is None or b["rev"] > a["rev"] else a


def _apply_fact(state: dict | None, body: dict, rev: str) -> dict:
    if state is None or rev < state["rev"]:
        return {"rev": rev, "body": dict(body), "field_revs": {}}
    return state


def _priority(rev: str, changed: bool) -> str:
    return ("1:" if changed else "0:") + rev


def _earlier(a: str, b: str) -> str:
    ta, tb = datetime.fromisoformat(a), datetime.fromisoformat(b)
    if ta != tb:
        return a if ta < tb else b
    return min(a, b)


def _apply_job(state: dict | None, body: dict, rev: str) -> dict:
    changed = set(body.get("changed", ()))
    incoming = {k: v for k, v in body.items() if k != "changed"}
    if state is None:
        merged = dict(incoming)
        merged["notes"] = _sorted_notes(incoming.get("notes", []))
        field_revs = {f: _priority(rev, f in changed) for f in LWW_FIELDS if f in incoming}
        return {"rev": rev, "body": merged, "field_revs": field_revs}

    old = state["body"]
    merged = dict(old)
    field_revs = dict(state["field_revs"])
    for f in LWW_FIELDS:
        if f not in incoming:
            continue
        priority = _priority(rev, f in changed)
        if priority > field_revs.get(f, ""):
            merged[f] = incoming[f]
            field_revs[f] = priority
    if STATE_RANK[incoming["status"]] > STATE_RANK[old["status"]]:
        merged["status"] = incoming["status"]
    steps = dict(old.get("steps", {}))
    for step, at in incoming.get("steps", {}).items():
        steps[step] = _earlier(steps[step], at) if step in steps else at
    merged["steps"] = steps
    merged["notes"] = _sorted_notes([*old.get("notes", []), *incoming.get("notes", [])])
    for key, value in incoming.items():  # fields unknown to this rule set: keep, first seen
        merged.setdefault(key, value)
    return {"rev": max(rev, state["rev"]), "body": merged, "field_revs": field_revs}


def _note_key(note: dict) -> tuple:
    return (datetime.fromisoformat(note["at"]), note["id"], canonical_json(note))


def _sorted_notes(notes: Any) -> list:
    # Two copies of one note id should never differ; if they do, every replica keeps
    # the same one (the earliest, then the least canonical form), whatever the order.
    unique: dict = {}
    for note in notes:
        kept = unique.get(note["id"])
        unique[note["id"]] = note if kept is None else min(kept, note, key=_note_key)
    return sorted(unique.values(), key=_note_key)
