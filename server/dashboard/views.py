"""Dashboard pages. Each view: read the request, call a service with the person's scope, render."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import auth
from ..errors import DomainError, Invalid
from ..extensions import db
from ..services import devices_admin, jobs, overview, people, quarantine_review, safety
from ..services.keys import keyring
from . import bp


@bp.before_request
def _before():
    auth.csrf_protect()
    if auth.session_expired():
        flash("Your session has expired; sign in again.", "warning")
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    return None


def _safe_next(target: str | None) -> str:
    # only a path on this site: never an open redirect
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("dashboard.home")


def _done(message: str, back: str):
    db.session.commit()
    flash(message, "ok")
    return redirect(back)


def _refused(exc: DomainError, back: str):
    db.session.rollback()
    flash(exc.message, "error")
    return redirect(back)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a username and password."""
    if request.method == "POST":
        try:
            user = people.verify_login(request.form.get("username", ""), request.form.get("password", ""))
        except DomainError as exc:
            return render_template("dashboard/login.html", error=exc.message, username=request.form.get("username", "")), 401
        auth.sign_in(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("dashboard/login.html", error=None, username="")


@bp.post("/logout")
def logout():
    """End the session."""
    auth.sign_out()
    flash("You are signed out.", "ok")
    return redirect(url_for("dashboard.login"))


@bp.get("/")
@auth.page_roles()
def home():
    """The overview for supervisors and admins; technicians and auditors go to their own start page."""
    if current_user.role == "technician":
        return redirect(url_for("dashboard.worker", code=current_user.user.code))
    if current_user.role == "auditor":
        return redirect(url_for("dashboard.audit_log"))
    data = overview.overview(auth.scope(), request.args.get("region") or None, settings=overview.settings_from(current_app.config))
    return render_template("dashboard/overview.html", o=data, poll=current_app.config["DASHBOARD_POLL_SECONDS"])


@bp.get("/live/alarms")
@auth.page_roles("supervisor", "admin")
def live_alarms():
    """The open SOS / need-help panel alone (the overview page polls it)."""
    region = request.args.get("region") or None
    data = overview.alarm_panel(auth.scope(), region, settings=overview.settings_from(current_app.config))
    return render_template("dashboard/_alarms.html", o=data)


@bp.post("/checkins/<record_id>/ack")
@auth.page_roles("supervisor", "admin")
def acknowledge(record_id):
    """Acknowledge an SOS or need-help check-in."""
    back = _safe_next(request.form.get("back"))
    alert, new = safety.acknowledge(auth.scope(), record_id)
    return _done("Acknowledged." if new else "It was already acknowledged.", back)


@bp.get("/devices")
@auth.page_roles("supervisor", "admin")
def devices():
    """Phones and their sync health; revoke; enrolment codes."""
    rows = devices_admin.device_rows(auth.scope(), stale_minutes=int(current_app.config["STALE_DEVICE_MINUTES"]))
    teams = [t for t in people.teams_for(auth.scope()) if auth.scope().sees_region(t.region_id)]
    return render_template("dashboard/devices.html", devices=rows, teams=teams, code=None)


@bp.post("/devices/<device_id>/revoke")
@auth.page_roles("supervisor", "admin")
def revoke_device(device_id):
    """Revoke a phone."""
    device = devices_admin.revoke(auth.scope(), device_id)
    return _done(f"Device {device.label} is revoked; what it sends from now on is quarantined.", url_for("dashboard.devices"))


@bp.post("/enrol-codes")
@auth.page_roles("supervisor", "admin")
def create_enrol_code():
    """Make a one-time enrolment code and show it as text and QR code."""
    scope = auth.scope()
    teams = [t for t in people.teams_for(scope) if scope.sees_region(t.region_id)]
    try:
        code = devices_admin.create_code(scope, request.form.get("team", ""), request.form.get("ttl") or "24h",
                                         request.form.get("worker") or None)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _refused(exc, url_for("dashboard.devices"))
    db.session.commit()
    rows = devices_admin.device_rows(scope, stale_minutes=int(current_app.config["STALE_DEVICE_MINUTES"]))
    return render_template("dashboard/devices.html", devices=rows, teams=teams, code=code)


@bp.get("/quarantine")
@auth.page_roles("supervisor", "admin")
def quarantine():
    """Rejected records to review."""
    show = request.args.get("show", "open")
    return render_template("dashboard/quarantine.html", items=quarantine_review.items(auth.scope(), show), show=show)


@bp.post("/quarantine/<int:item_id>/review")
@auth.page_roles("supervisor", "admin")
def review(item_id):
    """Mark a quarantined item reviewed, with a comment."""
    back = url_for("dashboard.quarantine")
    try:
        quarantine_review.mark_reviewed(auth.scope(), item_id, request.form.get("comment", ""))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _refused(exc, back)
    return _done(f"Item {item_id} marked reviewed.", back)


@bp.get("/jobs")
@auth.page_roles("technician", "supervisor", "admin")
def job_list():
    """Faults and jobs, filtered by status, region, team, site."""
    scope = auth.scope()
    region = request.args.get("region") or None
    region_id = next((r.id for r in people.regions_for(scope) if r.code == region), None) if region else None
    if region and region_id is None:
        raise Invalid(f"there is no region {region!r} among yours")
    filters = {"status": request.args.get("status", "open"), "region": region or "", "team": request.args.get("team", ""),
               "site": request.args.get("site", "")}
    rows = jobs.list_jobs(scope, status=filters["status"], region_id=region_id, team_code=filters["team"] or None,
                          site_code=filters["site"] or None)
    return render_template("dashboard/jobs.html", jobs=rows, filters=filters, regions=people.regions_for(scope))


@bp.get("/jobs/<record_id>")
@auth.page_roles("technician", "supervisor", "admin")
def job(record_id):
    """One job: steps, response times, timeline; assign (supervisors, admins)."""
    scope = auth.scope()
    detail = jobs.job_detail(scope, record_id)
    teams = people.teams_for(scope) if scope.role in ("supervisor", "admin") else []
    return render_template("dashboard/job.html", d=detail, teams=teams)


@bp.post("/jobs/<record_id>/assign")
@auth.page_roles("supervisor", "admin")
def assign(record_id):
    """Hand a job to a team, a partner's included."""
    back = url_for("dashboard.job", record_id=record_id)
    try:
        jobs.assign(auth.scope(), record_id, request.form.get("team", ""), keyring())
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _refused(exc, back)
    return _done(f"Assigned to {request.form.get('team')}.", back)


@bp.get("/workers/<code>")
@auth.page_roles("technician", "supervisor", "admin")
def worker(code):
    """One technician's recent checks; health details on request, for allowed roles, audit-logged."""
    scope = auth.scope()
    person = people.get_worker(scope, code)
    with_health = request.args.get("health") == "1"
    data = safety.worker_records(scope, person, with_health=with_health, ring=keyring() if with_health else None)
    if with_health:
        db.session.commit()  # the audit entry of this read
    return render_template("dashboard/worker.html", w=data)


@bp.get("/tokens")
@auth.page_roles()
def tokens():
    """One's personal access tokens for the JSON API."""
    return render_template("dashboard/tokens.html", tokens=people.tokens_of(current_user.user.id), new_token=None)


@bp.post("/tokens")
@auth.page_roles()
def create_token():
    """Make a token; shown once."""
    try:
        raw, _ = people.create_token(current_user.user, request.form.get("name", ""), int(request.form.get("days") or 90))
    except ValueError:
        return _refused(Invalid("days must be a whole number"), url_for("dashboard.tokens"))
    except DomainError as exc:
        return _refused(exc, url_for("dashboard.tokens"))
    db.session.commit()
    return render_template("dashboard/tokens.html", tokens=people.tokens_of(current_user.user.id), new_token=raw)


@bp.post("/tokens/<int:token_id>/revoke")
@auth.page_roles()
def revoke_token(token_id):
    """Revoke one of one's tokens."""
    people.revoke_token(auth.scope(), token_id)
    return _done("Token revoked.", url_for("dashboard.tokens"))


@bp.get("/audit")
@auth.page_roles("admin", "auditor")
def audit_log():
    """The latest audit entries (who did what; never health values)."""
    from ..services.people import audit_entries

    return render_template("dashboard/audit.html", entries=audit_entries(auth.scope(), request.args.get("action") or None))


@bp.get("/charts")
@auth.page_roles("supervisor", "admin")
def charts():
    """Compliance, response times and sites down over time; sites by position."""
    from ..services import charts as charts_service

    return render_template("dashboard/charts.html", c=charts_service.charts(auth.scope()))
