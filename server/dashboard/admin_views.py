"""Alerts page (supervisors, admins) and admin pages: people, teams, regions, sites, shifts, targets, webhooks.

Thin like :mod:`.views`: read the form, call :mod:`server.services.admin`,
:mod:`~server.services.alerts` or :mod:`~server.services.webhooks` with the
person's scope, commit, redirect. Routes live on the dashboard blueprint,
so its CSRF check and session expiry apply to every form here.
"""
from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask_login import current_user

from .. import auth
from ..errors import DomainError
from ..extensions import db
from ..models import CRITICALITIES, ROLES
from ..services import admin, alerts, webhooks
from . import bp
from .views import _done, _refused, _safe_next


def _form_error(exc: DomainError, back: str):
    if exc.status in (403, 404):
        raise exc
    return _refused(exc, back)


@bp.app_context_processor
def _alert_badge():
    def open_alert_count() -> int:
        if not current_user.is_authenticated or current_user.role not in ("supervisor", "admin"):
            return 0
        return alerts.open_count(current_user.scope)

    return {"open_alert_count": open_alert_count}


# --- alerts -----------------------------------------------------------------------------------------------------------


@bp.get("/alerts")
@auth.page_roles("supervisor", "admin")
def alert_list():
    """Open alerts (or all), with acknowledge."""
    state = "all" if request.args.get("state") == "all" else "open"
    region = request.args.get("region") or None
    rows = alerts.list_alerts(auth.scope(), state, region)
    from ..services.people import regions_for

    return render_template("dashboard/alerts.html", alerts=rows, state=state, region=region, regions=regions_for(auth.scope()))


@bp.post("/alerts/<int:alert_id>/ack")
@auth.page_roles("supervisor", "admin")
def acknowledge_alert(alert_id):
    """Acknowledge an alert (audit-logged)."""
    back = _safe_next(request.form.get("back") or url_for("dashboard.alert_list"))
    _, new = alerts.acknowledge(auth.scope(), alert_id)
    return _done("Alert acknowledged." if new else "It was already acknowledged.", back)


# --- people -----------------------------------------------------------------------------------------------------------


def _users_page(new_password=None, status: int = 200):
    scope = auth.scope()
    search = request.args.get("q", "")
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and len(page) < 7 else 1
    users, total = admin.list_users(scope, search, page)
    return render_template("dashboard/admin_users.html", users=users, total=total, search=search, page=page,
                           pages=max(1, -(-total // admin.USERS_PER_PAGE)), teams=admin.list_teams(scope),
                           regions=admin.list_regions(scope), roles=ROLES, new_password=new_password), status


@bp.get("/admin/")
@auth.page_roles("admin")
def admin_home():
    return redirect(url_for("dashboard.admin_users"))


@bp.get("/admin/users")
@auth.page_roles("admin")
def admin_users():
    """People: create, role, team, regions, deactivate, reset password."""
    return _users_page()


@bp.post("/admin/users")
@auth.page_roles("admin")
def admin_create_user():
    f = request.form
    try:
        user, temporary = admin.create_user(auth.scope(), f.get("username", ""), f.get("role", ""), display_name=f.get("name", ""),
                                            code=f.get("code", ""), team_code=f.get("team", ""), region_codes=f.getlist("regions"),
                                            password=f.get("password", ""))
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_users"))
    db.session.commit()
    if temporary:
        return _users_page({"username": user.username, "password": temporary})
    return _done(f"Account {user.username} created.", url_for("dashboard.admin_users"))


@bp.post("/admin/users/<int:user_id>")
@auth.page_roles("admin")
def admin_update_user(user_id):
    f = request.form
    try:
        user = admin.update_user(auth.scope(), user_id, role=f.get("role", ""), team_code=f.get("team", ""),
                                 region_codes=f.getlist("regions"), display_name=f.get("name", ""))
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_users"))
    return _done(f"{user.username} saved.", url_for("dashboard.admin_users"))


@bp.post("/admin/users/<int:user_id>/active")
@auth.page_roles("admin")
def admin_user_active(user_id):
    active = request.form.get("active") == "1"
    try:
        user = admin.set_active(auth.scope(), user_id, active)
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_users"))
    return _done(f"{user.username} is {'active' if active else 'deactivated'}.", url_for("dashboard.admin_users"))


@bp.post("/admin/users/<int:user_id>/password")
@auth.page_roles("admin")
def admin_reset_password(user_id):
    user, password = admin.reset_password(auth.scope(), user_id)
    db.session.commit()
    return _users_page({"username": user.username, "password": password})


# --- organisations and teams --------------------------------------------------------------------------------------


@bp.get("/admin/teams")
@auth.page_roles("admin")
def admin_teams():
    scope = auth.scope()
    return render_template("dashboard/admin_teams.html", teams=admin.list_teams(scope), organisations=admin.list_organisations(scope),
                           regions=admin.list_regions(scope))


@bp.post("/admin/teams")
@auth.page_roles("admin")
def admin_create_team():
    f = request.form
    try:
        team = admin.create_team(auth.scope(), f.get("code", ""), f.get("name", ""), f.get("organisation", ""), f.get("region", ""))
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_teams"))
    return _done(f"Team {team.code} created.", url_for("dashboard.admin_teams"))


@bp.post("/admin/teams/<int:team_id>")
@auth.page_roles("admin")
def admin_update_team(team_id):
    try:
        team = admin.update_team(auth.scope(), team_id, request.form.get("name", ""), request.form.get("region", ""))
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_teams"))
    return _done(f"Team {team.code} saved.", url_for("dashboard.admin_teams"))


@bp.post("/admin/organisations")
@auth.page_roles("admin")
def admin_create_organisation():
    f = request.form
    try:
        org = admin.create_organisation(auth.scope(), f.get("code", ""), f.get("name", ""), f.get("partner") == "1")
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_teams"))
    return _done(f"Organisation {org.code} created.", url_for("dashboard.admin_teams"))


# --- regions and sites ----------------------------------------------------------------------------------------------


@bp.get("/admin/regions")
@auth.page_roles("admin")
def admin_regions():
    return render_template("dashboard/admin_regions.html", regions=admin.list_regions(auth.scope()))


@bp.post("/admin/regions")
@auth.page_roles("admin")
def admin_create_region():
    f = request.form
    try:
        region = admin.create_region(auth.scope(), f.get("code", ""), f.get("name", ""), f.get("province", ""), f.get("min_fit", "1"))
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_regions"))
    return _done(f"Region {region.code} created.", url_for("dashboard.admin_regions"))


@bp.post("/admin/regions/<int:region_id>")
@auth.page_roles("admin")
def admin_update_region(region_id):
    f = request.form
    try:
        region = admin.update_region(auth.scope(), region_id, f.get("name", ""), f.get("province", ""), f.get("min_fit", ""))
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_regions"))
    return _done(f"Region {region.code} saved.", url_for("dashboard.admin_regions"))


def _sites_page(report=None):
    scope = auth.scope()
    region, query = request.args.get("region") or None, request.args.get("q") or None
    sites, total = admin.list_sites(scope, region, query)
    return render_template("dashboard/admin_sites.html", sites=sites, total=total, regions=admin.list_regions(scope),
                           region=region, q=query or "", report=report, criticalities=CRITICALITIES)


@bp.get("/admin/sites")
@auth.page_roles("admin")
def admin_sites():
    """Sites, and the CSV import."""
    return _sites_page()


@bp.post("/admin/sites/import")
@auth.page_roles("admin")
def admin_import_sites():
    upload = request.files.get("file")
    data = upload.read() if upload else request.form.get("csv", "").encode()
    report = admin.import_sites_csv(auth.scope(), data)
    db.session.commit()
    return _sites_page(report)


# --- duty shifts and response targets -------------------------------------------------------------------------------


@bp.get("/admin/shifts")
@auth.page_roles("admin")
def admin_shifts():
    scope = auth.scope()
    return render_template("dashboard/admin_shifts.html", shifts=admin.list_shifts(scope), teams=admin.list_teams(scope),
                           tz=current_app.config["DASHBOARD_TIMEZONE"])


@bp.post("/admin/shifts")
@auth.page_roles("admin")
def admin_create_shift():
    f, tz = request.form, current_app.config["DASHBOARD_TIMEZONE"]
    back = url_for("dashboard.admin_shifts")
    try:
        shift = admin.create_shift(auth.scope(), f.get("team", ""), admin.parse_local(f.get("starts_at"), tz, "the start"),
                                   admin.parse_local(f.get("ends_at"), tz, "the end"), f.get("note", ""))
    except DomainError as exc:
        return _form_error(exc, back)
    return _done(f"Shift for {shift.team.code} added.", back)


@bp.post("/admin/shifts/<int:shift_id>/delete")
@auth.page_roles("admin")
def admin_delete_shift(shift_id):
    admin.delete_shift(auth.scope(), shift_id)
    return _done("Shift removed.", url_for("dashboard.admin_shifts"))


@bp.get("/admin/targets")
@auth.page_roles("admin")
def admin_targets():
    return render_template("dashboard/admin_targets.html", targets=admin.list_targets(auth.scope()))


@bp.post("/admin/targets")
@auth.page_roles("admin")
def admin_set_target():
    f = request.form
    back = url_for("dashboard.admin_targets")
    try:
        admin.set_target(auth.scope(), f.get("criticality", ""), f.get("acknowledge"), f.get("arrive"), f.get("restore"))
    except DomainError as exc:
        return _form_error(exc, back)
    return _done(f"Targets for {f.get('criticality')} saved.", back)


# --- webhooks -------------------------------------------------------------------------------------------------------


def _webhooks_page(new=None):
    return render_template("dashboard/admin_webhooks.html", hooks=webhooks.list_webhooks(auth.scope()), new=new)


@bp.get("/admin/webhooks")
@auth.page_roles("admin")
def admin_webhooks():
    """Outbound webhooks: add (secret shown once), switch on and off."""
    return _webhooks_page()


@bp.post("/admin/webhooks")
@auth.page_roles("admin")
def admin_create_webhook():
    try:
        hook, secret = webhooks.create(auth.scope(), request.form.get("url", ""), request.form.get("description", ""))
    except DomainError as exc:
        return _form_error(exc, url_for("dashboard.admin_webhooks"))
    db.session.commit()
    return _webhooks_page({"id": hook.id, "secret": secret})


@bp.post("/admin/webhooks/<int:webhook_id>/active")
@auth.page_roles("admin")
def admin_webhook_active(webhook_id):
    active = request.form.get("active") == "1"
    webhooks.set_active(auth.scope(), webhook_id, active)
    return _done(f"Webhook {webhook_id} {'switched on' if active else 'switched off'}.", url_for("dashboard.admin_webhooks"))


@bp.get("/admin/webhooks/deliveries")
@auth.page_roles("admin")
def admin_deliveries():
    """The delivery log: every attempt, its answer, the next try."""
    webhook_id = request.args.get("webhook", type=int)
    return render_template("dashboard/admin_deliveries.html", rows=webhooks.deliveries(auth.scope(), webhook_id), webhook_id=webhook_id)
