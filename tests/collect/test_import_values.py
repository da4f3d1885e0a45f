"""A mapping's ``values:`` rewrites file values before validation: imports and replays store
the target, a bad ``values:`` section is refused with its place and the fix."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from import_helpers import rows, write_file

from conftest import invoke
from held import held
from surmesure.collect import quarantine
from surmesure.collect.importer import import_file
from surmesure.collect.mapping import MappingError, map_values
from surmesure.collect.replay import replay
from surmesure.store import Store, open_store

PEOPLE = [
    {"customer_id": "C1", "gender": "female", "country": "France"},
    {"customer_id": "C2", "gender": "male", "country": "FR"},
    {"customer_id": "C3", "gender": "f", "country": "N/A"},
    {"customer_id": "C4", "gender": "Female", "country": "FR"},
]


def traits(store: Store, name: str) -> dict[str, str]:
    """Customer id -> observed value of trait ``name``."""
    customer = {person: value for _, value, person, _ in held(store, "customer_id")}
    found = rows(store, "SELECT person_id, value FROM traits WHERE name = :name", name=name)
    return {str(customer[r["person_id"]]): r["value"] for r in found}


def test_values_are_mapped_on_import(store: Store, tmp_path: Path) -> None:
    path = write_file(tmp_path, "people", "csv", PEOPLE)
    mapping = tmp_path / "people.yaml"
    mapping.write_text(
        "kind: customers\nvalues:\n  gender: {female: f, male: m}\n"
        "  country: {France: FR, 'N/A': null}\n"
    )
    result = import_file(store, "customers", path, mapping=mapping)
    # an exact match only: "Female" is not "female" and stays refused
    assert (result.rows_accepted, result.rows_quarantined) == (3, 1)
    assert traits(store, "gender") == {"C1": "f", "C2": "m", "C3": "f"}
    assert traits(store, "country") == {"C1": "FR", "C2": "FR"}
    (held,) = quarantine.summary(store)["recent"]
    assert (held["field"], held["value"]) == ("gender", "Female")


def test_replay_with_a_value_map_stores_the_refused_records(store: Store, tmp_path: Path) -> None:
    path = write_file(tmp_path, "people", "csv", PEOPLE)
    first = import_file(store, "customers", path)
    assert first.rows_quarantined == 3
    fix = tmp_path / "fix.yaml"
    fix.write_text("values: {gender: {female: f, Female: f, male: m}}\n")
    done = replay(store, run_id=first.run_id, mapping=fix)
    assert (done.replayed, done.still_open) == (3, 0)
    assert traits(store, "gender") == {"C1": "f", "C2": "m", "C3": "f", "C4": "f"}
    # the file imported again with the fix is recognised as the same records
    again = import_file(store, "customers", path, mapping=fix)
    assert (again.rows_accepted, again.rows_quarantined) == (0, 0)


def test_non_text_columns_match_on_their_own_type() -> None:
    numbers = pa.array([1, 2, None, 3], pa.int64())
    assert map_values(numbers, {"2": 20, "x": 5}, "quantity").to_pylist() == [1, 20, None, 3]
    text = pa.chunked_array([["yes", "no"], ["maybe"]])
    mapped = map_values(text, {"yes": True, "no": False, "maybe": None}, "is_return")
    assert mapped.to_pylist() == ["true", "false", None]


@pytest.mark.parametrize(
    ("text", "expected", "where"),
    [
        ("values: {gender: {female: woman}}", "'woman'", "values: gender:"),
        ("values: {shoe_size: {L: '44'}}", "shoe_size", "values"),
        ("values: {gender: female}", "values.gender", "values.gender"),
        ("values: {gender: {yes: f}}", "True", "values: gender:"),
        ("values: {gender: {female: [f]}}", "values.gender.female", "values.gender.female"),
    ],
)
def test_bad_values_sections_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str, where: str
) -> None:
    """Refused by the command before anything is written, with the place and the fix."""
    path = write_file(tmp_path, "people", "csv", PEOPLE)
    (tmp_path / "bad.yaml").write_text(text)
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    monkeypatch.setenv("COLUMNS", "300")
    args = ("import", "customers", str(path), "--mapping", str(tmp_path / "bad.yaml"))
    result = invoke(monkeypatch, url, *args)
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert expected in error and where in error and "\nfix: " in result.output
    store = open_store(url)
    try:
        assert rows(store, "SELECT count(*) AS n FROM import_runs") == [{"n": 0}]
    finally:
        store.dispose()


def test_a_target_the_column_cannot_hold_is_refused() -> None:
    with pytest.raises(MappingError, match="cannot hold"):
        map_values(pa.array([1, 2]), {"1": "many"}, "quantity")
