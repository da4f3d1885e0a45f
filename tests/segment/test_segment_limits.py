"""A definition too large to compile or to run is refused with the place and the fix; a store
error reaches the user as one line, never the statement or a traceback.

A 5,000-way ``any`` used to compile to a 5.9 MB statement that DuckDB refused, and the CLI
printed all of it with the traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from conftest import invoke
from surmesure.errors import InvalidInput
from surmesure.segment.definitions import MAX_CONDITIONS, MAX_DEPTH, MAX_VALUES, parse
from surmesure.store import Store


def city(i: int) -> dict[str, Any]:
    return {"trait": {"name": "city", "op": "eq", "value": f"city-{i}"}}


def definition(where: dict[str, Any], name: str = "big") -> dict[str, Any]:
    return {"name": name, "description": "", "where": where}


def nested_nots(levels: int) -> dict[str, Any]:
    where = city(0)
    for _ in range(levels):
        where = {"not": where}
    return where


@pytest.mark.parametrize(
    ("where", "field", "words"),
    [
        ({"any": [city(i) for i in range(5000)]}, "where.any[199]", "more than 200 conditions"),
        (
            {"all": [{"any": [city(i) for i in range(150)]}, {"any": [city(0)] * 60}]},
            "where.all[1].any[47]",  # the 201st condition: 1 + 1 + 150 + 1 + 47 + 1
            "more than 200 conditions",
        ),
        (nested_nots(300), "where" + ".not" * MAX_DEPTH, "more than 12 levels deep"),
        (
            {"trait": {"name": "city", "op": "in", "value": [f"c{i}" for i in range(100_000)]}},
            "where.trait.value",
            "at most 1,000",
        ),
        (
            {"event": {"name": "Viewed", "properties": {f"p{i}": i for i in range(50)}}},
            "where.event.properties",
            "at most 20",
        ),
    ],
    ids=["wide", "wide-nested", "deep", "long-in", "many-properties"],
)
def test_a_definition_beyond_the_bounds_is_refused_at_its_place(
    where: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(definition(where))
    assert refused.value.field == field
    assert words in refused.value.message
    assert refused.value.hint


def test_a_definition_at_the_bounds_is_sized_on_both_stores(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = {"any": [city(i) for i in range(MAX_CONDITIONS - 1)]}
    deep = nested_nots(MAX_DEPTH - 1)
    long_in = {"trait": {"name": "city", "op": "in", "value": [f"c{i}" for i in range(MAX_VALUES)]}}
    for name, where in (("wide", wide), ("deep", deep), ("long_in", long_in)):
        path = tmp_path / f"{name}.json"
        path.write_bytes(orjson.dumps(definition(where, name)))
        result = invoke(monkeypatch, store.url, "segment", "size", str(path), "--json")
        assert result.exit_code == 0, result.output[-2000:]
        assert orjson.loads(result.stdout)["name"] == name


def test_the_cli_refuses_a_5000_way_any_in_a_few_lines(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(orjson.dumps(definition({"any": [city(i) for i in range(5000)]})))
    for command in ("validate", "save", "size"):
        result = invoke(monkeypatch, store.url, "segment", command, str(path))
        assert result.exit_code == 2, result.output[-2000:]
        assert "more than 200 conditions" in result.output
        assert len(result.output) < 1000
        assert "SELECT" not in result.output and "Traceback" not in result.output


def test_a_store_error_reaches_the_cli_user_as_one_line(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lyon.json"
    path.write_bytes(orjson.dumps(definition(city(1), "lyon")))
    if store.is_duckdb:
        breaking, repair = "DROP TABLE traits", None
    else:
        breaking = "ALTER TABLE traits RENAME TO traits_gone"
        repair = "ALTER TABLE traits_gone RENAME TO traits"
    with store.begin() as conn:
        conn.execute(sa.text(breaking))
    try:
        result = invoke(monkeypatch, store.url, "segment", "size", str(path))
    finally:
        if repair is not None:
            with store.begin() as conn:
                conn.execute(sa.text(repair))
    assert result.exit_code == 1
    assert "the store could not do it" in result.output
    assert "traits" in result.output  # the database's own words name what is missing
    assert "SELECT" not in result.output and "Traceback" not in result.output
    assert "[SQL" not in result.output and len(result.output) < 1000
