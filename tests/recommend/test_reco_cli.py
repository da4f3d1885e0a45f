"""``surmesure recommend`` for one person and for everyone, on a DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from import_helpers import write_file
from reco_world import AS_OF, load_world, person_id
from typer.testing import CliRunner

from surmesure.cli.recommend import register
from surmesure.collect.importer import import_file
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


def test_everyone_means_identified_people_unless_anonymous_ones_are_asked(
    cli: tuple[typer.Typer, Store], tmp_path: Path
) -> None:
    app, store = cli
    devices = [{"anonymous_id": f"web-{i}", "observed_at": "2024-01-01 00:00:00"} for i in range(3)]
    by_email = [{"email": "ana@example.com", "first_name": "Ana"}]
    import_file(store, "customers", write_file(tmp_path, "devices", "csv", devices + by_email))
    out = tmp_path / "recos.parquet"
    result = runner.invoke(app, ["--all", "--k", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    identified = pq.read_table(out).to_pylist()
    assert orjson.loads(result.stdout)["people"] == 7  # six customers and Ana
    assert len({r["person_id"] for r in identified}) == 7
    wide = runner.invoke(app, ["--all", "--anonymous", "--k", "2", "--json", str(out)])
    assert wide.exit_code == 0, wide.output
    assert orjson.loads(wide.stdout)["people"] == 10
    everyone = pq.read_table(out).to_pylist()
    devices_only = {r["person_id"] for r in everyone} - {r["person_id"] for r in identified}
    assert len(devices_only) == 3
    alone = runner.invoke(app, ["--anonymous", "--person", "1"])
    assert alone.exit_code == 2 and "--anonymous" in alone.output


def test_the_model_is_fitted_once_and_kept(cli: tuple[typer.Typer, Store]) -> None:
    app, _ = cli
    ask = ["--person", "customer_id:C3", "--k", "2", "--as-of", "2024-06-01", "--json"]
    before = orjson.loads(runner.invoke(app, ask).stdout)
    assert before["ranking"].startswith("no kept recommendation model fitted before 2024-06-01")
    fitted = runner.invoke(app, ["--fit", "--as-of", "2024-05-01", "--json"])
    assert fitted.exit_code == 0, fitted.output
    kept = orjson.loads(fitted.stdout)
    assert kept["version"] == 1 and kept["as_of"].startswith("2024-05-01")
    assert kept["ranker"] is None and "too few buyers" in kept["description"]
    after = orjson.loads(runner.invoke(app, ask).stdout)
    assert after["ranking"].startswith("kept model version 1, fitted on the data before 2024-05-01")
    assert after["items"] == before["items"]  # too few buyers: the same rules either way
    shown = runner.invoke(app, ["--fit"])
    assert shown.exit_code == 0 and "kept recommendation model version 2" in shown.stdout
    mixed = runner.invoke(app, ["--fit", "--person", "1"])
    assert mixed.exit_code == 2 and "--fit" in mixed.output
