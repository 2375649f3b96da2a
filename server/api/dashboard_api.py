"""The dashboard's figures as JSON (issue 5): same services, same numbers as the pages.

Authentication: a personal access token (``Authorization: Bearer fwp_...``,
made on /dashboard/tokens or with ``fieldwatch token create``); it acts with
its owner's role and regions. No session cookie is read here, so no CSRF.
"""
from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from shared.schemas.base import BaseSchema

from ..auth import acting_user, api_roles, scope
from ..errors import Invalid
from ..extensions import db
from ..services import alerts, charts, devices_admin, jobs, overview, people, quarantine_review, safety
from ..services.keys import keyring

blp = Blueprint("dashboard_api", __name__, url_prefix="/api/v1",
                description="Supervisors' figures and actions (personal access token; role and regions of its owner).")
SECURITY = [{"personToken": []}]


class AlarmSchema(Schema):
    record_id = fields.String()
    status = fields.String(metadata={"description": "sos or need_help"})
    worker_id = fields.String()
    worker_name = fields.String()
    at = fields.DateTime()
    site_code = fields.String(allow_none=True)
    region_id = fields.Integer(allow_none=True)
    notes = fields.String()


class OnDutySchema(Schema):
    worker_id = fields.String()
    name = fields.String()
    team_code = fields.String()
    region_id = fields.Integer()
    partner = fields.Boolean()
    shift_start = fields.DateTime()
    shift_end = fields.DateTime()
    fitness = fields.String(metadata={"description": "fit, unfit or no_check (no health check for this shift)"})
    last_check_at = fields.DateTime(allow_none=True)
    checkin = fields.String(metadata={"description": "ok, overdue (device synced, no check-in) or unknown (device silent)"})
    last_checkin_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime()
    silent_since = fields.DateTime(allow_none=True)
    ever_synced = fields.Boolean()


class RegionCoverageSchema(Schema):
    region_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    min_fit = fields.Integer()
    fit = fields.Integer(metadata={"description": "own operator's fit technicians on duty"})
    partner_fit = fields.Integer()
    unfit = fields.Integer()
    no_check = fields.Integer()
    on_duty = fields.Integer()
    overdue = fields.Integer()
    unknown = fields.Integer()
    below_minimum = fields.Boolean()
    shortfall = fields.Integer()
    teams = fields.List(fields.String())
    sites = fields.Dict(keys=fields.String(), values=fields.Integer())


class MeasureSchema(Schema):
    metric = fields.String(metadata={"description": "acknowledge, arrive or restore"})
    state = fields.String(metadata={"description": "done, running, not_recorded or not_applicable"})
    minutes = fields.Float(allow_none=True)
    target = fields.Integer()
    breach = fields.Boolean()


class JobSchema(Schema):
    record_id = fields.String()
    site_code = fields.String(allow_none=True)
    region_id = fields.Integer(allow_none=True)
    criticality = fields.String()
    title = fields.String()
    fault_type = fields.String()
    priority = fields.String()
    status = fields.String()
    reported_at = fields.DateTime(allow_none=True)
    team_code = fields.String(allow_none=True)
    team_name = fields.String(allow_none=True)
    mutual_aid = fields.Boolean()
    has_responder = fields.Boolean()
    measures = fields.List(fields.Nested(MeasureSchema))
    breaches = fields.List(fields.String())


class SiteStateSchema(Schema):
    code = fields.String()
    name = fields.String()
    region_id = fields.Integer()
    criticality = fields.String()
    state = fields.String(allow_none=True)
    power = fields.String(allow_none=True)
    mobile_bts = fields.Boolean()
    backup_tx = fields.Boolean()
    access = fields.String(allow_none=True)
    observed_at = fields.DateTime(allow_none=True)


class FaultsSchema(Schema):
    open = fields.List(fields.Nested(JobSchema))
    without_responder = fields.List(fields.Nested(JobSchema))
    mutual_aid = fields.List(fields.Nested(JobSchema))


class ResponseSchema(Schema):
    days = fields.Integer()
    jobs = fields.Integer()
    measures = fields.Dict(keys=fields.String(), values=fields.Dict())
    breaching = fields.List(fields.Nested(JobSchema))


class RegionRefSchema(Schema):
    code = fields.String()
    name = fields.String()


class OverviewSchema(Schema):
    generated_at = fields.DateTime()
    region = fields.String(allow_none=True)
    regions = fields.List(fields.Nested(RegionRefSchema))
    alarms = fields.List(fields.Nested(AlarmSchema))
    on_duty = fields.List(fields.Nested(OnDutySchema), metadata={"description": "worst first, at most list_limit; totals.on_duty counts everyone"})
    coverage = fields.List(fields.Nested(RegionCoverageSchema))
    below_minimum = fields.List(fields.Nested(RegionCoverageSchema))
    overdue = fields.List(fields.Nested(OnDutySchema), metadata={"description": "worst first, at most list_limit; totals.overdue and totals.unknown count everyone"})
    list_limit = fields.Integer(metadata={"description": "the most people on_duty and overdue list; ask for one region to see all of its people"})
    sites = fields.List(fields.Nested(SiteStateSchema))
    faults = fields.Nested(FaultsSchema)
    response = fields.Nested(ResponseSchema)
    totals = fields.Dict(keys=fields.String(), values=fields.Integer())


class RegionQuerySchema(BaseSchema):
    region = fields.String(load_default=None, metadata={"description": "a region code; default: all of yours"})


class AckSchema(Schema):
    record_id = fields.String()
    acknowledged_at = fields.DateTime()
    acknowledged_by = fields.Integer()
    already = fields.Boolean(metadata={"description": "true when someone had acknowledged it before"})


class DeviceRowSchema(Schema):
    id = fields.String()
    label = fields.String()
    worker_id = fields.String(allow_none=True)
    worker_name = fields.String(allow_none=True)
    team_code = fields.String(allow_none=True)
    region_id = fields.Integer(allow_none=True)
    status = fields.String()
    app_version = fields.String(allow_none=True)
    last_push_at = fields.DateTime(allow_none=True)
    last_pull_at = fields.DateTime(allow_none=True)
    last_contact_at = fields.DateTime(allow_none=True)
    since_contact_minutes = fields.Integer(allow_none=True)
    stale = fields.Boolean()
    outbox_depth = fields.Integer(allow_none=True)
    oldest_unsent_age_s = fields.Integer(allow_none=True)
    rejected = fields.Integer()
    accepted = fields.Integer()
    clock_skew_ms = fields.Integer(allow_none=True)


class DeviceListSchema(Schema):
    devices = fields.List(fields.Nested(DeviceRowSchema))


class RevokedSchema(Schema):
    id = fields.String()
    status = fields.String()
    revoked_at = fields.DateTime(allow_none=True)


class EnrolCodeRequestSchema(BaseSchema):
    team = fields.String(required=True, validate=validate.Length(min=1, max=32))
    ttl = fields.String(load_default="24h", metadata={"description": "30m, 24h, 7d (at most 30d)"})
    worker = fields.String(load_default=None, allow_none=True)


class EnrolCodeSchema(Schema):
    code = fields.String(metadata={"description": "the one-time code, shown once"})
    team = fields.String()
    worker = fields.String(allow_none=True)
    expires_at = fields.DateTime()
    qr_svg = fields.String(metadata={"description": "the code as a QR code, an SVG document"})


class QuarantineQuerySchema(BaseSchema):
    show = fields.String(load_default="open", validate=validate.OneOf(("open", "reviewed", "all")))


class QuarantineRowSchema(Schema):
    id = fields.Integer()
    received_at = fields.DateTime()
    reason = fields.String()
    message = fields.String()
    device_id = fields.String(allow_none=True)
    device_label = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    record_id = fields.String(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    review_comment = fields.String(allow_none=True)


class QuarantineListSchema(Schema):
    items = fields.List(fields.Nested(QuarantineRowSchema))


class ReviewRequestSchema(BaseSchema):
    comment = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class JobQuerySchema(BaseSchema):
    status = fields.String(load_default="open")
    region = fields.String(load_default=None)
    team = fields.String(load_default=None)
    site = fields.String(load_default=None)


class JobListSchema(Schema):
    jobs = fields.List(fields.Nested(JobSchema))


class StepSchema(Schema):
    step = fields.String()
    at = fields.DateTime(allow_none=True)


class TimelineSchema(Schema):
    rev = fields.String()
    received_at = fields.DateTime()
    status = fields.String(allow_none=True)
    changed = fields.List(fields.String())
    team_id = fields.String(allow_none=True)
    by = fields.String(allow_none=True)
    by_person = fields.Boolean()


class JobDetailSchema(Schema):
    job = fields.Nested(JobSchema)
    steps = fields.List(fields.Nested(StepSchema))
    notes = fields.List(fields.Dict())
    timeline = fields.List(fields.Nested(TimelineSchema))


class AssignRequestSchema(BaseSchema):
    team = fields.String(required=True, validate=validate.Length(min=1, max=32))


class AssignedSchema(Schema):
    record_id = fields.String()
    rev = fields.String()
    team = fields.String()


class WorkerQuerySchema(BaseSchema):
    health = fields.Boolean(load_default=False, metadata={"description": "include health fields (admin, supervisor of the region; audit-logged)"})


class WorkerSchema(Schema):
    worker = fields.Dict()
    days = fields.Integer()
    health_shown = fields.Boolean()
    may_see_health = fields.Boolean()
    safety_checks = fields.List(fields.Dict())
    check_ins = fields.List(fields.Dict())


class AuditSchema(Schema):
    entries = fields.List(fields.Dict())


class MeSchema(Schema):
    username = fields.String()
    code = fields.String()
    role = fields.String()
    regions = fields.List(fields.String())
    team = fields.String(allow_none=True)


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _jsonable(rows: list[dict]) -> list[dict]:
    return [{k: (_iso(v) if not isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in rows]


@blp.route("/me")
class Me(MethodView):
    @api_roles()
    @blp.response(200, MeSchema)
    @blp.doc(security=SECURITY)
    def get(self):
        """Who this token acts as."""
        u = acting_user()
        return {"username": u.username, "code": u.code, "role": u.role, "regions": [r.code for r in u.regions],
                "team": u.team.code if u.team else None}


@blp.route("/overview")
class Overview(MethodView):
    @api_roles("supervisor", "admin")
    @blp.arguments(RegionQuerySchema, location="query")
    @blp.response(200, OverviewSchema)
    @blp.doc(security=SECURITY)
    def get(self, args):
        """Every figure of the overview page: alarms, on duty, coverage, overdue, sites, faults, response times."""
        return overview.overview(scope(), args["region"], settings=overview.settings_from(current_app.config))


@blp.route("/check-ins/<record_id>/acknowledge")
class AcknowledgeCheckIn(MethodView):
    @api_roles("supervisor", "admin")
    @blp.response(200, AckSchema)
    @blp.doc(security=SECURITY)
    def post(self, record_id):
        """Acknowledge an SOS or need-help check-in (audit-logged); repeating it is harmless."""
        alert, new = safety.acknowledge(scope(), record_id)
        db.session.commit()
        return {"record_id": record_id, "acknowledged_at": alert.acknowledged_at, "acknowledged_by": alert.acknowledged_by_id, "already": not new}


@blp.route("/devices")
class DeviceList(MethodView):
    @api_roles("supervisor", "admin")
    @blp.response(200, DeviceListSchema)
    @blp.doc(security=SECURITY)
    def get(self):
        """Devices of your regions with their sync health (stale ones marked)."""
        return {"devices": devices_admin.device_rows(scope(), stale_minutes=int(current_app.config["STALE_DEVICE_MINUTES"]))}


@blp.route("/devices/<device_id>/revoke")
class RevokeDevice(MethodView):
    @api_roles("supervisor", "admin")
    @blp.response(200, RevokedSchema)
    @blp.doc(security=SECURITY)
    def post(self, device_id):
        """Revoke a device: its token stops working; what it sends later is quarantined."""
        device = devices_admin.revoke(scope(), device_id)
        db.session.commit()
        return device


@blp.route("/enrol-codes")
class EnrolCodes(MethodView):
    @api_roles("supervisor", "admin")
    @blp.arguments(EnrolCodeRequestSchema)
    @blp.response(201, EnrolCodeSchema)
    @blp.doc(security=SECURITY)
    def post(self, args):
        """Make a one-time enrolment code for a team of your regions (text and QR code, shown once)."""
        code = devices_admin.create_code(scope(), args["team"], args["ttl"], args.get("worker"))
        db.session.commit()
        return code


@blp.route("/quarantine")
class Quarantine(MethodView):
    @api_roles("supervisor", "admin")
    @blp.arguments(QuarantineQuerySchema, location="query")
    @blp.response(200, QuarantineListSchema)
    @blp.doc(security=SECURITY)
    def get(self, args):
        """Quarantined (rejected) records of your regions' devices."""
        return {"items": quarantine_review.items(scope(), args["show"])}


@blp.route("/quarantine/<int:item_id>/review")
class ReviewQuarantine(MethodView):
    @api_roles("supervisor", "admin")
    @blp.arguments(ReviewRequestSchema)
    @blp.response(200, QuarantineRowSchema)
    @blp.doc(security=SECURITY)
    def post(self, args, item_id):
        """Mark a quarantined item reviewed with a comment (audit-logged)."""
        quarantine_review.mark_reviewed(scope(), item_id, args["comment"])
        db.session.commit()
        return next(r for r in quarantine_review.items(scope(), "all") if r.id == item_id)


@blp.route("/jobs")
class JobList(MethodView):
    @api_roles("technician", "supervisor", "admin")
    @blp.arguments(JobQuerySchema, location="query")
    @blp.response(200, JobListSchema)
    @blp.doc(security=SECURITY)
    def get(self, args):
        """Jobs you may see, filtered by status (open, all, or one state), region, team and site."""
        region_id = None
        if args["region"]:
            region_id = next((r.id for r in people.regions_for(scope()) if r.code == args["region"]), None)
            if region_id is None:
                raise Invalid(f"there is no region {args['region']!r} among yours")
        return {"jobs": jobs.list_jobs(scope(), status=args["status"], region_id=region_id, team_code=args["team"], site_code=args["site"])}


@blp.route("/jobs/<record_id>")
class JobById(MethodView):
    @api_roles("technician", "supervisor", "admin")
    @blp.response(200, JobDetailSchema)
    @blp.doc(security=SECURITY)
    def get(self, record_id):
        """One job with its steps, response measures and timeline of revisions."""
        return jobs.job_detail(scope(), record_id)


@blp.route("/jobs/<record_id>/assign")
class AssignJob(MethodView):
    @api_roles("supervisor", "admin")
    @blp.arguments(AssignRequestSchema)
    @blp.response(200, AssignedSchema)
    @blp.doc(security=SECURITY)
    def post(self, args, record_id):
        """Assign a job to a team, a partner operator's included (mutual aid)."""
        rev = jobs.assign(scope(), record_id, args["team"], keyring())
        db.session.commit()
        return {"record_id": record_id, "rev": rev, "team": args["team"]}


@blp.route("/workers/<code>")
class Worker(MethodView):
    @api_roles("technician", "supervisor", "admin")
    @blp.arguments(WorkerQuerySchema, location="query")
    @blp.response(200, WorkerSchema)
    @blp.doc(security=SECURITY)
    def get(self, args, code):
        """A technician's recent checks and check-ins; ``health=true`` adds health fields (allowed roles; audit-logged)."""
        worker = people.get_worker(scope(), code)
        data = safety.worker_records(scope(), worker, with_health=args["health"], ring=keyring() if args["health"] else None)
        if args["health"]:
            db.session.commit()
        data["safety_checks"] = _jsonable(data["safety_checks"])
        data["check_ins"] = _jsonable(data["check_ins"])
        return data


@blp.route("/audit")
class Audit(MethodView):
    @api_roles("admin", "auditor")
    @blp.response(200, AuditSchema)
    @blp.doc(security=SECURITY)
    def get(self):
        """The latest audit entries."""
        return {"entries": _jsonable(people.audit_entries(scope(), request.args.get("action") or None))}


class ChartsSchema(Schema):
    days = fields.List(fields.String())
    technicians = fields.Integer()
    health_check_compliance_pct = fields.List(fields.Float())
    median_response_minutes = fields.Dict(keys=fields.String(), values=fields.List(fields.Float(allow_none=True)))
    sites_reported_down = fields.List(fields.Integer())
    sites = fields.List(fields.Dict())


@blp.route("/charts")
class Charts(MethodView):
    @api_roles("supervisor", "admin")
    @blp.response(200, ChartsSchema)
    @blp.doc(security=SECURITY)
    def get(self):
        """The numbers behind the charts page (per day, UTC), and site positions with state."""
        return charts.series(scope())


class AlertQuerySchema(BaseSchema):
    state = fields.String(load_default="open", validate=validate.OneOf(("open", "all")),
                          metadata={"description": "open (not acknowledged) or all"})
    region = fields.String(load_default=None, metadata={"description": "a region code; default: all of yours"})
    kind = fields.String(load_default=None, metadata={"description": "sos, need_help, missed_check_in, below_minimum or response_breach"})


class AlertSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    region = fields.String(allow_none=True)
    subject = fields.String()
    worker_id = fields.String(allow_none=True)
    message = fields.String()
    raised_at = fields.DateTime()
    cleared_at = fields.DateTime(allow_none=True, metadata={"description": "when the condition stopped holding (the timer saw it)"})
    acknowledged_at = fields.DateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    details = fields.Dict()


class AlertListSchema(Schema):
    alerts = fields.List(fields.Nested(AlertSchema))


class AlertAckSchema(AlertSchema):
    already = fields.Boolean(metadata={"description": "true when someone had acknowledged it before"})


@blp.route("/alerts")
class Alerts(MethodView):
    @api_roles("supervisor", "admin")
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertListSchema)
    @blp.doc(security=SECURITY)
    def get(self, args):
        """Alerts of your regions raised by the server's timer: SOS, need help, missed check-in, region below minimum, response breach."""
        return {"alerts": alerts.list_alerts(scope(), args["state"], args["region"], args["kind"])}


@blp.route("/alerts/<int:alert_id>/acknowledge")
class AcknowledgeAlert(MethodView):
    @api_roles("supervisor", "admin")
    @blp.response(200, AlertAckSchema)
    @blp.doc(security=SECURITY)
    def post(self, alert_id):
        """Acknowledge an alert (audit-logged); repeating it is harmless."""
        row, new = alerts.acknowledge(scope(), alert_id)
        db.session.commit()
        return {**row, "already": not new}
