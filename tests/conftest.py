"""Shared fixtures: a store on each real backend, and the public datasets.

``store`` runs a test on DuckDB (a fresh file) and on the PostgreSQL server at 127.0.0.1:5432
(one database for the session, emptied before each test). ``SURMESURE_TEST_POSTGRES_URL`` points
at another server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import Result

from surmesure.config import get_settings
from surmesure.store import Store, open_store, schema

# the keys every test process runs with (through the environment, so that the settings of a
# test's server and those a service reads itself agree); a server refuses the development ones
os.environ.setdefault("SURMESURE_SUPPRESSION_KEY", "test-suppression-key-not-the-dev-one")
os.environ.setdefault("SURMESURE_ENCRYPTION_KEY", "test-encryption-key-not-the-dev-one")

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("SURMESURE_DATASETS_DIR", ROOT.parent / "shared" / "datasets"))
PG_ADMIN_URL = os.environ.get(
    "SURMESURE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def dataset(relative: str) -> Path:
    """Path of a file under ../shared/datasets; skipped when absent, except when
    ``SURMESURE_REQUIRE_REAL_DATA=1`` (as on CI), where a missing file fails the test."""
    path = DATASETS / relative
    if not path.exists():
        if os.environ.get("SURMESURE_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"dataset {path} is missing and SURMESURE_REQUIRE_REAL_DATA=1")
        pytest.skip(f"dataset {path} not found")
    return path


def invoke(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> Result:
    """Run the ``surmesure`` command with ``args`` on the store at ``url``."""
    from typer.testing import CliRunner

    from surmesure.cli.main import app

    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()


def invoke_json(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> dict[str, Any]:
    """The JSON object a command prints with ``--json``; the command must succeed."""
    result = invoke(monkeypatch, url, *args, "--json")
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = orjson.loads(result.stdout)
    return payload


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    name = f"surmesure_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    open_store(url).dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty(store: Store) -> None:
    with store.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(table.delete())
        for seq in schema.metadata._sequences.values():
            conn.execute(sa.text(f"ALTER SEQUENCE {seq.name} RESTART WITH 1"))


@pytest.fixture
def duckdb_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"duckdb:///{tmp_path / 'store.duckdb'}")
    yield store
    store.dispose()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    store = open_store(postgres_url)
    _empty(store)
    yield store
    store.dispose()


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Store:
    """The contract fixture: every test using it runs on DuckDB and on PostgreSQL."""
    name = "duckdb_store" if request.param == "duckdb" else "postgres_store"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def opened_rows(
    store: Store, table: str, where: str = "TRUE", **params: Any
) -> list[dict[str, Any]]:
    """The rows of ``table`` matching ``where``, as readers see them: sealed values opened
    (:mod:`surmesure.protect.atrest`), JSON columns decoded."""
    from surmesure.protect import atrest
    from surmesure.unify.profile import decode_json

    t = schema.metadata.tables[table]
    with store.connect() as conn:
        found = [
            {
                k: decode_json(v) if isinstance(t.c[k].type, sa.JSON) else v
                for k, v in r._mapping.items()
            }
            for r in conn.execute(sa.select(t).where(sa.text(where)), params)
        ]
        atrest.open_rows(conn, t, found)
    return found
