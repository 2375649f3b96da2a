"""Safety-log exports: bundles of real device-signed records, verified offline, and every way of tampering named."""
from __future__ import annotations

import csv
import io
import json
import re
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from server.errors import Forbidden, Invalid
from server.extensions import db
from server.models import AuditEntry, Revision
from server.services import exports, records
from server.services.keys import keyring
from shared import crypto, envelope
from shared import export_verify as ev
from shared.canonical import canonical_json

from tests.server.conftest import check_in, enrol_phone, repair_job, safety_check

ROOT = Path(__file__).resolve().parents[2]
FEVER_NOTE = "felt dizzy after the night shift"  # a health value that must never leave without permission


def _seed(client, org):
    """Two phones (Ha Noi, Hai Phong), 6 safety checks, 4 check-ins, 1 repair job, all sealed and pushed through the API."""
    p1 = enrol_phone(client, "HN-T1", "W001", "phone 1")
    p3 = enrol_phone(client, "HP-T1", "W003", "phone 3")
    items1 = [p1.seal("safety_check", safety_check("W001", taken_at=f"2026-11-{d:02d}T07:30:00+07:00")) for d in (2, 3, 4)]
    items1.append(p1.seal("safety_check", safety_check("W001", taken_at="2026-11-05T07:30:00+07:00", temperature_c=38.7,
                                                        symptoms=["fever", "loss_of_taste_or_smell"], exposure="suspected_contact",
                                                        fit_for_duty=False, notes=FEVER_NOTE)))
    items1 += [p1.seal("check_in", check_in("W001", at=f"2026-11-0{d}T10:00:00+07:00")) for d in (2, 3)]
    items1.append(p1.seal("repair_job", repair_job(reported_at="2026-11-03T09:00:00+07:00", steps={"reported": "2026-11-03T09:00:00+07:00"})))
    items3 = [p3.seal("safety_check", safety_check("W003", taken_at=f"2026-11-{d:02d}T07:00:00+07:00", site_code="HP001")) for d in (2, 3)]
    items3 += [p3.seal("check_in", check_in("W003", at=f"2026-11-0{d}T11:00:00+07:00", site_code="HP001")) for d in (2, 4)]
    outside = p1.seal("safety_check", safety_check("W001", taken_at="2026-12-01T07:30:00+07:00"))
    for phone, items in ((p1, items1 + [outside]), (p3, items3)):
        r = phone.push(items)
        assert r.status_code == 200, r.get_json()
        assert all(x["status"] == "accepted" for x in r.get_json()["results"]), r.get_json()
    return p1, p3


@pytest.fixture
def seeded(client, org):
    return _seed(client, org)


def _filter(**kw) -> exports.ExportFilter:
    return exports.ExportFilter.parse(kw.pop("date_from", "2026-11-01"), kw.pop("date_to", "2026-11-30"), **kw)


def _export(path, fmt="jsonl", who=None, with_health=False, workers=None, **kw) -> exports.ExportSummary:
    return exports.write_bundle(_filter(**kw), who or exports.Exporter.command_line(), fmt, str(path), with_health=with_health,
                                workers=workers)


def _key() -> bytes:
    return crypto.b64d(keyring().export_public)


def _verify(path) -> ev.Result:
    return ev.verify_bundle(str(path), _key(), workers=1)


def _failures(result: ev.Result) -> str:
    return "\n".join(str(p) for p in result.problems)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# --- a clean bundle ----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv", "pdf"])
def test_clean_bundle_verifies(app, seeded, tmp_path, fmt):
    out = tmp_path / "bundle"
    summary = _export(out, fmt)
    assert summary.records == 10 and summary.by_kind == {"safety_check": 6, "check_in": 4}
    assert summary.devices == 2
    result = _verify(out)
    assert result.ok, _failures(result)
    assert result.records == 10 and result.verified == 10 and result.by_kind == {"safety_check": 6, "check_in": 4}
    names = sorted(os.listdir(out))
    expected = {"jsonl": ["keys.json", "manifest.json", "records.jsonl"], "csv": ["keys.json", "manifest.json", "records.csv"],
                "pdf": ["keys.json", "manifest.json", "records.jsonl", "records.pdf"]}[fmt]
    assert names == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exported_by"]["role"] == "admin" and manifest["filter"]["from"] == "2026-11-01"
    assert manifest["withheld"]["fields"] == ["exposure", "notes", "symptoms", "temperature_c"]
    assert "Decree 13/2023" in manifest["withheld"]["reason"]
    assert manifest["export_key"]["public"] == keyring().export_public


def test_zip_bundle_verifies_and_records_match_the_phone(app, seeded, tmp_path):
    out = tmp_path / "export.zip"
    _export(out, "jsonl", with_health=True)
    assert zipfile.is_zipfile(out)
    result = _verify(out)
    assert result.ok, _failures(result)
    # each exported record is exactly what disclose() gives from the envelope as received
    ring = keyring()
    with zipfile.ZipFile(out) as z:
        lines = [json.loads(x) for x in z.read("records.jsonl").splitlines()]
        keys = json.loads(z.read("keys.json"))["devices"]
    by_rid = {x["record"]["header"]["rid"]: x["record"] for x in lines}
    for rev in db.session.scalars(select(Revision).where(Revision.record_id.in_(list(by_rid)))):
        opened = envelope.open_envelope(json.loads(rev.envelope), ring.box_privates)
        public = crypto.b64d(keys[rev.device_id]["public_key"])
        assert by_rid[rev.record_id] == envelope.disclose(opened, public)
        assert envelope.verify_disclosed(by_rid[rev.record_id], public)


def test_the_dashboard_stream_is_a_verifiable_zip(app, seeded, org, tmp_path):
    chunks = exports.stream_safety_export(_filter(), org.users["admin"], "csv")
    out = tmp_path / "download.zip"
    out.write_bytes(b"".join(chunks))
    result = _verify(out)
    assert result.ok, _failures(result)
    assert result.records == 10
    manifest = result.manifest
    assert manifest["exported_by"] == {"user_id": org.users["admin"].id, "name": "admin", "role": "admin", "via": "dashboard"}


def test_filters(app, seeded, tmp_path):
    assert _export(tmp_path / "a", region="HP").by_kind == {"safety_check": 2, "check_in": 2}
    assert _export(tmp_path / "b", team="HN-T1").by_kind == {"safety_check": 4, "check_in": 2}
    assert _export(tmp_path / "c", worker="W003", kinds="safety_check").by_kind == {"safety_check": 2}
    assert _export(tmp_path / "d", date_from="2026-11-03", date_to="2026-11-03").records == 3
    s = _export(tmp_path / "e", kinds="safety_check,check_in,repair_job")
    assert s.by_kind == {"safety_check": 6, "check_in": 4, "repair_job": 1}
    assert _verify(tmp_path / "e").ok
    assert _export(tmp_path / "f", date_from="2026-12-01", date_to="2026-12-31").records == 1
    empty = _export(tmp_path / "g", date_from="2025-01-01", date_to="2025-01-02")
    assert empty.records == 0 and _verify(tmp_path / "g").ok


def test_bad_filters_are_named(app, org):
    with pytest.raises(Invalid, match="no region 'XX'"):
        _export("/nonexistent", region="XX")
    with pytest.raises(Invalid, match="--to is before --from"):
        _filter(date_from="2026-11-05", date_to="2026-11-01")
    with pytest.raises(Invalid, match="kind must be among"):
        _filter(kinds="site_status")
    with pytest.raises(Invalid, match="from must be a date"):
        _filter(date_from="November")


# --- health data ------------------------------------------------------------------------

def _all_bytes(path: Path) -> bytes:
    """Every file's content; a PDF's as its text (its streams are compressed)."""
    out = []
    for p in sorted(path.iterdir()):
        if p.suffix == ".pdf":
            assert shutil.which("pdftotext"), "poppler-utils is needed to read the PDF"
            out.append(subprocess.run(["pdftotext", str(p), "-"], capture_output=True, check=True).stdout)
        else:
            out.append(p.read_bytes())
    return b"".join(out)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "pdf"])
def test_withheld_health_bundle_verifies_and_holds_no_health_value(app, seeded, tmp_path, fmt):
    out = tmp_path / "bundle"
    _export(out, fmt)
    assert _verify(out).ok
    data = _all_bytes(out)
    for value in (FEVER_NOTE.encode(), b"loss_of_taste_or_smell", b"suspected_contact"):
        assert value not in data, value
    for number in (rb"38\.7", rb"36\.6"):  # as a value, not inside a timestamp such as 07:15:36.612
        assert not re.search(rb"(?<![\d.])(?<!\d:)" + number + rb"(?!\d)", data), number
    if fmt != "csv":
        record = json.loads((out / "records.jsonl").read_bytes().splitlines()[0])["record"]
        assert set(record["withheld"]) == {"temperature_c", "symptoms", "exposure", "notes"}
        assert not set(record["fields"]) & {"temperature_c", "symptoms", "exposure", "notes"}


def test_admin_with_health_gets_values_and_they_verify(app, seeded, tmp_path):
    out = tmp_path / "bundle"
    _export(out, "csv", with_health=True)
    assert _verify(out).ok
    text = (out / "records.csv").read_text()
    assert FEVER_NOTE in text and "38.7" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["withheld"]["fields"] == [] and manifest["withheld"]["reason"] is None


def test_only_admins_get_health_and_supervisors_only_their_regions(app, seeded, org, tmp_path):
    sup = exports.Exporter.of_user(org.users["supervisor"])  # supervises HN
    with pytest.raises(Forbidden, match="may not export health data"):
        _export(tmp_path / "a", who=sup, with_health=True)
    with pytest.raises(Forbidden, match="may not export health data"):
        exports.stream_safety_export(_filter(), org.users["auditor"], "csv", with_health=True)
    with pytest.raises(Forbidden, match="may not export safety logs"):
        _export(tmp_path / "b", who=exports.Exporter.of_user(org.users["tech1"]))
    with pytest.raises(Forbidden, match="own regions"):
        _export(tmp_path / "c", who=sup, region="HP")
    s = _export(tmp_path / "d", who=sup)
    assert s.by_kind == {"safety_check": 4, "check_in": 2}  # Ha Noi only
    assert _export(tmp_path / "e", who=exports.Exporter.of_user(org.users["auditor"])).records == 10


def test_a_manifest_claiming_health_is_withheld_while_a_record_shows_it_fails(app, seeded, tmp_path):
    out = tmp_path / "bundle"
    _export(out, "jsonl", with_health=True)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["withheld"] = {"fields": ["temperature_c"], "by_kind": {"safety_check": ["temperature_c"]}, "reason": "x"}
    from shared.signing import sign_document

    (out / "manifest.json").write_text(json.dumps(sign_document(keyring().export_private, manifest)))
    result = _verify(out)
    assert not result.ok
    assert "shows temperature_c, which the manifest says are withheld" in _failures(result)


# --- audit --------------------------------------------------------------------------------

def test_every_export_is_audited_with_who_filter_and_count(app, seeded, org, tmp_path):
    _export(tmp_path / "a", region="HN")
    b"".join(exports.stream_safety_export(_filter(), org.users["admin"], "jsonl", with_health=True))
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("export.safety%")).order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["export.safety.start", "export.safety", "export.safety.start", "export.safety"]
    cli_end, dash_end = entries[1], entries[3]
    assert cli_end.actor_user_id is None and cli_end.details["via"] == "cli" and cli_end.details["records"] == 6
    assert cli_end.details["filter"]["region"] == "HN" and cli_end.details["with_health"] is False
    assert dash_end.actor_user_id == org.users["admin"].id and dash_end.details["records"] == 10
    assert dash_end.details["with_health"] is True and dash_end.details["completed"] is True
    assert entries[0].details["export_id"] == cli_end.details["export_id"] == cli_end.target


def test_an_interrupted_download_is_still_audited(app, seeded, org, monkeypatch):
    monkeypatch.setattr(exports, "YIELD_PER", 2)
    stream = exports.stream_safety_export(_filter(), org.users["admin"], "jsonl")
    first = next(stream)
    assert first.startswith(b"PK")
    stream.close()  # the browser went away after the first chunk
    ends = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export.safety")).all()
    assert len(ends) == 1
    assert ends[0].details["completed"] is False and 1 <= ends[0].details["records"] < 10


def test_a_bundle_file_that_cannot_be_written_fails_the_export_and_is_audited(app, seeded, tmp_path, monkeypatch):
    class Full(io.RawIOBase):  # a disk that fills after the first batch
        written = 0

        def writable(self):
            return True

        def write(self, b):
            if self.written:
                raise OSError(28, "No space left on device")
            self.written += len(b)
            return len(b)

    monkeypatch.setattr(exports, "YIELD_PER", 2)
    monkeypatch.setattr(exports._ZipSink, "open", lambda self, name: Full())
    with pytest.raises(OSError, match="No space left"):
        _export(tmp_path / "full.zip", "csv", workers=1)  # written behind, by the writer thread: its error comes back here
    ends = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export.safety")).all()
    assert len(ends) == 1 and ends[0].details["completed"] is False
    assert not (tmp_path / "full.zip").exists()  # no half-written bundle left behind


@pytest.mark.parametrize("workers", [1, 2])
def test_a_records_file_that_fails_as_it_is_closed_fails_the_export_and_is_audited(app, seeded, tmp_path, monkeypatch, workers):
    class FullAtFlush(io.RawIOBase):  # every write taken, the last flush refused (a disk that fills at the end)
        def writable(self):
            return True

        def write(self, b):
            return len(b)

        def close(self):
            if not self.closed:
                super().close()
                raise OSError(28, "No space left on device")

    monkeypatch.setattr(exports._ZipSink, "open", lambda self, name: FullAtFlush())
    with pytest.raises(OSError, match="No space left"):
        _export(tmp_path / "full.zip", "csv", workers=workers)
    ends = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export.safety")).all()
    assert len(ends) == 1 and ends[0].details["completed"] is False
    assert not (tmp_path / "full.zip").exists()


# --- tampering: each is caught and named ------------------------------------------------------

@pytest.fixture
def bundle(app, seeded, tmp_path):
    out = tmp_path / "bundle"
    _export(out, "jsonl")
    assert _verify(out).ok
    return out


@pytest.fixture
def csv_bundle(app, seeded, tmp_path):
    out = tmp_path / "csvbundle"
    _export(out, "csv")
    assert _verify(out).ok
    return out


def _rid(line: bytes) -> str:
    return json.loads(line)["record"]["header"]["rid"]


def test_one_changed_byte_in_one_record_is_named(bundle):
    path = bundle / "records.jsonl"
    lines = _lines(path)
    rid = _rid(lines[2])
    lines[2] = lines[2].replace(b'"HN001"', b'"HN002"', 1)
    path.write_bytes(b"".join(lines))
    result = _verify(bundle)
    assert not result.ok
    text = _failures(result)
    assert "records.jsonl: SHA-256" in text
    assert f"records.jsonl record #3 ({rid}): device signature does not verify" in text
    assert "#1 " not in text and "#4 " not in text  # only that record is named


@pytest.mark.parametrize("where", ["worker", "context", "signature", "syntax"])
def test_any_changed_byte_names_the_record(bundle, where):
    path = bundle / "records.jsonl"
    lines = _lines(path)
    line = lines[4]
    if where == "worker":
        line = line.replace(b'"worker_id":"W00', b'"worker_id":"X00', 1)
    elif where == "context":  # the server's unsigned annotation: caught by the chain
        line = line.replace(b'"region":"H', b'"region":"X', 1)
    elif where == "signature":
        i = line.index(b'"signature":"') + 14
        line = line[:i] + (b"A" if line[i:i + 1] != b"A" else b"B") + line[i + 1:]
    else:
        line = line[:-3] + b"]" + line[-2:]
    assert line != lines[4]
    lines[4] = line
    path.write_bytes(b"".join(lines))
    result = _verify(bundle)
    assert not result.ok
    assert any("record #5" in p.where or "line 5" in p.where for p in result.problems), _failures(result)
    assert not any("record #4" in p.where or "record #6" in p.where for p in result.problems), _failures(result)


def test_a_deleted_record_is_named(bundle):
    path = bundle / "records.jsonl"
    lines = _lines(path)
    rid = _rid(lines[3])
    del lines[3]
    path.write_bytes(b"".join(lines))
    result = _verify(bundle)
    text = _failures(result)
    assert not result.ok
    assert "records.jsonl record #4: missing" in text
    assert "holds 9 records, the manifest says 10" in text
    assert rid not in text or True


def test_a_deleted_last_record_is_caught(bundle):
    path = bundle / "records.jsonl"
    path.write_bytes(b"".join(_lines(path)[:-1]))
    text = _failures(_verify(bundle))
    assert "last record's chain value differs" in text and "holds 9 records, the manifest says 10" in text


def test_an_added_record_is_named(bundle):
    path = bundle / "records.jsonl"
    lines = _lines(path)
    # a genuine, device-signed record, renumbered and chained properly: still caught
    obj = json.loads(lines[1])
    obj.pop("chain")
    obj["n"] = 11
    last_chain = json.loads(lines[-1])["chain"]
    line, _ = ev.jsonl_line(11, obj["record"], obj["context"], last_chain)
    path.write_bytes(b"".join(lines) + line)
    result = _verify(bundle)
    text = _failures(result)
    assert not result.ok
    assert f"records.jsonl record #11 ({obj['record']['header']['rid']}): not in the manifest, which counts 10 records" in text
    assert "holds 11 records, the manifest says 10" in text


def test_an_inserted_copy_is_named(bundle):
    path = bundle / "records.jsonl"
    lines = _lines(path)
    lines.insert(5, lines[2])
    path.write_bytes(b"".join(lines))
    text = _failures(_verify(bundle))
    assert "records.jsonl record #3" in text and "out of order or repeated" in text


def test_an_edited_manifest_fails(bundle):
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["filter"]["region"] = "HP"
    path.write_text(json.dumps(manifest))
    result = _verify(bundle)
    assert not result.ok
    assert "manifest.json: signature does not verify" in _failures(result)


def test_a_manifest_re_signed_with_another_key_fails_against_the_published_key(bundle):
    from shared.signing import sign_document

    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["counts"]["records"] = 9
    other_private, other_public = crypto.generate_signing_keypair()
    manifest["export_key"] = {"public": crypto.b64e(other_public), "fingerprint": crypto.fingerprint(other_public)}
    path.write_text(json.dumps(sign_document(other_private, manifest)))
    text = _failures(_verify(bundle))
    assert "is not the given export key" in text and "signature does not verify" in text
    # without the published key the verifier warns that it only checked the manifest against the key it names
    alone = ev.verify_bundle(str(bundle), None, workers=1)
    assert any("export key was not given" in w for w in alone.warnings)


def test_a_swapped_device_key_is_named(bundle, seeded):
    p1, _ = seeded
    path = bundle / "keys.json"
    keys = json.loads(path.read_text())
    _, other = crypto.generate_signing_keypair()
    keys["devices"][p1.device_id] = {"public_key": crypto.b64e(other), "fingerprint": crypto.fingerprint(other)}
    path.write_text(json.dumps(keys))
    result = _verify(bundle)
    text = _failures(result)
    assert not result.ok
    assert "keys.json: SHA-256" in text
    assert f"device key fingerprint {crypto.fingerprint(p1.public_key)} differs from keys.json's key for device {p1.device_id}" in text
    named = {p.where for p in result.problems if "record #" in p.where}
    assert len(named) == 6  # every record of that phone, and only those


def test_a_swapped_device_key_with_forged_fingerprints_still_fails(bundle, seeded):
    p1, _ = seeded
    _, other = crypto.generate_signing_keypair()
    keys_path, rec_path = bundle / "keys.json", bundle / "records.jsonl"
    keys = json.loads(keys_path.read_text())
    keys["devices"][p1.device_id] = {"public_key": crypto.b64e(other), "fingerprint": crypto.fingerprint(other)}
    keys_path.write_text(json.dumps(keys))
    rec_path.write_bytes(rec_path.read_bytes().replace(crypto.fingerprint(p1.public_key).encode(), crypto.fingerprint(other).encode()))
    text = _failures(_verify(bundle))
    assert "device signature does not verify" in text


def test_an_extra_or_missing_file_is_named(bundle):
    (bundle / "extra.txt").write_text("hello")
    os.remove(bundle / "keys.json")
    text = _failures(_verify(bundle))
    assert "extra.txt: in the bundle but not in the manifest" in text
    assert "keys.json: listed in the manifest but missing" in text


def test_csv_tampering_is_named(csv_bundle):
    path = csv_bundle / "records.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    header = rows[0]
    # a readable column changed to disagree with the signed fields
    rows[3][header.index("site_code")] = "HN999"
    # a signed field changed
    fields = json.loads(rows[5][header.index("fields")])
    fields["site_code"] = "HN002"
    rows[5][header.index("fields")] = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    del rows[7]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue())
    result = _verify(csv_bundle)
    text = _failures(result)
    assert "records.csv record #3" in text and "column(s) site_code differ from the signed fields" in text
    assert "records.csv record #5" in text and "device signature does not verify" in text
    assert "records.csv record #7: missing" in text
    assert "holds 9 records, the manifest says 10" in text


def test_tampering_inside_a_zip_is_named(app, seeded, tmp_path):
    out = tmp_path / "b.zip"
    _export(out, "jsonl")
    tampered = tmp_path / "t.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "records.jsonl":
                data = data.replace(b'"HP001"', b'"HP002"', 1)
            dst.writestr(name, data)
    result = _verify(tampered)
    assert not result.ok and any("records.jsonl record #" in p.where for p in result.problems)


# --- the command line -------------------------------------------------------------------------

@pytest.mark.parametrize("where, says", [
    ("missing/out.zip", "does not exist"),
    ("a-file/out", "Not a directory"),
    ("exists.zip", "exists already"),
])
def test_cli_export_to_a_place_it_cannot_write_says_why(app, seeded, tmp_path, where, says):
    from server.export_cli import export

    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "exists.zip").write_bytes(b"kept")
    r = app.test_cli_runner().invoke(export, ["safety", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(tmp_path / where), "--quiet"])
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output, r.output
    assert (tmp_path / "exists.zip").read_bytes() == b"kept"


def test_cli_export_and_verify(app, seeded, tmp_path):
    from server.export_cli import export, verify_export

    runner = app.test_cli_runner()
    out = tmp_path / "cli.zip"
    r = runner.invoke(export, ["safety", "--from", "2026-11-01", "--to", "2026-11-30", "--region", "HN", "--format", "csv",
                               "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "exported 6 records" in r.output and "health fields withheld" in r.output
    key = keyring().export_public
    r = runner.invoke(verify_export, [str(out), "--export-key", key, "--quiet"])
    assert r.exit_code == 0, r.output
    assert "OK, the bundle is intact" in r.output
    r = runner.invoke(verify_export, [str(out), "--export-key", key])  # with its progress bar, as people run it
    assert r.exit_code == 0, r.output
    assert "OK, the bundle is intact" in r.output

    folder = tmp_path / "cli"
    r = runner.invoke(export, ["safety", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "jsonl", "--with-health",
                               "--workers", "2", "--out", str(folder), "--quiet"])
    assert r.exit_code == 0, r.output and "health fields included" in r.output
    path = folder / "records.jsonl"
    lines = _lines(path)
    del lines[0]
    path.write_bytes(b"".join(lines))
    r = runner.invoke(verify_export, [str(folder), "--export-key", key, "--quiet"])
    assert r.exit_code == 1
    assert "FAIL      records.jsonl record #1: missing" in r.output

    r = runner.invoke(export, ["safety", "--from", "2026-11-01", "--to", "2026-11-30", "--region", "ZZ", "--out", str(tmp_path / "z")])
    assert r.exit_code == 2 and "no region 'ZZ'" in r.output


def test_verifier_runs_alone_without_server_code(app, seeded, tmp_path):
    """An auditor has the bundle and fieldwatch: the verifier imports no server, flask or sqlalchemy."""
    out = tmp_path / "b.zip"
    _export(out, "jsonl")
    code = ("import sys, runpy; sys.argv=['v', %r, '--export-key', %r, '--workers', '2']\n"
            "from shared import export_verify\n"
            "rc = export_verify.main(sys.argv[1:])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('server', 'flask', 'sqlalchemy', 'flask_sqlalchemy'))\n"
            "print('IMPORTED', bad)\n"
            "sys.exit(rc)\n") % (str(out), keyring().export_public)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "IMPORTED []" in r.stdout and "OK, the bundle is intact" in r.stdout


def test_pdf_is_a_readable_table_with_page_numbers(app, seeded, tmp_path):
    out = tmp_path / "pdf"
    _export(out, "pdf")
    data = (out / "records.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(out / "records.pdf"), "-"], capture_output=True, text=True).stdout
        assert "Safety log export" in text and "Page 1 of 1" in text and "withheld" in text and "W003" in text


def test_pdf_refuses_more_rows_than_it_can_hold(app, seeded, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "PDF_MAX_ROWS", 5)
    with pytest.raises(Invalid, match="at most 5 records"):
        _export(tmp_path / "p", "pdf")


# --- memory stays flat ---------------------------------------------------------------------------

def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_bench", ROOT / "bench" / "export_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_exporting_100k_rows_keeps_memory_flat(app, org, tmp_path):
    """100,000 revisions (Core bulk inserts; random signatures: memory, not proof, is measured here),
    exported in a fresh process to CSV and to JSON Lines: its peak RSS grows by less than 50 MB."""
    bench = _bench()
    bench.seed_revisions(100_000, signed=False, devices=10)
    db.session.remove()
    for fmt_name in ("csv", "jsonl"):
        out = tmp_path / f"big-{fmt_name}"
        m = bench.run_child("export", app.config["DATABASE_URL"], app.config["KEYS_DIR"], fmt_name, str(out))
        growth = m["rss_peak_mb"] - m["rss_before_mb"]
        print(f"{fmt_name}: {m['records']} rows in {m['seconds']:.1f} s, peak RSS {m['rss_peak_mb']:.0f} MB, growth {growth:.1f} MB")
        assert m["records"] == 100_000
        assert growth < 50, m


def test_dashboard_made_revisions_are_exported_as_unsigned_and_named_so(app, seeded, org, tmp_path):
    from server.services.sync import write_by_person

    body = repair_job(reported_at="2026-11-06T09:00:00+07:00", steps={"reported": "2026-11-06T09:00:00+07:00"}, site_code="HN002")
    write_by_person("repair_job", "job-by-supervisor", body, org.users["supervisor"].id, keyring())
    db.session.commit()
    out = tmp_path / "b"
    s = _export(out, "csv", kinds="repair_job")
    assert s.records == 2 and s.unsigned == 1
    result = _verify(out)
    assert result.ok, _failures(result)
    assert (result.verified, result.unsigned) == (1, 1)
    assert "1 made by people (unsigned)" in ev.render(result, str(out))


def test_a_push_stores_the_proof_an_export_would_derive(app, seeded):
    ring = keyring()
    revisions = db.session.scalars(select(Revision).where(Revision.signature.is_not(None))).all()
    assert len(revisions) == 12
    for r in revisions:
        body = records.join_health(dict(r.body), r.health, r.health_key_id, ring)
        secret = crypto.b64d(r.secret)
        health = records.health_fields_of(r.kind)
        proof = dict(zip("shd", map(json.loads, r.proof.split("\n"))))
        assert [canonical_json(proof[k]).decode() for k in "shd"] == r.proof.split("\n")  # embedded as they are: canonical
        assert proof["s"] == {k: crypto.b64e(envelope.field_salt(secret, k)) for k in body if k not in health}
        assert proof["h"] == {k: crypto.b64e(envelope.field_salt(secret, k)) for k in body if k in health}
        assert proof["d"] == {k: envelope.field_digest(envelope.field_salt(secret, k), body[k]) for k in body if k in health}
        assert set(proof["s"]) == set(r.body)  # the stored body is what an export shows when it withholds


def test_backfilled_proofs_are_what_the_push_stored(app, seeded):
    from server.cli import main
    from server.services import proofs

    pushed = dict(db.session.execute(select(Revision.id, Revision.proof)).all())
    assert all(pushed.values()) and len(pushed) >= 10
    db.session.execute(Revision.__table__.update().values(proof=None))  # as migration 0008 leaves older revisions
    db.session.commit()
    assert proofs.missing_count() == len(pushed)
    result = app.test_cli_runner().invoke(main, ["proofs", "backfill", "--quiet"])
    assert result.exit_code == 0 and f"stored {len(pushed)} proofs" in result.output, result.output
    db.session.expire_all()
    assert dict(db.session.execute(select(Revision.id, Revision.proof)).all()) == pushed
    assert proofs.missing_count() == 0 and proofs.backfill(keyring()) == 0  # nothing left: a second run stores nothing
    result = app.test_cli_runner().invoke(main, ["proofs", "backfill", "--quiet"])
    assert "already has its proof" in result.output


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("with_health", [False, True])
def test_revisions_stored_before_the_proof_export_the_same_and_verify(app, seeded, tmp_path, fmt, with_health):
    with_proof = _export(tmp_path / "new", fmt, with_health=with_health, workers=1)
    db.session.execute(Revision.__table__.update().values(proof=None))  # as migration 0008 leaves older revisions
    db.session.commit()
    without = _export(tmp_path / "old", fmt, with_health=with_health, workers=1)
    assert _verify(tmp_path / "old").ok, _failures(_verify(tmp_path / "old"))
    assert (without.records, without.by_kind) == (with_proof.records, with_proof.by_kind) == (10, without.by_kind)
    name = "records.jsonl" if fmt == "jsonl" else "records.csv"
    if fmt == "jsonl":
        strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "chain"} for x in _lines(p / name)]
    else:
        strip = lambda p: [row[:-1] for row in csv.reader(io.StringIO((p / name).read_text()))]
    assert strip(tmp_path / "old") == strip(tmp_path / "new")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_encoded_by_worker_processes_is_the_same_and_verifies(app, seeded, tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(exports, "YIELD_PER", 3)
    monkeypatch.setattr(exports, "POOL_AFTER", 2)
    monkeypatch.setattr(exports, "POOL_BATCH", 2)
    one, two = tmp_path / "one", tmp_path / "two"
    s1 = _export(one, fmt, with_health=True, workers=1)
    s2 = _export(two, fmt, with_health=True, workers=2)
    assert (s2.records, s2.by_kind, s2.devices, s2.unsigned) == (s1.records, s1.by_kind, s1.devices, s1.unsigned) == (10, s1.by_kind, 2, 0)
    assert _verify(two).ok, _failures(_verify(two))
    name = "records.jsonl" if fmt == "jsonl" else "records.csv"
    if fmt == "jsonl":
        strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "chain"} for x in _lines(p / name)]
    else:
        strip = lambda p: [row[:-1] for row in csv.reader(io.StringIO((p / name).read_text()))]
    assert strip(one) == strip(two)


# --- the fast encoder writes what the reference writes ---------------------------------------

def _encoder_spec(fmt: str, with_health: bool, data_key: bytes, team: int | None = None) -> dict:
    routing = exports._Routing(team, None, {"dev-1": 1, "dev-2": 2}, {"HN-T1": 1, "HP-T1": 2}, {1: 10, 2: 20},
                               {"HN001": 10, "HP001": 20})
    return {"fmt": fmt, "with_health": with_health, "data_keys": {"dk1": data_key},
            "fingerprints": {"dev-1": "a" * 32, "dev-2": "b" * 32}, "routing": routing,
            "teams": {1: "HN-T1", 2: "HP-T1"}, "regions": {10: "HN", 20: "HP"}, "users": {7: "super-hn"}}


def _encoder_rows(data_key: bytes) -> list[tuple]:
    from datetime import datetime

    def row(i, kind="safety_check", body=None, health=None, signature="c2ln", device="dev-1", occurred="2026-11-01 06:00:00.000000",
            received="2026-11-01 06:03:00.250000", author=None, worker="W001", proof=True):
        body = {"schema_version": 1, "worker_id": worker, "taken_at": "2026-11-01T13:00:00+07:00", "site_code": "HN001",
                "ppe": ["mask", "gloves"], "fit_for_duty": True, "in_quarantine_area": False, "position": None} if body is None else body
        blob = None if health is None else crypto.aead_encrypt(data_key, json.dumps(health).encode(), b"dk1")
        secret = bytes([i]) * 16
        full = {**body, **(health or {})}
        salts = envelope.field_salts(full, secret)
        made = records.disclosure_proof(kind, salts, envelope.field_digests(full, secret, salts)) if proof and signature else None
        return (f"rid-{i}", f"rev-{i}", kind, device, author, json.dumps(body), blob, "dk1" if blob else None,
                crypto.b64e(secret), signature, worker, occurred, received, made)

    health = {"temperature_c": 36.6, "symptoms": [], "exposure": "none", "notes": ""}
    return [
        row(1, health=health),
        row(2, health={**health, "notes": 'said "ok", then\nleft\r early; ghi chú 😀 \x01', "symptoms": ["fever", "ho, khan"]}),
        row(3, health={**health, "temperature_c": 1e-05}),  # a float orjson writes otherwise: the reference path
        row(4, body={"worker_id": "W001", "taken_at": "2026-11-01T13:00:00+07:00", "odometer": 2**70}, health=health),  # > 64 bits
        row(5, kind="check_in", body={"worker_id": "W002", "at": "2026-11-01T10:00:00+07:00", "status": "ok", "site_code": "HP001",
                                      "position": {"lat": 21.0285, "lon": 105.8542}}, device="dev-2", worker="W002"),
        row(6, health=health, signature=None, device=None, author=7),  # made on the dashboard
        row(7, health=health, occurred=datetime(2026, 11, 1, 6, 0, 0, 123456), received=None),  # PostgreSQL gives datetimes
        row(8, health=health, occurred="2026-11-01 06:00:00"),  # not SQLAlchemy's storage form: parsed
        row(9, body={"worker_id": "W001", "taken_at": "x", "site_code": "HP001", "notes": "a,b", "position": [1.5, -0.0]}, health=health,
            proof=False),  # a health field in the stored body too (a push never stores that): derived from the secret
        row(10, kind="safety_check", device="dev-unknown", health=health),
        row(12, health=health, proof=False),  # stored before migration 0008: salts derived from the secret
        row(13, kind="check_in", body={"worker_id": "W002", "at": "2026-11-01T10:00:00+07:00", "status": "ok", "site_code": "HP001"},
            device="dev-2", worker="W002", proof=False),
        row(11, health={**health, "notes": "carriage\rreturn"}, worker="W\r1"),  # csv.writer leaves a lone \r bare
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("with_health", [False, True])
@pytest.mark.parametrize("team", [None, 1])
def test_the_fast_encoder_writes_the_reference_bytes(fmt, with_health, team):
    data_key = os.urandom(32)
    encoder = exports._Encoder(_encoder_spec(fmt, with_health, data_key, team))
    rows = _encoder_rows(data_key)
    pieces, by_kind, devices, unsigned = encoder.encode(rows)
    expected, kinds, devs, person = [], {}, set(), 0
    for row in rows:
        made = encoder.record(row)
        if made is None:
            continue
        record, context, _team, _region = made
        expected.append(encoder.pieces(record, context))
        kinds[record["header"]["kind"]] = kinds.get(record["header"]["kind"], 0) + 1
        if record["signature"] is None:
            person += 1
        else:
            devs.add(record["header"]["dev"])
        # the line as the writer numbers it is the shared reference line
        before, after = expected[-1]
        if fmt == "jsonl":
            assert before + b"7" + after == canonical_json({"context": context, "n": 7, "record": record})
        else:
            cells = ev.csv_cells(7, record, context)
            assert next(csv.reader(io.StringIO(after.decode() + "\n", newline=""))) == cells[1:]
            line, chain = ev.csv_line(7, record, context, "0" * 64)
            assert before == b"" and line == b"7," + after + b"," + chain.encode() + b"\n"
    assert len(expected) == (13 if team is None else 9)
    assert pieces == expected
    assert (by_kind, devices, unsigned) == (kinds, devs, person)


def test_csv_quoting_is_csv_writer_s_and_reads_back():
    for cell in ["", "a", "a,b", 'a"b', '"', "a\nb", "x\x00y", " lead", "trail ", "é😀", "[withheld]", '{"a":"b,c"}', "\t"]:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([cell, "z"])
        assert ev.csv_field(cell) + ",z\n" == buf.getvalue()
    cells = ["a\rb", "c\r\nd", 'e"\r', "f"]
    assert next(csv.reader(io.StringIO(",".join(map(ev.csv_field, cells)) + "\n", newline=""))) == cells


def test_times_are_what_the_column_type_gives():
    from datetime import datetime, timezone

    for text in ("2026-11-01 06:00:00.000000", "2026-11-01 06:00:00.123456", "2026-11-01 06:00:00", "2026-11-01T06:00:00.5"):
        assert exports._utc_iso(text) == datetime.fromisoformat(text).replace(tzinfo=timezone.utc).isoformat()
    naive = datetime(2026, 11, 1, 6, 0, 0, 7)
    assert exports._utc_iso(naive) == naive.replace(tzinfo=timezone.utc).isoformat()
    assert exports._utc_iso(naive.replace(tzinfo=timezone.utc)) == naive.replace(tzinfo=timezone.utc).isoformat()
    assert exports._utc_iso(None) is None


@pytest.mark.parametrize("fmt, scope, count", [
    ("jsonl", {}, 12), ("csv", {}, 12),
    ("jsonl", {"worker": "W001", "date_from": "2026-11-03", "date_to": "2026-11-04"}, 3), ("csv", {"region": "HP"}, 4),
])
def test_the_driver_cursor_reads_what_sqlalchemy_reads(app, seeded, org, tmp_path, monkeypatch, fmt, scope, count):
    from server.services.sync import write_by_person

    body = repair_job(reported_at="2026-11-06T09:00:00+07:00", steps={"reported": "2026-11-06T09:00:00+07:00"}, site_code="HN002")
    write_by_person("repair_job", "job-by-supervisor", body, org.users["supervisor"].id, keyring())
    db.session.commit()
    kinds = "safety_check,check_in,repair_job"
    raw, orm = tmp_path / "raw", tmp_path / "orm"
    s1 = _export(raw, fmt, with_health=True, workers=1, kinds=kinds, **scope)
    monkeypatch.setattr(exports, "RAW_CURSOR", False)
    s2 = _export(orm, fmt, with_health=True, workers=1, kinds=kinds, **scope)
    assert s1.records == s2.records == count and s1.unsigned == (0 if scope else 1)
    for out in (raw, orm):
        assert _verify(out).ok, _failures(_verify(out))
    name = "records.jsonl" if fmt == "jsonl" else "records.csv"
    if fmt == "jsonl":
        strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "chain"} for x in _lines(p / name)]
    else:
        strip = lambda p: [row[:-1] for row in csv.reader(io.StringIO((p / name).read_text()))]
    assert strip(raw) == strip(orm)
    stored = {r.record_id: r.occurred_at.isoformat() for r in db.session.scalars(select(Revision))}
    if fmt == "jsonl":
        assert all(line["context"]["occurred_at"] == stored[line["record"]["header"]["rid"]] for line in strip(raw))


@pytest.mark.parametrize("workers", [3])
def test_several_worker_processes_keep_the_order(app, seeded, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(exports, "YIELD_PER", 2)
    monkeypatch.setattr(exports, "POOL_AFTER", 1)
    monkeypatch.setattr(exports, "POOL_BATCH", 1)
    one, many = tmp_path / "one", tmp_path / "many"
    _export(one, "jsonl", workers=1)
    s = _export(many, "jsonl", workers=workers)
    assert s.records == 10 and _verify(many).ok, _failures(_verify(many))
    strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "chain"} for x in _lines(p / "records.jsonl")]
    assert strip(one) == strip(many)


class _LazyPool:
    """A stand-in for ProcessPoolExecutor in this process whose tasks run only when their result is asked for,
    so the exporter always finds its workers busy and encodes batches itself between theirs."""

    submitted = 0

    def __init__(self, workers, mp_context=None, initializer=None, initargs=()):
        if initializer:
            initializer(*initargs)

    def submit(self, fn, *args):
        type(self).submitted += 1

        class _Future:
            _value = None

            def done(self):
                return False

            def result(self):
                if self._value is None:
                    self._value = fn(*args)
                return self._value

        return _Future()

    def shutdown(self, wait=True, cancel_futures=False):
        pass


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_batches_encoded_here_and_by_workers_keep_their_order(app, seeded, tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(exports, "YIELD_PER", 4)
    monkeypatch.setattr(exports, "POOL_AFTER", 1)
    monkeypatch.setattr(exports, "POOL_BATCH", 1)
    monkeypatch.setattr(exports, "ProcessPoolExecutor", _LazyPool)
    _LazyPool.submitted = 0
    one, mixed = tmp_path / "one", tmp_path / "mixed"
    _export(one, fmt, workers=1)
    s = _export(mixed, fmt, workers=2)
    assert 0 < _LazyPool.submitted < s.records == 10  # some batches to the "workers", the others encoded here
    assert _verify(mixed).ok, _failures(_verify(mixed))
    name = "records.jsonl" if fmt == "jsonl" else "records.csv"
    if fmt == "jsonl":
        strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "chain"} for x in _lines(p / name)]
    else:
        strip = lambda p: [row[:-1] for row in csv.reader(io.StringIO((p / name).read_text()))]
    assert strip(one) == strip(mixed)


def test_the_switch_interval_is_restored_after_a_pooled_export(app, seeded, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "POOL_AFTER", 1)
    monkeypatch.setattr(exports, "YIELD_PER", 2)
    before = sys.getswitchinterval()
    _export(tmp_path / "b", "jsonl", workers=2)
    assert sys.getswitchinterval() == before
