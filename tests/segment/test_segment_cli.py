"""``surmesure segment ...`` end to end on a DuckDB file holding the conformance base world."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import typer
from segment_world import load_world
from typer.testing import CliRunner

from conftest import copy_store
from surmesure.cli.segment import register
from surmesure.config import get_settings
from surmesure.store import open_store, schema

TABLE = orjson.loads((Path(__file__).parent / "cases" / "conformance.json").read_bytes())
AT = "2026-03-31T12:00:00"
runner = CliRunner()

LYON = """
name: lyon
description: People in Lyon
where:
  trait: {name: city, op: eq, value: Lyon}
"""
VIEWERS = """
name: lyon_viewers
where:
  all:
    - segment: lyon
    - event: {name: Product Viewed, within_days: 30}
"""


@pytest.fixture
def cli(migrated_duckdb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    url = copy_store(migrated_duckdb, tmp_path)
    store = open_store(url)
    load_world(store, TABLE["worlds"]["base"])
    store.dispose()
    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    monkeypatch.setenv("SURMESURE_TRAIT_HALF_LIFE_DAYS", str(TABLE["half_life_days"]))
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    return app


def run(app: typer.Typer, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, ["segment", *args])
    assert result.exit_code == code, result.output
    return orjson.loads(result.stdout) if "--json" in args else result.output


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_save_size_preview_overlap_refresh(cli: typer.Typer, tmp_path: Path) -> None:
    lyon = write(tmp_path, "lyon.yaml", LYON)
    viewers = write(tmp_path, "viewers.yaml", VIEWERS)
    refused = run(cli, "save", viewers, code=2)  # lyon is not saved yet
    assert "where.all[0].segment" in refused and "fix:" in refused
    assert run(cli, "save", lyon, "--json") == {"name": "lyon", "version": 1, "changed": True}
    assert run(cli, "save", viewers, "--json")["version"] == 1
    assert run(cli, "validate", viewers, "--json") == {"name": "lyon_viewers", "valid": True}
    assert run(cli, "size", "lyon", "--at", AT, "--json") == {"name": "lyon", "size": 3}
    assert run(cli, "size", viewers, "--at", AT, "--json")["size"] == 2
    shown = run(cli, "preview", "lyon", "--limit", "2", "--at", AT, "--json")["members"]
    assert [(m["person_id"], m["trait.city"]) for m in shown] == [(1, "Lyon"), (3, "Lyon")]
    assert shown[1]["reliability.city"] < 0.4
    plot = tmp_path / "overlap.png"
    matrix = run(cli, "overlap", "lyon", "lyon_viewers", "--plot", str(plot), "--at", AT, "--json")
    assert matrix["overlap"] == [[3, 2], [2, 2]]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refreshed = run(cli, "refresh", "--at", AT, "--json")["segments"]
    assert {r["name"]: r["entered"] for r in refreshed} == {"lyon": 3, "lyon_viewers": 2}
    table = run(cli, "refresh", "lyon", "--at", AT)
    assert "lyon" in table and "entered" in table


def test_bad_definitions_are_refused_with_place_and_fix(cli: typer.Typer, tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        "name: bad\nwhere:\n  all:\n    - metric: {name: rfm, op: eq, value: x}\n",
    )
    output = run(cli, "validate", bad, code=2)
    assert "where.all[0].metric.name" in output and "rfm_segment" in output
    output = run(cli, "size", "no_such_segment", code=2)
    assert "no_such_segment" in output


def test_size_explain_counts_after_each_condition(cli: typer.Typer, tmp_path: Path) -> None:
    """Conditions from the conformance table, chained: each count is the intersection of the
    members the table expects for the conditions so far; the last one empties the segment."""
    cases = {c["id"]: c for c in TABLE["cases"]}
    chain = [
        "trait-eq-string",
        "metric-in",
        "event-window-boundary",
        "event-min-count",
        "event-empty-window",
    ]
    for case in chain:
        assert cases[case]["world"] == "base" and cases[case]["now"] == AT
    document = {"name": "chained", "where": {"all": [cases[c]["where"] for c in chain]}}
    path = write(tmp_path, "chained.json", orjson.dumps(document).decode())
    out = run(cli, "size", path, "--at", AT, "--explain", "--json")
    expected, left = [], None
    for case in chain:
        found = set(cases[case]["expected"])
        left = found if left is None else left & found
        expected.append(len(left))
    assert expected == [3, 2, 2, 1, 0]  # the chain narrows, then empties
    assert [s["people"] for s in out["steps"]] == expected
    assert [s["condition"] for s in out["steps"]] == [cases[c]["where"] for c in chain]
    assert out["size"] == 0 and out["people"] >= 8
    table = run(cli, "size", path, "--at", AT, "--explain")
    assert "Never Happens" in table and "people left after each condition" in table


def test_without_at_an_imported_history_is_measured_where_it_ends(
    cli: typer.Typer, tmp_path: Path
) -> None:
    """The world's data ends in 2026; measured "now" (months later), every 30-day window would
    be empty. Without --at, a segment is measured the day after the latest order or event,
    and a note on stderr says so; the JSON on stdout stays one object."""
    url = get_settings().database_url
    store = open_store(url)
    try:
        with store.connect() as conn:
            latest = max(
                conn.execute(sa.select(sa.func.max(c))).scalar()
                for c in (schema.events.c.occurred_at, schema.orders.c.ordered_at)
            )
    finally:
        store.dispose()
    day_after = (latest + timedelta(days=1)).date().isoformat()
    viewers = write(tmp_path, "viewers.yaml", VIEWERS.replace("- segment: lyon\n", ""))
    there = run(cli, "size", viewers, "--at", day_after, "--json")["size"]
    far_later = (latest + timedelta(days=400)).date().isoformat()
    assert there > 0 and run(cli, "size", viewers, "--at", far_later, "--json")["size"] == 0
    result = runner.invoke(cli, ["segment", "size", viewers, "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {"name": "lyon_viewers", "size": there}
    assert f"as of {day_after}" in result.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_size_on_spark_counts_what_the_store_counts(
    cli: typer.Typer, spark: Any, tmp_path: Path
) -> None:
    cases = {c["id"]: c for c in TABLE["cases"]}
    run(cli, "save", write(tmp_path, "lyon.yaml", LYON))
    viewers = write(tmp_path, "viewers.yaml", VIEWERS)
    for ref, expected in (("lyon", len(cases["trait-eq-string"]["expected"])), (viewers, None)):
        on_store = run(cli, "size", ref, "--at", AT, "--json")["size"]
        on_spark = run(cli, "size", ref, "--at", AT, "--engine", "spark", "--json")["size"]
        assert on_spark == on_store
        assert expected is None or on_store == expected
    assert "lyon_viewers: 2 people" in run(cli, "size", viewers, "--at", AT, "--engine", "spark")


SPARK_CASES = ("trait-eq-string", "trait-exists", "event-min-count", "purchase-any-boundary")
"""Conformance cases of the base world whose members overlap, some of them only partly."""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_preview_and_overlap_on_spark_show_what_the_store_shows(
    cli: typer.Typer, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parquet = tmp_path / "parquet"
    monkeypatch.setenv("SURMESURE_SPARK_DIR", str(parquet))
    get_settings.cache_clear()
    cases = {c["id"]: c for c in TABLE["cases"]}
    files = []
    for case in SPARK_CASES:
        assert cases[case]["world"] == "base" and cases[case]["now"] == AT
        document = {"name": case.replace("-", "_"), "where": cases[case]["where"]}
        files.append(write(tmp_path, f"{case}.json", orjson.dumps(document).decode()))
    both = run(cli, "overlap", *files, "--at", AT, "--json")
    on_spark = run(cli, "overlap", *files, "--at", AT, "--engine", "spark", "--json")
    assert on_spark == both
    sizes = [len(cases[c]["expected"]) for c in SPARK_CASES]
    assert [both["overlap"][i][i] for i in range(len(SPARK_CASES))] == sizes
    assert any(0 < cell < min(row[i], both["overlap"][j][j])
               for i, row in enumerate(both["overlap"]) for j, cell in enumerate(row))  # fmt: skip
    shown = run(cli, "preview", files[0], "--limit", "2", "--at", AT, "--json")
    assert run(cli, "preview", files[0], "--limit", "2", "--at", AT, "--engine", "spark",
               "--json") == shown  # fmt: skip
    assert [m["person_id"] for m in shown["members"]] == sorted(cases[SPARK_CASES[0]]["expected"])[
        :2
    ]
    table = run(cli, "preview", files[0], "--limit", "2", "--at", AT, "--engine", "spark")
    assert "trait_eq_string: first 2 members" in table
    assert parquet.is_dir() and not any(parquet.iterdir())  # written there, then removed


def test_an_unknown_engine_is_refused_with_the_choices(cli: typer.Typer) -> None:
    for command in ("size", "preview", "overlap"):
        output = run(cli, command, "lyon", "--engine", "hive", code=2)
        assert "--engine" in output and "spark" in output
