"""The demo world's files: reproducible, counted in the manifest, and shaped like retail."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from world_helpers import SMALL, count_rows, csv_source

from surmesure.world import IMPORTS, Spec, generate, manifest_matches, read_manifest


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world")
    generate(Spec(SMALL, seed=7), folder)
    return folder


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != "manifest.json"
    }


def test_same_seed_gives_identical_files(world: Path, tmp_path: Path) -> None:
    generate(Spec(SMALL, seed=7), tmp_path)
    assert digests(tmp_path) == digests(world)
    assert len(digests(world)) == len(IMPORTS) + 1


def test_another_seed_gives_other_files(world: Path, tmp_path: Path) -> None:
    generate(Spec(SMALL, seed=8), tmp_path)
    mine, theirs = digests(world), digests(tmp_path)
    assert all(mine[name] != theirs[name] for name in mine if name != "stores.csv")
    assert manifest_matches(world, Spec(SMALL, seed=7))
    assert not manifest_matches(world, Spec(SMALL, seed=8))
    assert not manifest_matches(world, Spec(SMALL + 1, seed=7))


def test_row_counts_match_the_manifest(world: Path) -> None:
    manifest = read_manifest(world)
    assert manifest is not None
    for entry in manifest["files"]:
        assert count_rows(world / entry["file"]) == entry["rows"], entry["file"]
    truth = manifest["truth"]
    crm = next(f for f in manifest["files"] if f["file"] == "customers_crm.csv")
    assert crm["rows"] == SMALL + crm["details"]["duplicate_rows"] + crm["malformed_rows"]
    orders = next(f for f in manifest["files"] if f["file"] == "orders.csv.gz")
    assert orders["rows"] == truth["order_lines"] + orders["malformed_rows"]
    assert manifest["stores"] >= 41 and manifest["products"] >= 300


def test_december_sells_clearly_more_than_a_typical_month(world: Path) -> None:
    con = duckdb.connect()
    monthly = con.sql(
        "SELECT strftime(TRY_CAST(ordered_at AS TIMESTAMP), '%Y-%m') AS month, "
        "sum(TRY_CAST(quantity AS INTEGER) * TRY_CAST(unit_price AS DOUBLE)) AS revenue "
        f"FROM {csv_source(world / 'orders.csv.gz')} WHERE is_return = 'false' "
        "AND TRY_CAST(ordered_at AS TIMESTAMP) IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    revenue = dict(monthly)
    assert len(revenue) == 15
    median = sorted(revenue.values())[len(revenue) // 2]
    assert revenue["2025-12"] > 1.4 * median
    assert revenue["2026-02"] < median  # quiet February
    assert revenue["2026-01"] > revenue["2026-02"]  # winter sales


def test_identifiers_come_in_many_shapes(world: Path) -> None:
    con = duckdb.connect()
    shop = csv_source(world / "customers_shop.csv")
    upper = con.sql(f"SELECT count(*) FROM {shop} WHERE email <> lower(email)").fetchall()
    spaced = con.sql(f"SELECT count(*) FROM {shop} WHERE email <> trim(email)").fetchall()
    assert upper[0][0] > 0 and spaced[0][0] > 0
    calls = csv_source(world / "customers_call_centre.csv")
    national = con.sql(f"SELECT count(*) FROM {calls} WHERE phone LIKE '06%'").fetchall()
    assert national[0][0] > 0
    events = f"read_json('{world / 'web_events.jsonl'}', format = 'newline_delimited')"
    kinds = dict(
        con.sql(f"SELECT type, count(DISTINCT messageId) FROM {events} GROUP BY 1").fetchall()
    )
    total = con.sql(f"SELECT count(*) FROM {events}").fetchall()
    assert set(kinds) == {"page", "track", "identify"}
    assert sum(kinds.values()) == total[0][0]


def test_a_world_needs_a_sensible_size() -> None:
    with pytest.raises(ValueError, match="customers"):
        Spec(10)
    with pytest.raises(ValueError, match="months"):
        Spec(1_000, months=3)
