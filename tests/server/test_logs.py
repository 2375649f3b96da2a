"""Health data never reaches the logs: a database error that ends in a 500 is logged with its traceback,
and the statement's values (which may be a temperature or symptoms) are not in it."""
from __future__ import annotations

import logging

from sqlalchemy import text

from server.extensions import db

SECRET = "fever 39.8 C, loss of smell"


def test_an_unhandled_database_error_is_logged_without_the_statements_values(app, client, caplog):
    def fails():
        db.session.execute(text("INSERT INTO no_such_table (notes) VALUES (:notes)"), {"notes": SECRET})

    app.add_url_rule("/test-only/fails", view_func=fails)
    with caplog.at_level(logging.ERROR, logger="server.errors"):
        r = client.get("/test-only/fails")
    assert r.status_code == 500 and SECRET not in r.get_data(as_text=True)
    assert "unhandled error on GET /test-only/fails" in caplog.text and "no_such_table" in caplog.text  # the traceback is there
    assert SECRET not in caplog.text and "SQL parameters hidden" in caplog.text
