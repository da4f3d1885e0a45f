"""Shared fixtures: a store on each real backend, and the public datasets.

``store`` runs a test on DuckDB (a fresh file) and on the PostgreSQL server at 127.0.0.1:5432
(one database for the session, emptied before each test). ``SURMESURE_TEST_POSTGRES_URL`` points
at another server.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# send journals, films and scene clips of this test process's own (the defaults are folders of
# the working directory, which test processes running side by side would share; a worker of
# pytest-xdist inherits its parent's environment, so a folder is made again in each process that
# did not make it); a test sending or rendering for real in a folder of its own sets it
for _variable, _prefix in (
    ("SURMESURE_OUTBOX_DIR", "surmesure-outbox-"),
    ("SURMESURE_VIDEO_DIR", "surmesure-videos-"),
):
    _owner = f"{_variable}_OWNER"
    if _variable not in os.environ or os.environ.get(_owner, str(os.getpid())) != str(os.getpid()):
        os.environ[_variable] = tempfile.mkdtemp(prefix=_prefix)
        os.environ[_owner] = str(os.getpid())
        atexit.register(shutil.rmtree, os.environ[_variable], True)

# Rich fixes a console's width when it is made if COLUMNS is set then (as in a shell that
# exports it, or a pytest-xdist worker): tests that print wide tables set COLUMNS themselves
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

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


@contextmanager
def fresh_postgres(prefix: str = "surmesure_test") -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    with fresh_postgres() as url:
        open_store(url).dispose()
        yield url


def _empty(store: Store) -> None:
    with store.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(table.delete())
        for seq in schema.metadata._sequences.values():
            conn.execute(sa.text(f"ALTER SEQUENCE {seq.name} RESTART WITH 1"))


@pytest.fixture(scope="session")
def migrated_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty DuckDB store file, migrated to the head once for the session: a test's store is
    a copy of it (copying takes 0.03 s of processor time, running the migrations 0.4 s)."""
    path = tmp_path_factory.mktemp("migrated") / "store.duckdb"
    open_store(f"duckdb:///{path}").dispose()
    return path


@pytest.fixture
def duckdb_store(migrated_duckdb: Path, tmp_path: Path) -> Iterator[Store]:
    """A fresh DuckDB store, ``store.duckdb`` in the test's ``tmp_path``."""
    store = open_store(copy_store(migrated_duckdb, tmp_path))
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


ONLINE_RETAIL = "online_retail_II/online_retail_II_2009_2010.csv.gz"


@pytest.fixture(scope="session")
def online_retail(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A DuckDB store file holding the real Online Retail II file imported once with the
    ``online-retail`` preset (25 s), and what the import reported. Tests read it or
    :func:`copy_store` it; none writes to it."""
    from surmesure.collect.importer import import_file

    def build(folder: Path) -> Any:
        store = open_store(f"duckdb:///{folder / 'store.duckdb'}")
        try:
            return import_file(store, "orders", dataset(ONLINE_RETAIL), preset="online-retail")
        finally:
            store.dispose()

    folder, result = once_per_run(tmp_path_factory, "online_retail", build)
    return folder / "store.duckdb", result


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Any]
) -> tuple[Path, Any]:
    """The folder ``name`` that ``build`` filled, and what it returned, made once for the whole
    run: test processes running side by side (pytest-xdist workers) share it, the first to come
    building it while the others wait on a lock. What is built is only read afterwards."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder, done = root / name, root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            done.write_bytes(pickle.dumps(build(folder)))
        return folder, pickle.loads(done.read_bytes())


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``surmesure demo --json`` run once, in a process of its own as ``make demo`` runs it (so
    that its exit status counts too), on a small world: the folder holding its store
    (``store.duckdb``) and its files (``world/``), and the report it printed. Tests read it
    or :func:`copy_demo` it; none writes to it."""
    import subprocess
    import sys

    from world_helpers import SMALL  # the demo-world tests' size; they alone ask for it

    def build(folder: Path) -> dict[str, Any]:
        command = [sys.executable, "-m", "surmesure.cli.main", "demo", "--customers", str(SMALL),
                   "--out", str(folder / "world"), "--json"]  # fmt: skip
        env = {
            **os.environ,
            "SURMESURE_DATABASE_URL": f"duckdb:///{folder / 'store.duckdb'}",
            "SURMESURE_VIDEO_DIR": str(folder / "videos"),  # outlives the process that built it
        }
        done = subprocess.run(command, env=env, capture_output=True, timeout=900)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        report: dict[str, Any] = orjson.loads(done.stdout)
        return report

    return once_per_run(tmp_path_factory, "demo_world", build)


def copy_demo(folder: Path, into: Path, files: str = "world") -> str:
    """A copy of the demo world ``folder`` (:func:`demo_world`) in ``into``: its files in
    ``into/files``; the URL of the copy of its store."""
    shutil.copytree(folder / "world", into / files)
    return copy_store(folder / "store.duckdb", into)


def copy_store(path: Path, folder: Path) -> str:
    """The URL of a copy of the DuckDB store file ``path`` in ``folder``."""
    copy = folder / path.name
    shutil.copyfile(path, copy)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    return f"duckdb:///{copy}"


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


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One small local Spark session for every Spark test of the run (it starts in 6-8 s).

    Its JVM compiles with the quick compiler only and collects garbage on one thread: the tests
    send many tiny queries, for which the optimizing compiler's work never pays back (with it,
    the Spark tests take twice the processor time)."""
    from surmesure.derive.spark import local_session

    previous = os.environ.get("JAVA_TOOL_OPTIONS")
    os.environ["JAVA_TOOL_OPTIONS"] = " ".join(
        filter(None, [previous, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
    )
    try:
        session = local_session(cores=1, shuffle_partitions=1)
    finally:  # only this JVM: a server or command a test starts keeps the usual one
        if previous is None:
            del os.environ["JAVA_TOOL_OPTIONS"]
        else:
            os.environ["JAVA_TOOL_OPTIONS"] = previous
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def console_world(
    demo_world: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Store]]:
    """``(base URL, store)`` of the console serving a copy of the small demo world, with one
    user per role (``tests/console/console_helpers.py``), for one test module: a server's
    dispatcher hands its changes to every registered subscriber, so none may outlive the
    module that started it."""
    from api_helpers import serving
    from console_helpers import make_users

    folder, _ = demo_world
    store = open_store(copy_demo(folder, tmp_path_factory.mktemp("console")))
    make_users(store)
    try:
        with serving(store) as (base, _app):
            yield base, store
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright, for one test module: Playwright's synchronous
    API keeps an event loop running in this thread while it lives, and later tests that start
    their own (``asyncio.run``) could not."""
    from console_helpers import browser

    yield from browser()
