"""The periodic report to the telecom authority: figures per region, signed bundle, verified offline."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest

from server.errors import Invalid
from server.services import reports
from server.services.exports import Exporter
from server.services.keys import keyring
from shared import crypto
from shared import export_verify as ev
from tests.server.conftest import check_in, enrol_phone, repair_job, safety_check, site_status

T = "2026-11-{:02d}T{}:00+07:00"


def _push(phone, items):
    r = phone.push(items)
    assert r.status_code == 200, r.get_json()
    assert all(x["status"] == "accepted" for x in r.get_json()["results"]), r.get_json()


@pytest.fixture
def month(client, org):
    team_phone = enrol_phone(client, "HN-T1", None, "HN team phone")   # W001 and W002
    hp_phone = enrol_phone(client, "HP-T1", "W003", "HP phone")
    partner_phone = enrol_phone(client, "PT-HN", None, "partner phone")
    _push(team_phone, [
        team_phone.seal("safety_check", safety_check("W001", taken_at=T.format(2, "07:00"))),
        team_phone.seal("safety_check", safety_check("W001", taken_at=T.format(3, "07:00"), temperature_c=38.2, symptoms=["fever"], fit_for_duty=False)),
        team_phone.seal("safety_check", safety_check("W002", taken_at=T.format(4, "07:00"), exposure="confirmed_contact", fit_for_duty=False)),
        team_phone.seal("safety_check", safety_check("W001", taken_at="2026-12-01T07:00:00+07:00")),  # next month
        team_phone.seal("check_in", check_in("W001", "sos", at=T.format(3, "10:00"))),
        team_phone.seal("check_in", check_in("W002", "ok", at=T.format(4, "10:00"))),
        team_phone.seal("site_status", site_status("HN001", "down", observed_at=T.format(26, "08:00"))),
        team_phone.seal("site_status", site_status("HN002", "down", mobile_bts_deployed=True, observed_at=T.format(26, "08:10"))),
        team_phone.seal("site_status", site_status("HN002", "up", mobile_bts_deployed=False, observed_at=T.format(26, "13:00"))),
        team_phone.seal("site_status", site_status("HN002", "down", mobile_bts_deployed=True, observed_at=T.format(27, "08:00"))),
        team_phone.seal("repair_job", repair_job("restored", site_code="HN001", reported_at=T.format(26, "08:00"),
                                                 steps={"reported": T.format(26, "08:00"), "restored": T.format(26, "09:00")})),
    ])
    _push(partner_phone, [
        partner_phone.seal("repair_job", repair_job("restored", site_code="HN002", team_id="PT-HN", team_operator="PT",
                                                    reported_at=T.format(26, "10:00"),
                                                    steps={"reported": T.format(26, "10:00"), "restored": T.format(26, "12:00")})),
    ])
    _push(hp_phone, [
        hp_phone.seal("safety_check", safety_check("W003", taken_at=T.format(5, "07:00"), site_code="HP001")),
        hp_phone.seal("repair_job", repair_job("reported", site_code="HP001", team_id="HP-T1", team_operator="PT",
                                               reported_at=T.format(10, "08:00"), steps={"reported": T.format(10, "08:00")})),
    ])


def test_figures_per_region(app, month):
    rows = {r["region"]: r for r in reports.compute(reports.Period.parse("2026-11"))}
    hn, hp, total = rows["HN"], rows["HP"], rows["TOTAL"]
    assert (hn["sites_total"], hn["sites_down"], hn["sites_restored"]) == (3, 2, 2)
    assert (hn["restore_jobs"], hn["restore_mean_min"], hn["restore_p90_min"]) == (2, 90.0, 120.0)
    assert hn["mobile_bts_deployments"] == 2
    assert (hn["technicians_on_duty"], hn["technicians_fit"], hn["safety_checks"], hn["fit_checks"]) == (2, 1, 3, 1)
    assert hn["health_incidents"] == 2 and hn["sos_or_help"] == 1
    assert (hn["mutual_aid_received"], hn["mutual_aid_given"]) == (1, 0)
    assert (hp["sites_total"], hp["sites_down"], hp["technicians_on_duty"], hp["technicians_fit"]) == (1, 0, 1, 1)
    assert (hp["mutual_aid_received"], hp["mutual_aid_given"]) == (0, 1)
    assert hp["restore_mean_min"] is None
    assert total["sites_total"] == 4 and total["technicians_on_duty"] == 3 and total["health_incidents"] == 2
    assert total["restore_mean_min"] == 90.0


def test_period_and_region_bounds(app, month):
    day = {r["region"]: r for r in reports.compute(reports.Period.parse("2026-11-03"))}
    assert day["HN"]["safety_checks"] == 1 and day["HN"]["sos_or_help"] == 1 and day["HN"]["restore_jobs"] == 0
    dec = {r["region"]: r for r in reports.compute(reports.Period.parse("2026-12"))}
    assert dec["HN"]["safety_checks"] == 1 and dec["HN"]["restore_jobs"] == 0
    only = reports.compute(reports.Period.parse("2026-11-01..2026-11-30"), "HP")
    assert [r["region"] for r in only] == ["HP", "TOTAL"]
    with pytest.raises(Invalid, match="period must be"):
        reports.Period.parse("November")
    with pytest.raises(Invalid, match="no region"):
        reports.compute(reports.Period.parse("2026-11"), "ZZ")


def test_p90_nearest_rank():
    assert reports.p90([]) is None
    assert reports.p90([5]) == 5
    assert reports.p90(list(range(1, 11))) == 9
    assert reports.p90(list(range(1, 101))) == 90


def test_report_bundle_is_signed_verifies_and_names_tampering(app, month, tmp_path):
    out = tmp_path / "report"
    text = "HN: two generators out of fuel; propose fuel priority for BTS sites\nGeneral: need more masks"
    summary = reports.write_report(reports.Period.parse("2026-11"), Exporter.command_line(), str(out), difficulties=text)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.csv", "report.pdf"]
    key = crypto.b64d(keyring().export_public)
    result = ev.verify_bundle(str(out), key, workers=1)
    assert result.ok, [str(p) for p in result.problems]
    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    hn = next(r for r in rows if r["region"] == "HN")
    assert hn["open_difficulties"].startswith("two generators out of fuel") and hn["health_incidents"] == "2"
    assert rows[-1]["region"] == "TOTAL" and rows[-1]["open_difficulties"] == "General: need more masks"
    for name in ("W001", "W002", "Nguyen", "38.2", "fever"):  # counts only: no names, no health values
        assert name not in (out / "report.csv").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "report" and manifest["period"]["from"] == "2026-11-01" and manifest["totals"]["sites_total"] == 4
    if shutil.which("pdftotext"):
        pdf_text = subprocess.run(["pdftotext", "-layout", str(out / "report.pdf"), "-"], capture_output=True, text=True).stdout
        assert "Network and field-crew report" in pdf_text and "Page 1 of" in pdf_text and "two generators" in pdf_text

    (out / "report.csv").write_text((out / "report.csv").read_text().replace(",2,", ",0,", 1))
    result = ev.verify_bundle(str(out), key, workers=1)
    assert not result.ok and any(p.where == "report.csv" and "SHA-256" in p.message for p in result.problems)


def test_report_cli_writes_a_zip_and_audits(app, month, tmp_path):
    from sqlalchemy import select

    from server.export_cli import report, verify_export
    from server.extensions import db
    from server.models import AuditEntry

    notes = tmp_path / "difficulties.txt"
    notes.write_text("HP: flooded access road to HP001\n", encoding="utf-8")
    out = tmp_path / "report-2026-11.zip"
    runner = app.test_cli_runner()
    r = runner.invoke(report, ["--period", "2026-11", "--out", str(out), "--difficulties", str(notes)])
    assert r.exit_code == 0, r.output
    assert "report 2026-11 for 2 regions" in r.output
    r = runner.invoke(verify_export, [str(out), "--export-key", keyring().export_public, "--quiet"])
    assert r.exit_code == 0, r.output
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "report.create")).one()
    assert entry.details["period"]["label"] == "2026-11" and entry.details["via"] == "cli"


def test_report_cli_refusals_say_why(app, month, tmp_path):
    from server.export_cli import report

    runner = app.test_cli_runner()
    notes = tmp_path / "difficulties.txt"
    notes.write_bytes("HN: đường ngập".encode("cp1258", errors="replace") + b"\xff\xfe")  # not UTF-8
    r = runner.invoke(report, ["--period", "2026-11", "--out", str(tmp_path / "r.zip"), "--difficulties", str(notes)])
    assert r.exit_code == 2 and "is not UTF-8 text" in r.output, r.output
    r = runner.invoke(report, ["--period", "2026-11", "--out", str(tmp_path / "missing" / "r.zip")])
    assert r.exit_code == 2 and "does not exist" in r.output, r.output
    assert not (tmp_path / "r.zip").exists()
