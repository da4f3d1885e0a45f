"""``surmesure recommend`` for one person and for everyone, on a DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from reco_world import AS_OF, load_world, person_id
from typer.testing import CliRunner

from surmesure.cli.recommend import register
from surmesure.config import get_settings
from surmesure.decide.recommend import model, service
from surmesure.store import Store, open_store

runner = CliRunner()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[typer.Typer, Store]]:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    store = open_store(url)
    load_world(store, tmp_path)
    model.clear_cache()
    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    yield app, store
    store.dispose()
    get_settings.cache_clear()


def test_one_person_as_json(cli: tuple[typer.Typer, Store]) -> None:
    app, store = cli
    result = runner.invoke(
        app, ["--person", "customer_id:C3", "--k", "2", "--as-of", "2024-06-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert body["person_id"] == person_id(store, "C3")
    assert [(i["product_code"], i["reason"]) for i in body["items"]] == [
        ("B", "bought with Mug"),
        ("G", "popular"),
    ]
    table = runner.invoke(app, ["--person", str(body["person_id"]), "--as-of", "2024-06-01"])
    assert table.exit_code == 0 and "bought with Mug" in table.stdout


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_everyone_to_a_file(cli: tuple[typer.Typer, Store], tmp_path: Path, suffix: str) -> None:
    app, store = cli
    out = tmp_path / f"recos.{suffix}"
    result = runner.invoke(app, ["--all", "--k", "3", "--as-of", "2024-06-01", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out) if suffix == "parquet" else pacsv.read_csv(out)
    rows = table.to_pylist()
    assert {r["customer_id"] for r in rows} == {f"C{i}" for i in range(1, 7)}
    c3 = [r for r in rows if r["customer_id"] == "C3"]
    expected = service.recommend(store, person_id(store, "C3"), k=3, as_of=AS_OF)
    assert [(r["rank"], r["product_code"], r["reason"]) for r in c3] == [
        (i, e.product_code, e.reason) for i, e in enumerate(expected, 1)
    ]


def test_clear_errors(cli: tuple[typer.Typer, Store], tmp_path: Path) -> None:
    app, _ = cli
    for args, word in (
        (["--person", "customer_id:NOPE"], "Nobody"),
        (["--person", "1", "--as-of", "soon"], "--as-of"),
        (["--all", str(tmp_path / "x.txt")], "*.parquet"),
        ([], "--person"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert word in result.output, result.output
