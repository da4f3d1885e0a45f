"""Importing the demo world recovers its truth: one person per customer, the merges across
sources, the orders, and exactly the spoiled rows in quarantine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from world_helpers import SMALL

from surmesure.collect.importer import ImportResult, import_file
from surmesure.config import get_settings
from surmesure.protect import blind
from surmesure.store import Store, open_store
from surmesure.store.status import collect_status
from surmesure.unify.profile import resolved_traits
from surmesure.world import IMPORTS, Spec, generate


@dataclass
class Imported:
    folder: Path
    store: Store
    manifest: dict[str, Any]
    results: dict[str, ImportResult]
    after_customers: dict[str, Any]
    after_orders: dict[str, Any]
    final: dict[str, Any]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    folder = tmp_path_factory.mktemp("world")
    manifest = generate(Spec(SMALL, seed=11), folder)
    store = open_store(f"duckdb:///{folder / 'store.duckdb'}")
    results: dict[str, ImportResult] = {}
    snapshots: dict[str, dict[str, Any]] = {}
    for item in IMPORTS:
        results[item.file] = import_file(store, item.kind, folder / item.file, source=item.source)
        if item.file == "customers_partner.csv":
            snapshots["customers"] = collect_status(store)
        if item.kind == "orders":
            snapshots["orders"] = collect_status(store)
    final = collect_status(store)
    yield Imported(
        folder, store, manifest, results, snapshots["customers"], snapshots["orders"], final
    )
    store.dispose()


def test_customer_files_unify_into_one_person_per_customer(imported: Imported) -> None:
    truth = imported.manifest["truth"]
    status = imported.after_customers
    assert status["identified_people"] == truth["customers"] == SMALL
    assert status["people"] == truth["people_after_customers"]
    assert status["contactable_people"] == truth["prospects"] + truth["known_by_second_email_only"]
    assert status["anonymous_people"] == 0
    crm = imported.results["customers_crm.csv"]
    assert crm.new_people == SMALL
    crm_entry = next(f for f in imported.manifest["files"] if f["file"] == "customers_crm.csv")
    assert crm.rows_duplicate == crm_entry["details"]["duplicate_rows"]
    # every household shares an e-mail between two customer ids: kept apart, reported
    assert crm.conflicts == truth["households"] > 0
    for name in ("customers_shop.csv", "customers_call_centre.csv"):
        assert imported.results[name].new_people == (
            truth["known_by_second_email_only"] if name == "customers_shop.csv" else 0
        )


def test_orders_link_second_addresses_to_their_customer(imported: Imported) -> None:
    truth = imported.manifest["truth"]
    status = imported.after_orders
    assert truth["merges_by_orders"] > 0
    assert status["merges"] == imported.results["orders.csv.gz"].merges == truth["merges_by_orders"]
    assert status["people"] == truth["people_after_orders"]
    assert status["identified_people"] == SMALL
    assert imported.results["orders.csv.gz"].new_people == 0


def test_orders_returns_and_anonymous_tickets_match_the_truth(imported: Imported) -> None:
    truth, status = imported.manifest["truth"], imported.final
    for key in ("orders", "order_lines", "returns", "return_lines", "anonymous_orders"):
        assert status[key] == truth[key], key
    assert status["fee_lines"] == 0
    assert status["returned_amount"] > 0


def test_repeat_purchases_are_plausible(imported: Imported) -> None:
    with imported.store.connect() as conn:
        counts = [
            n
            for (n,) in conn.execute(
                sa.text(
                    "SELECT count(*) FROM orders o JOIN identifiers i ON i.person_id = o.person_id "
                    "AND i.kind = 'customer_id' WHERE NOT o.is_return GROUP BY o.person_id"
                )
            )
        ]
    buyers = len(counts)
    repeat = sum(1 for n in counts if n >= 2) / buyers
    assert 0.5 * SMALL < buyers < 0.9 * SMALL
    assert 0.35 < repeat < 0.8
    assert max(counts) >= 8  # a few loyal customers buy often


@pytest.mark.parametrize("item", IMPORTS, ids=[i.file for i in IMPORTS])
def test_spoiled_rows_are_quarantined_by_field(imported: Imported, item: Any) -> None:
    entry = next(f for f in imported.manifest["files"] if f["file"] == item.file)
    expected = Counter[str | None]()
    for spoiled in entry["malformed"]:
        expected[spoiled["field"]] += spoiled["rows"]
    run_id = imported.results[item.file].run_id
    with imported.store.connect() as conn:
        found = Counter[str | None](
            dict(
                conn.execute(
                    sa.text("SELECT field, count(*) FROM quarantine WHERE run_id = :r GROUP BY 1"),
                    {"r": run_id},
                ).all()
            )
        )
    result = imported.results[item.file]
    assert found == expected
    assert result.rows_quarantined == entry["malformed_rows"]
    assert result.rows_read == entry["rows"]


def test_call_centre_contradictions_lose_to_the_crm(imported: Imported) -> None:
    sample = imported.manifest["files"][5]["details"]["contradictions_sample"]
    assert imported.manifest["files"][5]["file"] == "customers_call_centre.csv"
    assert len(sample) >= 10
    settings = get_settings()
    end = datetime.fromisoformat(imported.manifest["spec"]["end"]) + timedelta(days=1)
    with imported.store.connect() as conn:
        for case in sample:
            person = conn.execute(
                sa.text(
                    "SELECT person_id FROM identifiers WHERE kind = 'customer_id' AND value = :c"
                ),
                {"c": blind.index(imported.store, "customer_id", case["customer_id"])},
            ).scalar_one()
            # read as readers read them: a sealed name is opened
            traits = resolved_traits(conn, person, end, settings.trait_half_life_days)
            resolved = traits[case["trait"]]
            assert (resolved.value, resolved.source) == (case["crm"], "crm"), case
            losers = {(o.source, o.value) for o, _ in resolved.competing}
            assert ("call_centre", case["call_centre"]) in losers, case
