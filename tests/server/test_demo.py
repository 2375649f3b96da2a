"""The demo is made through the real sync path: HTTP, sealed envelopes, the same push service."""
from sqlalchemy import func, select

from server.demo import run_demo
from server.extensions import db
from server.models import Change, Device, DutyShift, QuarantineItem, RecordState, ResponseTarget, Revision, Site, Team, User


def test_demo_builds_an_organisation_and_pushes_over_http(app):
    summary = run_demo(app, password="demo-pass", echo=lambda *_: None)
    assert summary["technicians"] == 40 and summary["phones"] == 40
    count = lambda q: db.session.scalar(q)  # noqa: E731
    assert count(select(func.count()).select_from(Site)) == 200
    assert count(select(func.count()).select_from(Device)) == 40
    # every record arrived sealed: stored with its envelope, numbered in the change feed, none quarantined
    assert count(select(func.count()).select_from(Revision).where(Revision.envelope.is_(None))) == 0
    assert count(select(func.count()).select_from(Change)) == summary["records"]
    assert count(select(func.count()).select_from(QuarantineItem)) == 0
    statuses = {s for (s,) in db.session.execute(select(RecordState.status).where(RecordState.kind == "check_in"))}
    assert {"ok", "need_help", "sos"} <= statuses
    jobs = {s for (s,) in db.session.execute(select(RecordState.status).where(RecordState.kind == "repair_job"))}
    assert {"reported", "on_site", "restored", "closed"} <= jobs
    assert count(select(func.count()).select_from(Site).where(Site.status_state == "down")) >= 10
    assert count(select(func.count()).select_from(RecordState).where(RecordState.kind == "safety_check", RecordState.status == "unfit")) == 1
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    from werkzeug.security import check_password_hash
    assert check_password_hash(admin.password_hash, "demo-pass")


def test_demo_has_crews_on_duty_now_and_response_targets(app):
    from datetime import datetime, timezone

    run_demo(app, password="demo-pass", echo=lambda *_: None)
    now = datetime.now(timezone.utc)
    on_now = db.session.scalar(select(func.count()).select_from(DutyShift).where(DutyShift.starts_at <= now, DutyShift.ends_at > now))
    assert on_now == db.session.scalar(select(func.count()).select_from(Team))
    assert db.session.scalar(select(func.count()).select_from(ResponseTarget)) == 3
