"""The offline verifier on bundles made with shared/ alone (no server): format pieces and failure naming."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid

from shared import crypto, envelope
from shared import export_verify as ev
from shared.canonical import canonical_json
from shared.signing import sign_document


def _records(n: int = 5, withhold=frozenset({"temperature_c"})):
    device_private, device_public = crypto.generate_signing_keypair()
    box_private, box_public = crypto.generate_box_keypair()
    device = str(uuid.uuid4())
    out = []
    for i in range(n):
        header = envelope.make_header("k1", device, str(uuid.uuid4()), "safety_check", f"{i:05d}")
        body = {"worker_id": "W001", "taken_at": f"2026-11-0{i + 1}T07:00:00+07:00", "temperature_c": 36.5 + i / 10, "fit_for_duty": True}
        opened = envelope.open_envelope(envelope.seal(header, body, device_private, box_public), {"k1": box_private})
        out.append(envelope.disclose(opened, device_public, withhold=withhold))
    return device, device_public, out


def _bundle(tmp_path, fmt="jsonl", n=5):
    device, public, records = _records(n)
    export_private, export_public = crypto.generate_signing_keypair()
    export_id = str(uuid.uuid4())
    chain = seed = ev.chain_seed(export_id)
    out = tmp_path / "bundle"
    out.mkdir(parents=True)
    if fmt == "jsonl":
        data = b""
        for i, r in enumerate(records, 1):
            line, chain = ev.jsonl_line(i, r, {"worker_id": "W001", "origin": "device"}, chain)
            data += line
        name = ev.RECORDS_JSONL
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(ev.CSV_COLUMNS)
        for i, r in enumerate(records, 1):
            cells = ev.csv_cells(i, r, {"worker_id": "W001", "origin": "device"})
            chain = ev.csv_chain(chain, cells)
            w.writerow(cells + [chain])
        data = buf.getvalue().encode()
        name = ev.RECORDS_CSV
    keys = json.dumps({"devices": {device: {"public_key": crypto.b64e(public), "fingerprint": crypto.fingerprint(public)}}}).encode()
    (out / name).write_bytes(data)
    (out / ev.KEYS).write_bytes(keys)
    files = {name: {"role": "records", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "records": n,
                    "chain_seed": seed, "chain_head": chain},
             ev.KEYS: {"role": "keys", "sha256": hashlib.sha256(keys).hexdigest(), "bytes": len(keys)}}
    manifest = {"format": ev.FORMAT, "format_version": ev.FORMAT_VERSION, "kind": "safety_export", "export_id": export_id,
                "files": files, "counts": {"records": n, "by_kind": {"safety_check": n}, "devices": 1},
                "withheld": {"fields": ["temperature_c"], "by_kind": {"safety_check": ["temperature_c"]}, "reason": "health"},
                "export_key": {"public": crypto.b64e(export_public), "fingerprint": crypto.fingerprint(export_public)}}
    (out / ev.MANIFEST).write_text(json.dumps(sign_document(export_private, manifest)))
    return out, export_public


def test_jsonl_lines_are_canonical_with_the_chain_first():
    _, _, records = _records(1)
    line, chain = ev.jsonl_line(1, records[0], {"origin": "device"}, ev.chain_seed("x"))
    obj = json.loads(line)
    assert canonical_json(obj) + b"\n" == line
    assert obj["chain"] == chain == ev.chain_next(ev.chain_seed("x"), canonical_json({k: v for k, v in obj.items() if k != "chain"}))


def test_csv_cells_round_trip_and_readable_columns_mark_withheld_fields():
    _, _, records = _records(1)
    cells = ev.csv_cells(1, records[0], {"worker_id": "W001", "origin": "device"})
    row = dict(zip(ev.CSV_COLUMNS, cells))
    assert row["temperature_c"] == ev.WITHHELD_MARK and row["when"] == "2026-11-01T07:00:00+07:00" and row["fit_for_duty"] == "true"
    n, record, context = ev._record_from_csv(cells + ["chain"])
    assert (n, record) == (1, records[0]) and context["worker_id"] == "W001"


def test_clean_bundles_verify(tmp_path):
    for fmt in ("jsonl", "csv"):
        out, key = _bundle(tmp_path / fmt, fmt)
        result = ev.verify_bundle(str(out), key, workers=1)
        assert result.ok, [str(p) for p in result.problems]
        assert result.verified == 5 and result.by_kind == {"safety_check": 5}


def test_every_failure_is_named(tmp_path):
    out, key = _bundle(tmp_path)
    path = out / ev.RECORDS_JSONL
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"W001"', b'"W002"', 1)
    del lines[3]
    path.write_bytes(b"".join(lines))
    result = ev.verify_bundle(str(out), key, workers=1)
    text = "\n".join(map(str, result.problems))
    assert "records.jsonl: SHA-256" in text
    assert "records.jsonl record #2" in text and "record #4: missing" in text
    assert "holds 4 records, the manifest says 5" in text
    assert ev.main([str(out), "--export-key", crypto.b64e(key)]) == 1


def test_wrong_export_key_and_not_a_bundle(tmp_path):
    out, _ = _bundle(tmp_path)
    _, other = crypto.generate_signing_keypair()
    result = ev.verify_bundle(str(out), other, workers=1)
    assert any("is not the given export key" in p.message for p in result.problems)
    assert not ev.verify_bundle(str(tmp_path / "nothing"), None).ok


def test_canonical_strings_is_canonical_json_of_a_list_of_strings():
    for cells in ([], ["a"], ["1", 'x"y', "éạ", "\n\\", "", "\x00\x1f", "[withheld]"]):
        assert ev.canonical_strings(cells) == canonical_json(cells)
