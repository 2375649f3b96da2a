"""The ``fieldwatch-device`` command line, in-process against the fake server (the real server: test_device_e2e)."""
from __future__ import annotations

import json

import pytest

from tests.mobile.core.conftest import PIN
from tests.mobile.core.fakeserver import BASE_URL, session_for
from mobile import device_cli
from mobile.core.services import Device

FAST = {"scrypt_n": 2**4, "sleep": lambda s: None}


@pytest.fixture
def cli(fake, tmp_path, make_settings, capsys):
    """Run the CLI on an enrolled device dir; returns (exit code, parsed JSON or text)."""
    settings = make_settings("cli")
    Device(settings, session_for(fake)).enrol(BASE_URL, fake.new_code(), "cli phone", PIN)

    def run(*argv, json_out=True, pin=PIN):
        base = ["--data-dir", str(settings.data_dir)] + (["--json"] if json_out else []) + (["--pin", pin] if pin else [])
        code = device_cli.main([*base, *argv], session=session_for(fake), settings=FAST)
        out, err = capsys.readouterr()
        return code, (json.loads(out) if json_out and out.strip() else out + err)
    return run


def test_record_and_sync_round_trip(cli, fake):
    code, saved = cli("check-in", "--status", "sos", "--lat", "10.5", "--lon", "106.7")
    assert code == 0 and saved["kind"] == "check_in" and saved["priority"] == 0
    code, saved = cli("safety-check", "--temperature", "36.4", "--ppe", "mask", "--ppe", "helmet", "--fit")
    assert code == 0
    code, saved = cli("site-status", "--site", "S-001", "--state", "down", "--power", "battery", "--cause", "flood")
    assert code == 0
    code, outbox = cli("outbox")
    assert code == 0 and [i["kind"] for i in outbox["items"]] == ["check_in", "safety_check", "site_status"]
    code, result = cli("sync")
    assert code == 0 and result["accepted"] == 3 and result["ok"]
    code, receipts = cli("receipts")
    assert code == 0 and len(receipts[0]["items"]) == 3
    code, status = cli("status")
    assert status["today"]["health_check_done"] and status["sync"]["pending_total"] == 0


def test_validation_error_exits_2_with_field_messages(cli):
    code, out = cli("safety-check", "--temperature", "50", "--exposure", "maybe", json_out=False)
    assert code == 2
    assert "temperature_c" in out and "between 30 and 45" in out and "exposure" in out
    code, err = cli("safety-check", "--temperature", "50")
    assert code == 2 and set(err["error"]["errors"]) == {"temperature_c"}


def test_wrong_pin_exits_3(cli):
    code, err = cli("status", pin="0000")
    assert code == 3 and err["error"]["reason"] == "wrong_pin"


def test_missing_pin_exits_3(cli, monkeypatch):
    monkeypatch.delenv(device_cli.PIN_ENV, raising=False)
    code, err = cli("status", pin=None)
    assert code == 3 and err["error"]["reason"] == "pin_required"


def test_pin_from_the_environment(cli, monkeypatch):
    monkeypatch.setenv(device_cli.PIN_ENV, PIN)
    assert cli("status", pin=None)[0] == 0


def test_jobs_from_the_command_line(cli, fake):
    job = fake.add_job(status="assigned")
    cli("sync")
    code, jobs = cli("job", "list")
    assert code == 0 and jobs[0]["id"] == job
    code, err = cli("job", "update", job, "--to", "on_site")
    assert code == 1 and err["error"]["reason"] == "transition_not_allowed"
    code, updated = cli("job", "update", job, "--to", "acknowledged", "--note", "coming", "--part", "fuse:2")
    assert code == 0 and updated["status"] == "acknowledged" and updated["parts"] == [{"name": "fuse", "quantity": 2}]
    code, text = cli("job", "show", job, json_out=False)
    assert code == 0 and "acknowledged" in text and "coming" in text


def test_bad_part_is_a_usage_error(cli):
    with pytest.raises(SystemExit) as exit_:
        cli("job", "update", "x", "--part", "fuse")
    assert exit_.value.code == 2


def test_sync_failure_exits_non_zero(cli, fake):
    fake.replace_keys_unendorsed()
    code, err = cli("sync")
    assert code == 7 and err["error"]["reason"] == "server_key_changed"
    fake.drop("/api/v1/keys", times=100)
    code, err = cli("sync")
    assert code == 5 and err["error"]["reason"] == "network_error"


def test_not_enrolled_exits_4(tmp_path, capsys):
    code = device_cli.main(["--data-dir", str(tmp_path / "empty"), "--json", "--pin", PIN, "status"])
    assert code == 3 or code == 4
    assert json.loads(capsys.readouterr().out)["error"]["reason"] in ("locked", "not_enrolled")


def test_a_data_folder_that_cannot_be_made_is_refused_with_a_sentence(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    code = device_cli.main(["--data-dir", str(tmp_path / "a-file" / "phone"), "--json", "--pin", PIN, "status"])
    assert code == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["reason"] == "data_dir_unusable" and "cannot use the data folder" in error["message"]


def test_plain_output_is_readable(cli):
    code, text = cli("check-in", json_out=False)
    assert code == 0 and text.startswith("saved check in")
    code, text = cli("sync", json_out=False)
    assert code == 0 and "sync ok: sent 1 (1 accepted" in text
    code, text = cli("sites", json_out=False)
    assert "S-001" in text and "CODE" in text


def test_fleet(fake, tmp_path, capsys):
    codes = tmp_path / "codes.txt"
    codes.write_text("\n".join(fake.new_code() for _ in range(3)) + "\n# spare\n")
    job = fake.add_job(status="assigned")
    code = device_cli.main(["--data-dir", str(tmp_path / "fleet"), "--json", "fleet", "--devices", "3", "--records",
                            "12", "--server", BASE_URL, "--code-file", str(codes), "--seed", "7", "--workers", "1"],
                           session=session_for(fake), settings=FAST)
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    totals = report["totals"]
    assert totals["devices"] == 3 and totals["failed"] == 0 and totals["records"] >= 30
    assert totals["accepted"] + totals["rejected"] >= totals["records"]
    assert len(fake.devices) == 3 and fake.state_of(job) is not None


def test_fleet_needs_enough_codes(fake, tmp_path, capsys):
    codes = tmp_path / "codes.txt"
    codes.write_text("onlyone\n")
    code = device_cli.main(["--data-dir", str(tmp_path / "f"), "fleet", "--devices", "2", "--records", "1",
                            "--server", BASE_URL, "--code-file", str(codes)], session=session_for(fake))
    assert code == 1 and "enrolment codes" in capsys.readouterr().err
