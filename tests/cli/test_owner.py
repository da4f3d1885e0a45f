"""Commands typed while ``surmesure serve`` owns the DuckDB file run in the server: the same
output and exit codes as without it, no lock traceback; the local channel opens with the owner
file's token only; the owner file is private and goes with the server."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from api_helpers import free_port, start_server

from conftest import copy_store
from surmesure.api.local import HEADER
from surmesure.store import open_store
from surmesure.store.owner import current, owner_path


def _cli(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SURMESURE_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "surmesure.cli.main", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small world's CSV files and a store file with its customers, made once."""
    folder = tmp_path_factory.mktemp("owner_world")
    out = folder / "world"
    generated = _cli("duckdb:///unused.duckdb", folder, "generate", "--customers", "300",
                     "--out", str(out))  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    url = f"duckdb:///{folder / 'store.duckdb'}"
    imported = _cli(url, folder, "import", "customers", str(out / "customers_crm.csv"))
    assert imported.returncode == 0, imported.stderr
    return folder


@pytest.fixture
def world(built: Path, tmp_path: Path) -> tuple[str, Path]:
    """A copy of the small store file (people, orders, products), and its CSV files."""
    return copy_store(built / "store.duckdb", tmp_path), built / "world"


def test_commands_run_in_the_server_that_owns_the_file(
    world: tuple[str, Path], tmp_path: Path
) -> None:
    url, files = world
    alone = {
        "status": _cli(url, tmp_path, "status", "--json"),
        "missing": _cli(url, tmp_path, "person", "show", "999999999"),
    }
    port = free_port()
    server = start_server(url, port, tmp_path / "server.log", {}, "--dev")
    try:
        found = current(url)
        assert found is not None and found.pid == server.pid and found.port == port
        path = owner_path(url)
        assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
        served = {
            "status": _cli(url, tmp_path, "status", "--json"),
            "missing": _cli(url, tmp_path, "person", "show", "999999999"),
        }
        # a relative file name means what it means where the command was typed
        stock = _cli(url, files, "import", "products", "products.csv")
        key = _cli(url, tmp_path, "key", "create", "ops", "--scope", "read")
        keys = _cli(url, tmp_path, "key", "list", "--json")
        second = _cli(url, tmp_path, "serve", "--dev", "--port", str(free_port()))
        admin_key = _cli(url, tmp_path, "key", "create", "root", "--scope", "admin", "--json")
        token = orjson.loads(admin_key.stdout)["key"]
        forged = httpx.post(
            f"http://127.0.0.1:{port}/v1/local/run",
            json={"argv": ["status"], "cwd": str(tmp_path)},
            headers={HEADER: "guess"},
            auth=(token, ""),
        )
        refused = httpx.post(
            f"http://127.0.0.1:{port}/v1/local/run",
            json={"argv": ["demo", "--out", str(tmp_path)], "cwd": str(tmp_path)},
            headers={HEADER: found.token},
        )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert served["status"].returncode == 0, served["status"].stderr
    assert orjson.loads(served["status"].stdout) == orjson.loads(alone["status"].stdout)
    assert served["missing"].returncode == alone["missing"].returncode == 2
    assert served["missing"].stderr == alone["missing"].stderr
    assert stock.returncode == 0, stock.stderr + stock.stdout
    assert key.returncode == 0 and "ops" in key.stdout
    assert [k["name"] for k in orjson.loads(keys.stdout)["keys"]] == ["ops"]
    for result in (*served.values(), stock, key, keys, second):
        assert "Traceback" not in result.stderr + result.stdout
    assert second.returncode == 2 and "already owns" in second.stderr
    assert forged.status_code == 401  # an admin API key does not open the local channel
    assert refused.status_code == 400
    assert not path.exists() and current(url) is None
    store = open_store(url)  # the file is free again, with what the server's commands wrote
    try:
        with store.connect() as conn:
            products = conn.exec_driver_sql("SELECT count(*) FROM products").scalar_one()
        assert products > 0
    finally:
        store.dispose()


def test_a_held_file_is_a_clear_error(world: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = world
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({url.split(':///', 1)[1]!r}); "
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = _cli(url, tmp_path, "status")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert f"PID {holder.pid}" in result.stderr and "Traceback" not in result.stderr
