"""No log line carries a person's data, even when the store fails mid-request.

A store failure is forced while a batch of identifying messages is written: the identifiers
table is renamed or dropped (the look-up statement fails with the identifiers as its parameters),
and on PostgreSQL a check constraint refuses the insert (the server's error quotes the failing
row). The client gets the usual 500 body; the server's log, everything the process printed
and every record of the logging system, names the route and the exception's type, never a
value of the batch, a statement's parameters or the server's files in the answer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, server_key, serving

from surmesure.store import Store

SECRETS = ("victim@example.com", "C-SECRET-42", "device-SECRET-7", "Rosalind")


def batch() -> dict[str, object]:
    return {
        "batch": [
            {
                "type": "identify",
                "messageId": "m-1",
                "userId": SECRETS[1],
                "anonymousId": SECRETS[2],
                "traits": {"email": SECRETS[0], "firstName": SECRETS[3]},
            }
        ]
    }


def sabotages(store: Store) -> list[tuple[str, str | None]]:
    """(statement that breaks the store, statement that repairs it); the DuckDB file is the
    test's own, the PostgreSQL database is shared by the session."""
    if store.is_duckdb:
        return [("DROP TABLE identifiers", None), ("DROP TABLE traits", None)]
    return [
        (
            "ALTER TABLE identifiers RENAME TO identifiers_gone",
            "ALTER TABLE identifiers_gone RENAME TO identifiers",
        ),
        (
            "ALTER TABLE identifiers ADD CONSTRAINT short_values CHECK (length(value) < 5)",
            "ALTER TABLE identifiers DROP CONSTRAINT short_values",
        ),
    ]


@pytest.mark.parametrize("which", [0, 1])
def test_a_store_failure_logs_no_personal_value(
    store: Store,
    which: int,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    breaking, repair = sabotages(store)[which]
    with store.begin() as conn:
        conn.execute(sa.text(breaking))
    try:
        caplog.set_level(logging.DEBUG)
        with serving(store) as (url, _):
            response = httpx.post(f"{url}/v1/batch", json=batch(), auth=(WRITE_KEY, ""))
    finally:
        if repair is not None:
            with store.begin() as conn:
                conn.execute(sa.text(repair))
    caplog.set_level(logging.DEBUG)
    printed = capfd.readouterr()
    logged = caplog.text + printed.out + printed.err
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
    assert "unexpected error on POST /v1/batch" in logged  # the failure was logged
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in response.text
    assert "[parameters:" not in logged and "Failing row" not in logged
    assert "/src/" not in response.text and "SELECT" not in response.text


def test_an_error_names_no_file_of_the_server(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "server-templates"
    folder.mkdir()
    (folder / "home.yaml").write_text("name: home\nplacement: [broken\n")
    decide = server_key(store, "decide")
    with serving(store, templates_dir=folder) as (url, _):
        response = httpx.post(
            f"{url}/v1/decide", json={"placement": "home", "person_id": 1}, auth=(decide, "")
        )
    assert 400 <= response.status_code < 500
    assert "home.yaml" in response.text  # the file is named, as its operator knows it
    assert str(tmp_path) not in response.text
