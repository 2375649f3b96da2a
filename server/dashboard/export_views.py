"""Export and report pages: download signed bundles an auditor can verify offline (issue 6)."""
from __future__ import annotations

import os
import shutil
import tempfile

from flask import Response, after_this_request, render_template, request, send_file, stream_with_context, url_for

from .. import auth
from ..errors import DomainError, Forbidden
from ..services import exports, people, reports
from . import bp
from .views import _refused

EXPORT_ROLES = ("supervisor", "admin", "auditor")


def _form_defaults() -> dict:
    from datetime import date, timedelta

    today = date.today()
    return {"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat(), "period": today.strftime("%Y-%m")}


@bp.get("/exports")
@auth.page_roles(*EXPORT_ROLES)
def export_page():
    """Choose what to export; the bundle downloads as a zip."""
    scope = auth.scope()
    return render_template("dashboard/exports.html", regions=people.regions_for(scope), teams=people.teams_for(scope),
                           may_see_health=exports.may_see_health(scope.role), defaults=_form_defaults(),
                           formats=exports.FORMATS)


@bp.get("/exports/safety")
@auth.page_roles(*EXPORT_ROLES)
def export_download():
    """Stream a safety-log bundle (zip): data, device keys, signed manifest."""
    args = request.args
    try:
        filt = exports.ExportFilter.parse(args.get("from", ""), args.get("to", ""), region=args.get("region") or None,
                                          team=args.get("team") or None, worker=args.get("worker") or None,
                                          kinds=args.get("kinds") or None)
        fmt = args.get("format", "csv")
        chunks = exports.stream_safety_export(filt, auth.acting_user(), fmt, with_health=args.get("with_health") == "1")
    except DomainError as exc:
        if isinstance(exc, Forbidden):
            raise
        return _refused(exc, url_for("dashboard.export_page"))
    return Response(stream_with_context(chunks), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{exports.export_filename(filt, fmt)}"'})


@bp.post("/reports")
@auth.page_roles("supervisor", "admin", "auditor")
def report_download():
    """The periodic report for the telecom authority, as a signed zip (CSV + PDF + manifest)."""
    scope = auth.scope()
    region = request.form.get("region") or None
    try:
        if scope.region_ids is not None and scope.role == "supervisor":
            _require_own_region(scope, region)
        period = reports.Period.parse(request.form.get("period", ""))
        folder = tempfile.mkdtemp(prefix="fieldwatch-report-")
        path = os.path.join(folder, "report.zip")
        reports.write_report(period, exports.Exporter.of_user(auth.acting_user()), path, region=region,
                             difficulties=request.form.get("difficulties") or None)
    except DomainError as exc:
        if isinstance(exc, Forbidden):
            raise
        return _refused(exc, url_for("dashboard.export_page"))

    @after_this_request
    def _remove(response):
        shutil.rmtree(folder, ignore_errors=True)
        return response

    from ..extensions import db

    db.session.commit()  # the report's audit entry
    name = f"fieldwatch-report_{request.form.get('period', '')}" + (f"_{region}" if region else "") + ".zip"
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=name)


def _require_own_region(scope, region_code: str | None) -> None:
    if not region_code:
        raise Forbidden("A supervisor's report covers one of their regions: choose a region.")
    region = next((r for r in people.regions_for(scope) if r.code == region_code), None)
    if region is None:
        raise Forbidden(f"Region {region_code} is not one of yours.")
