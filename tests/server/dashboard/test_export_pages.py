"""Downloading exports and reports from the dashboard: the bundle verifies offline."""
import io
import re
import zipfile

from server.extensions import db
from server.models import AuditEntry
from shared import export_verify
from tests.server.conftest import NOW, check_in, safety_check

DAY = NOW[:10]


def _push_some(phone):
    phone.push([phone.seal("safety_check", safety_check(temperature_c=36.8, notes="fine")), phone.seal("check_in", check_in())])


def _verify(tmp_path, data: bytes):
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)
    return export_verify.verify_bundle(str(path))


def test_supervisor_downloads_a_bundle_that_verifies_without_health(as_role, phone, tmp_path):
    _push_some(phone)
    client = as_role("supervisor")
    r = client.get("/dashboard/exports/safety", query_string={"from": DAY, "to": DAY, "format": "jsonl"})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    data = r.get_data()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert "manifest.json" in z.namelist()
        text = b"".join(z.read(n) for n in z.namelist()).decode("utf-8", "replace")
    # health withheld for a supervisor (36.8 as a value, not inside a timestamp such as 07:15:36.812)
    assert not re.search(r"(?<![\d.])(?<!\d:)36\.8(?!\d)", text) and '"fine"' not in text
    result = _verify(tmp_path, data)
    assert result.ok, result.problems
    assert db.session.query(AuditEntry).filter(AuditEntry.action.like("export.safety%")).count() >= 1


def test_supervisor_may_not_ask_for_health(as_role, phone):
    client = as_role("supervisor")
    r = client.get("/dashboard/exports/safety", query_string={"from": DAY, "to": DAY, "format": "csv", "with_health": "1"})
    assert r.status_code == 403


def test_bad_dates_are_explained_not_500(as_role, phone):
    client = as_role("admin")
    r = client.get("/dashboard/exports/safety", query_string={"from": "yesterday", "to": DAY, "format": "csv"}, follow_redirects=True)
    assert r.status_code == 200 and b"date" in r.data.lower()


def test_report_download_is_signed(as_role, phone, tmp_path):
    _push_some(phone)
    client = as_role("admin")
    page = client.get("/dashboard/exports")
    assert page.status_code == 200 and b"telecom authority" in page.data
    r = client.post("/dashboard/reports", data={"period": DAY[:7], "difficulties": "HN: generators short of fuel"})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    result = _verify(tmp_path, r.get_data())
    assert result.ok, result.problems


def test_supervisor_report_is_limited_to_own_region(as_role):
    client = as_role("supervisor")
    assert client.post("/dashboard/reports", data={"period": "2026-11", "region": "HP"}).status_code == 403
    assert client.post("/dashboard/reports", data={"period": "2026-11", "region": "HN"}).status_code == 200


def test_technician_has_no_exports(as_role):
    assert as_role("technician").get("/dashboard/exports").status_code == 403
