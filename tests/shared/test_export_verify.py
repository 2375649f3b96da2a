"""The offline verifier on bundles made with shared/ alone (no server): format pieces and failure naming."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid

import pytest

from shared import crypto, envelope
from shared import export_verify as ev
from shared.canonical import canonical_json
from shared.signing import sign_document


def _records(n: int = 5, withhold=frozenset({"temperature_c"}), extra=None):
    device_private, device_public = crypto.generate_signing_keypair()
    box_private, box_public = crypto.generate_box_keypair()
    device = str(uuid.uuid4())
    out = []
    for i in range(n):
        header = envelope.make_header("k1", device, str(uuid.uuid4()), "safety_check", f"{i:05d}")
        body = {"worker_id": "W001", "taken_at": f"2026-11-0{i + 1}T07:00:00+07:00", "temperature_c": 36.5 + i / 10, "fit_for_duty": True}
        body.update(extra(i) if extra else {})
        opened = envelope.open_envelope(envelope.seal(header, body, device_private, box_public), {"k1": box_private})
        out.append(envelope.disclose(opened, device_public, withhold=withhold))
    return device, device_public, out


def _bundle(tmp_path, fmt="jsonl", n=5, extra=None, version=ev.FORMAT_VERSION):
    device, public, records = _records(n, extra=extra)
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
    elif version == 1:  # a CSV row chained over the canonical JSON of its cells, written by csv.writer
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(ev.CSV_COLUMNS)
        for i, r in enumerate(records, 1):
            cells = ev.csv_cells(i, r, {"worker_id": "W001", "origin": "device"})
            chain = ev.csv_chain_v1(chain, cells)
            w.writerow(cells + [chain])
        data = buf.getvalue().encode()
        name = ev.RECORDS_CSV
    else:
        data = (",".join(ev.CSV_COLUMNS) + "\n").encode()
        for i, r in enumerate(records, 1):
            line, chain = ev.csv_line(i, r, {"worker_id": "W001", "origin": "device"}, chain)
            data += line
        name = ev.RECORDS_CSV
    keys = json.dumps({"devices": {device: {"public_key": crypto.b64e(public), "fingerprint": crypto.fingerprint(public)}}}).encode()
    (out / name).write_bytes(data)
    (out / ev.KEYS).write_bytes(keys)
    files = {name: {"role": "records", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "records": n,
                    "chain_seed": seed, "chain_head": chain},
             ev.KEYS: {"role": "keys", "sha256": hashlib.sha256(keys).hexdigest(), "bytes": len(keys)}}
    manifest = {"format": ev.FORMAT, "format_version": version, "kind": "safety_export", "export_id": export_id,
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
    n, record, context, _tame = ev._parse_csv(cells + ["chain"])
    assert (n, record) == (1, records[0]) and context["worker_id"] == "W001"


def test_clean_bundles_verify(tmp_path):
    for fmt in ("jsonl", "csv"):
        out, key = _bundle(tmp_path / fmt, fmt)
        result = ev.verify_bundle(str(out), key, workers=1)
        assert result.ok, [str(p) for p in result.problems]
        assert result.verified == 5 and result.by_kind == {"safety_check": 5}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("notes", ["plain", "two\nlines, \"quoted\""])  # a quoted cell over two lines: the sequential reader
def test_version_1_bundles_still_verify_and_their_changes_are_named(tmp_path, fmt, notes):
    extra = lambda i: {"notes": notes}  # noqa: E731
    out, key = _bundle(tmp_path / "ok", fmt, extra=extra, version=1)
    result = ev.verify_bundle(str(out), key, workers=1)
    assert result.ok and result.verified == 5, [str(p) for p in result.problems]
    out, key = _bundle(tmp_path / "changed", fmt, extra=extra, version=1)
    name = ev.RECORDS_CSV if fmt == "csv" else ev.RECORDS_JSONL
    path = out / name
    path.write_bytes(path.read_bytes().replace(b"W001", b"W009", 2))  # the header's worker, then record 1's context
    text = "\n".join(map(str, ev.verify_bundle(str(out), key, workers=1).problems))
    assert f"{name} record #1" in text


def test_a_manifest_of_an_unknown_version_is_refused(tmp_path):
    out, key = _bundle(tmp_path)
    manifest = json.loads((out / ev.MANIFEST).read_text())
    manifest["format_version"] = 99
    (out / ev.MANIFEST).write_text(json.dumps(manifest))
    result = ev.verify_bundle(str(out), key, workers=1)
    assert not result.ok and "of a version this verifier reads (v1, v2)" in str(result.problems[0])


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


def test_a_bundle_that_cannot_be_opened_is_named_not_raised(tmp_path, monkeypatch):
    archive = tmp_path / "b.zip"
    archive.write_bytes(b"PK")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ev.zipfile, "ZipFile", refuse)  # as opening a file this user may not read does
    result = ev.verify_bundle(str(archive), None)
    assert not result.ok and "not a bundle: [Errno 13] Permission denied" in result.problems[0].message


def test_canonical_strings_is_canonical_json_of_a_list_of_strings():
    for cells in ([], ["a"], ["1", 'x"y', "éạ", "\n\\", "", "\x00\x1f", "[withheld]"]):
        assert ev.canonical_strings(cells) == canonical_json(cells)


# --- the fast paths check what the reference checks ----------------------------------------

def test_fast_base64_is_crypto_b64d():
    for text in ("", "AAAA", "AAA=", "AA==", "A===", "=", "AA=A", "AAAAA", "AA AA", "AA\nAA", "AA==\n", "ạAA=", "-_-_",
                 crypto.b64e(bytes(range(16))), crypto.b64e(bytes(range(64))), "QUJD", "QUI=", "QUJ=", None, 5, b"QUJD"):
        try:
            expected = crypto.b64d(text)
        except ValueError as exc:
            with pytest.raises(ValueError):
                ev._b64d(text)
            continue
        assert ev._b64d(text) == expected, text


def _tampered(record):
    """Copies of a disclosed record, each changed in one way."""
    out = []
    for change in ("value", "salt", "digest", "header", "signature", "float", "bigint", "nan", "shape", "salt_b64"):
        r = json.loads(json.dumps(record))
        if change == "value":
            r["fields"]["worker_id"] = "W002"
        elif change == "salt":
            r["salts"]["worker_id"] = crypto.b64e(b"\0" * 16)
        elif change == "digest":
            r["withheld"]["temperature_c"] = "0" * 64
        elif change == "header":
            r["header"]["rev"] = "99999"
        elif change == "signature":
            r["signature"] = crypto.b64e(b"\1" * 64)
        elif change == "float":
            r["fields"]["fit_for_duty"] = 1e-05
        elif change == "bigint":
            r["fields"]["fit_for_duty"] = 2**70
        elif change == "nan":
            r["fields"]["fit_for_duty"] = float("nan")
        elif change == "shape":
            r["fields"] = ["not", "a", "dict"]
        elif change == "salt_b64":
            r["salts"]["worker_id"] = r["salts"]["worker_id"].rstrip("=")
        out.append(r)
    return out


def test_fast_verify_disclosed_agrees_with_the_envelope_s():
    _device, public, records = _records(3)
    for record in records:
        assert envelope.verify_disclosed(record, public) is True
        assert ev.verify_disclosed(record, public) is True and ev.verify_disclosed(record, public, True) is True
        for bad in _tampered(record):
            assert envelope.verify_disclosed(bad, public) is False
            assert ev.verify_disclosed(bad, public) is False
            assert ev.verify_disclosed(bad, public, True) is False


def test_fast_csv_cells_are_the_reference_cells():
    _device, _public, records = _records(2)
    record = records[0]
    odd = json.loads(json.dumps(record))
    odd["fields"].update({"notes": 'a "quoted", multi\nline\r note', "symptoms": ["fever", "é"], "position": {"lat": 1e-05, "lon": 2**70}})
    for r in (record, odd):
        context = {"worker_id": "W001", "origin": "device", "team": None}
        assert ev.csv_cells(1, r, context, tame=True) == ev.csv_cells(1, r, context)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_checking_in_several_processes_names_the_same_failures(tmp_path, monkeypatch, fmt):
    out, key = _bundle(tmp_path, fmt, n=9)
    name = ev.RECORDS_JSONL if fmt == "jsonl" else ev.RECORDS_CSV
    path = out / name
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"W001", b"W002", 1)
    del lines[5]
    lines.insert(7, lines[7])
    path.write_bytes(b"".join(lines))
    monkeypatch.setattr(ev, "BATCH", 2)
    one = ev.verify_bundle(str(out), key, workers=1)
    for workers in (2, 3):
        many = ev.verify_bundle(str(out), key, workers=workers)
        assert [str(p) for p in many.problems] == [str(p) for p in one.problems]
        assert (many.records, many.verified, many.by_kind) == (one.records, one.verified, one.by_kind)
    text = "\n".join(map(str, one.problems))
    assert "SHA-256" in text and "missing" in text and "out of order or repeated" in text, text
    clean, key = _bundle(tmp_path / "clean", fmt, n=9)
    result = ev.verify_bundle(str(clean), key, workers=2)
    assert result.ok and result.verified == 9, [str(p) for p in result.problems]


def test_a_bundle_of_one_batch_starts_no_process(tmp_path, monkeypatch):
    out, key = _bundle(tmp_path, "jsonl", n=5)

    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool for 5 records")

    monkeypatch.setattr(ev, "ProcessPoolExecutor", no_pool)
    result = ev.verify_bundle(str(out), key, workers=4)
    assert result.ok and result.verified == 5


def test_batches_checked_here_and_by_workers_keep_their_order(tmp_path, monkeypatch):
    class LazyPool:
        submitted = 0

        def __init__(self, workers, initializer=None, initargs=()):
            initializer(*initargs)

        def submit(self, fn, *args):
            LazyPool.submitted += 1
            done = []

            class Future:
                def done(self):
                    return False

                def result(self):
                    if not done:
                        done.append(fn(*args))
                    return done[0]

            return Future()

        def shutdown(self, cancel_futures=False):
            pass

    out, key = _bundle(tmp_path, "csv", n=9)
    path = out / ev.RECORDS_CSV
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[4]
    path.write_bytes(b"".join(lines))
    monkeypatch.setattr(ev, "BATCH", 1)
    one = ev.verify_bundle(str(out), key, workers=1)
    monkeypatch.setattr(ev, "ProcessPoolExecutor", LazyPool)
    mixed = ev.verify_bundle(str(out), key, workers=2)
    assert 0 < LazyPool.submitted < 8
    assert [str(p) for p in mixed.problems] == [str(p) for p in one.problems]
    assert "records.csv record #4: missing" in "\n".join(map(str, one.problems))


# --- the chunked pass names what the sequential reader names ---------------------------------

def _summary(result):
    return ([str(p) for p in result.problems], result.hidden, result.records, result.verified, result.unsigned, result.by_kind)


def _assert_like_the_sequential_reader(out, key, monkeypatch, batches=(1, 3, 2000), workers=(1, 2)):
    with monkeypatch.context() as m:
        m.setattr(ev, "_verify_records", ev._verify_records_sequential)
        expected = _summary(ev.verify_bundle(str(out), key, workers=1))
    for batch in batches:
        for w in workers if batch < 2000 else (1,):
            with monkeypatch.context() as m:
                m.setattr(ev, "BATCH", batch)
                assert _summary(ev.verify_bundle(str(out), key, workers=w)) == expected, (batch, w)
    return expected


def _notes(i):
    # shown notes with commas, quotes and line ends (one that ends like a CSV row: a comma and 64 hex digits)
    return {"notes": [None, 'a "quoted", multi\nline note', "x," + "ab" * 32 + "\nmore", "plain"][i % 4]}


_JSONL_CHANGES = {
    "value": lambda ls: ls.__setitem__(2, ls[2].replace(b"W001", b"W002", 1)),
    "delete": lambda ls: ls.__delitem__(5),
    "repeat": lambda ls: ls.insert(7, ls[7]),
    "swap": lambda ls: ls.__setitem__(slice(3, 5), [ls[4], ls[3]]),
    "blank": lambda ls: ls.insert(3, b"\n"),
    "garbage": lambda ls: ls.__setitem__(4, b"not json\n"),
    "no chain": lambda ls: ls.__setitem__(4, ls[4].replace(b'{"chain":"', b'{"chaim":"', 1)),
    "crlf": lambda ls: ls.__setitem__(2, ls[2][:-1] + b"\r\n"),
    "no last line end": lambda ls: ls.__setitem__(-1, ls[-1][:-1]),
    "cut short": lambda ls: ls.__setitem__(-1, ls[-1][:40]),
    "small float": lambda ls: ls.__setitem__(1, ls[1].replace(b'"fit_for_duty":true', b'"fit_for_duty":1e-05', 1)),
    "big int": lambda ls: ls.__setitem__(1, ls[1].replace(b'"fit_for_duty":true', b'"fit_for_duty":123456789012345678901234567890', 1)),
    "n as text": lambda ls: ls.__setitem__(2, ls[2].replace(b'"n":3,', b'"n":"3",', 1)),
    "extra key": lambda ls: ls.__setitem__(2, ls[2].replace(b'"n":3,', b'"n":3,"x":{"y":0.00001},', 1)),
    "no signature": lambda ls: ls.__setitem__(6, ls[6].replace(b'"signature":"', b'"signature":null,"s":"', 1)),
    "key": lambda ls: ls.__setitem__(6, ls[6].replace(b'"key":"', b'"key":"0', 1)),
}


_CSV_CHANGES = {
    "value": lambda ls: ls.__setitem__(3, ls[3].replace(b"W001", b"W002", 1)),
    "delete": lambda ls: ls.__delitem__(5),
    "repeat": lambda ls: ls.insert(7, ls[7]),
    "swap": lambda ls: ls.__setitem__(slice(3, 5), [ls[4], ls[3]]),
    "blank": lambda ls: ls.insert(3, b"\n"),
    "header": lambda ls: ls.__setitem__(0, ls[0].replace(b"kind", b"kinds", 1)),
    "no header": lambda ls: ls.__delitem__(0),
    "readable": lambda ls: ls.__setitem__(2, ls[2].replace(b",true,", b",false,", 1)),
    "n 01": lambda ls: ls.__setitem__(2, b"0" + ls[2]),
    "stray quote": lambda ls: ls.__setitem__(2, ls[2].replace(b"W001", b'W0"01', 1)),
    "open quote": lambda ls: ls.__setitem__(2, ls[2].replace(b"W001", b'"W001', 1)),
    "crlf": lambda ls: ls.__setitem__(2, ls[2][:-1] + b"\r\n"),
    "no last line end": lambda ls: ls.__setitem__(-1, ls[-1][:-1]),
    "cut short": lambda ls: ls.__setitem__(-1, ls[-1][:40]),
    "columns": lambda ls: ls.__setitem__(4, ls[4].replace(b",", b",x,", 1)),
    "json spacing": lambda ls: ls.__setitem__(4, ls[4].replace(b'{""fit_for_duty"":', b'{ ""fit_for_duty"":', 1)),
}


def _records_of(fmt: str, data: bytes) -> list[bytes]:
    """The records file as its rows with their line ends (a CSV row may span lines: a quoted note holds line ends)."""
    if fmt == "jsonl":
        return data.splitlines(keepends=True)
    rows, row = [], b""
    for line in data.split(b"\n")[:-1]:
        row += line + b"\n"
        if row.count(b'"') % 2 == 0:
            rows.append(row)
            row = b""
    assert len(rows) == 10 and not row
    return rows


@pytest.mark.parametrize("fmt, change", [("jsonl", c) for c in sorted(_JSONL_CHANGES)] + [("csv", c) for c in sorted(_CSV_CHANGES)])
def test_the_chunked_pass_names_what_the_sequential_reader_names(tmp_path, monkeypatch, fmt, change):
    out, key = _bundle(tmp_path, fmt, n=9, extra=_notes)
    path = out / (ev.RECORDS_JSONL if fmt == "jsonl" else ev.RECORDS_CSV)
    rows = _records_of(fmt, path.read_bytes())
    (_JSONL_CHANGES if fmt == "jsonl" else _CSV_CHANGES)[change](rows)
    path.write_bytes(b"".join(rows))
    problems = _assert_like_the_sequential_reader(out, key, monkeypatch)[0]
    assert problems


def test_chunked_csv_with_multiline_notes_verifies_and_a_cut_inside_a_cell_reads_again(tmp_path, monkeypatch):
    out, key = _bundle(tmp_path, "csv", n=9, extra=_notes)
    assert _assert_like_the_sequential_reader(out, key, monkeypatch)[:4] == ([], 0, 9, 9)
    assert ev._check_chunk((out / ev.RECORDS_CSV).read_bytes().split(b"more")[0], ev.CSV_V2, True, 9) is None
    monkeypatch.setattr(ev, "_csv_cut", lambda block: block.rfind(b"\n") + 1)  # cut at any line end
    assert _assert_like_the_sequential_reader(out, key, monkeypatch)[:4] == ([], 0, 9, 9)
    path = out / ev.RECORDS_CSV
    path.write_bytes(path.read_bytes().replace(b"W001", b"W002", 2))
    _assert_like_the_sequential_reader(out, key, monkeypatch)


def test_an_empty_records_file_is_named(tmp_path, monkeypatch):
    for fmt, name in (("csv", ev.RECORDS_CSV), ("jsonl", ev.RECORDS_JSONL)):
        out, key = _bundle(tmp_path / fmt, fmt, n=3)
        (out / name).write_bytes(b"")
        problems = _assert_like_the_sequential_reader(out, key, monkeypatch)[0]
        assert any("holds 0 records" in p for p in problems)


def test_a_chain_value_that_is_not_ascii_is_named_not_raised(tmp_path):
    for fmt, name in (("csv", ev.RECORDS_CSV), ("jsonl", ev.RECORDS_JSONL)):
        out, key = _bundle(tmp_path / fmt, fmt, n=5)
        path = out / name
        lines = path.read_bytes().splitlines(keepends=True)
        if fmt == "csv":
            lines[2] = lines[2][:-2] + "é\n".encode()
        else:
            lines[1] = lines[1][:10] + "é".encode() + lines[1][12:]
        path.write_bytes(b"".join(lines))
        text = "\n".join(map(str, ev.verify_bundle(str(out), key, workers=1).problems))
        assert "record #3" in text and "chain value does not follow" in text, text


@pytest.mark.parametrize("change", [
    {"files": []}, {"counts": "x"}, {"export_key": "x"}, {"withheld": 5}, {"withheld": {"by_kind": {"safety_check": 5}}},
    {"exported_by": "x"}, "records: 'x'", "chain_seed: 5", "sha256: None", "bytes: 'x'",
])
def test_a_manifest_with_fields_of_the_wrong_type_is_named_not_raised(tmp_path, change):
    out, key = _bundle(tmp_path)
    doc = json.loads((out / ev.MANIFEST).read_text())
    if isinstance(change, dict):
        doc.update(change)
    else:
        field, value = change.split(": ")
        doc["files"][ev.RECORDS_JSONL][field] = eval(value)  # noqa: S307 - a literal from the list above
    (out / ev.MANIFEST).write_text(json.dumps(doc))
    result = ev.verify_bundle(str(out), key, workers=1)
    assert not result.ok
    assert any(p.where == ev.MANIFEST and "not a well-formed manifest" in p.message for p in result.problems), result.problems
    assert "FAILED" in ev.render(result, str(out))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_damaged_bytes_are_named_not_raised(tmp_path, fmt):
    # A byte flipped or a file cut short, in a folder or inside a zip (a bad CRC, a broken deflate
    # stream, a truncated archive): verify-export names what it could not read or what failed; it never
    # stops with a traceback.
    import random
    import zipfile

    out, key = _bundle(tmp_path / "clean", fmt=fmt, n=30)
    rng = random.Random(11)
    for name in sorted(p.name for p in out.iterdir()):
        data = (out / name).read_bytes()
        for i in range(12):
            damaged = bytearray(data)
            if i % 3 == 0:
                del damaged[rng.randrange(len(damaged)):]
            else:
                damaged[rng.randrange(len(damaged))] = 0xFF  # never valid UTF-8
            folder = tmp_path / f"{name}-{i}"
            folder.mkdir()
            for other in out.iterdir():
                (folder / other.name).write_bytes(bytes(damaged) if other.name == name else other.read_bytes())
            result = ev.verify_bundle(str(folder), key, workers=1)
            assert not result.ok and result.problems, (name, i)
            ev.render(result, str(folder))
    archive = tmp_path / "clean.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for p in out.iterdir():
            z.write(p, p.name)
    data = archive.read_bytes()

    def every_member(change) -> bytearray:  # ``change`` applied to each member's central directory entry
        damaged, at = bytearray(data), data.find(b"PK\x01\x02")
        while at != -1:
            change(damaged, at)
            at = data.find(b"PK\x01\x02", at + 4)
        return damaged

    # the flips that once slipped through, made on purpose: the "encrypted" flag (zipfile: RuntimeError), a
    # compression method it does not know and a version it does not read (NotImplementedError)
    targeted = [every_member(lambda d, at: d.__setitem__(at + 8, d[at + 8] | 1)),
                every_member(lambda d, at: d.__setitem__(at + 10, 99)),
                every_member(lambda d, at: d.__setitem__(at + 6, 235))]
    named = 0
    for i in range(40 + len(targeted)):
        damaged = bytearray(data)
        if i >= 40:
            damaged = targeted[i - 40]
        elif i % 4 == 0:
            del damaged[rng.randrange(len(damaged)):]
        else:
            damaged[rng.randrange(len(damaged))] ^= 0xFF
        path = tmp_path / f"damaged-{i}.zip"
        path.write_bytes(bytes(damaged))
        result = ev.verify_bundle(str(path), key, workers=1)  # a flip in a zip's dates or padding changes nothing checked
        said = any("damaged" in p.message or "not a bundle" in p.message for p in result.problems)
        named += said
        ev.render(result, str(path))
        assert said or i < 40, result.problems
    assert named >= 10  # most flips land in compressed data: the damage is named as such
