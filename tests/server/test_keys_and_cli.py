import json

from server.cli import main
from server.services.keys import endorsement_message, load_keyring, rotate_keys
from shared import crypto
from tests.server.conftest import check_in


def test_rotation_keeps_old_keys_and_endorses_the_new_one(app, phone, tmp_path):
    app.config["KEYS_DIR"] = str(tmp_path / "keys")  # a key file of this test's own
    from server.services.keys import init_keys

    init_keys(app.config["KEYS_DIR"])
    old = load_keyring(app.config["KEYS_DIR"])
    phone.server_keys = phone.client.get("/api/v1/keys").get_json()["keys"]
    sealed_to_old = phone.seal("check_in", check_in())
    new_kid = rotate_keys(app.config["KEYS_DIR"])
    keys = phone.client.get("/api/v1/keys").get_json()["keys"]
    assert [k["current"] for k in keys] == [False, True] and keys[1]["kid"] == new_kid
    old_sign = crypto.b64d(keys[0]["sign_public"])
    assert crypto.verify(old_sign, crypto.b64d(keys[1]["endorsement"]), endorsement_message(keys[1]))
    assert old.current_kid != new_kid
    # an envelope sealed to the old key still opens; the receipt is signed by the new key
    r = phone.push([sealed_to_old]).get_json()
    assert r["results"][0]["status"] == "accepted" and r["receipt"]["kid"] == new_kid


def test_stats_json_and_enrol_code_cli(app, org, phone):
    phone.push([phone.seal("check_in", check_in()), {"h": "bad"}])
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["records_by_kind"] == {"check_in": 1}
    assert data["quarantine_by_reason"] == {"malformed_envelope": 1}
    assert data["change_feed"]["count"] == 1 and data["devices"][0]["revisions"] == 1
    result = runner.invoke(main, ["enrol-code", "create", "--team", "HN-T1", "--ttl", "2h"])
    assert result.exit_code == 0 and "team HN-T1" in result.output
    result = runner.invoke(main, ["enrol-code", "create", "--team", "NOPE"])
    assert result.exit_code == 2 and "no team 'NOPE'" in result.output


def test_commands_on_a_database_without_tables_say_to_upgrade(tmp_path, keys_dir):
    from server import create_app

    empty = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "KEYS_DIR": keys_dir, "TESTING": True})
    for command in (["stats"], ["proofs", "backfill", "--quiet"]):
        result = empty.test_cli_runner().invoke(main, command)
        assert result.exit_code == 2, (command, result.output)
        assert "run `fieldwatch db upgrade` first" in result.output
