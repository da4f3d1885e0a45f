"""One currency per store: a second one is converted by the rates given at import, or the file
is refused naming the setting; nothing is written by a refused file. DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from import_helpers import count, rows, write_file

from conftest import invoke
from surmesure.collect.importer import import_file
from surmesure.derive.kpi import kpis
from surmesure.derive.money import money
from surmesure.errors import InvalidInput
from surmesure.store import Store, schema


def line(order: str, price: float, currency: str | None, quantity: int = 2) -> dict[str, Any]:
    return {
        "order_id": order,
        "ordered_at": "2024-03-01 10:00:00",
        "product_code": f"P{order}",
        "description": "Mug",
        "quantity": quantity,
        "unit_price": price,
        "currency": currency,
        "customer_id": f"C{order}",
    }


def totals(store: Store) -> dict[str, tuple[float, str | None]]:
    found = rows(store, "SELECT order_id, total_amount, currency FROM orders")
    return {r["order_id"]: (r["total_amount"], r["currency"]) for r in found}


def test_a_second_currency_is_refused_then_converted_with_its_rate(
    store: Store, tmp_path: Path
) -> None:
    euros = write_file(tmp_path, "eur", "csv", [line("E1", 5.0, "EUR")])
    import_file(store, "orders", euros)
    pounds = write_file(tmp_path, "gbp", "csv", [line("G1", 10.0, "GBP"), line("G2", 1.0, None)])
    with pytest.raises(InvalidInput) as refused:
        import_file(store, "orders", pounds)
    assert refused.value.field == "rates"
    assert "GBP" in str(refused.value) and "EUR" in str(refused.value)
    assert "--rate GBP=" in (refused.value.hint or "")
    assert count(store, "orders") == 1 and count(store, "order_lines") == 1
    import_file(store, "orders", pounds, rates={"GBP": 1.25})
    # 2 x 10 GBP at 1.25 = 25 EUR; a line without a currency is the store's
    assert totals(store) == {
        "E1": (pytest.approx(10.0), "EUR"),
        "G1": (pytest.approx(25.0), "EUR"),
        "G2": (pytest.approx(2.0), None),
    }
    prices = {r["product_code"]: r for r in rows(store, "SELECT * FROM products")}
    assert prices["PG1"]["price"] == pytest.approx(12.5) and prices["PG1"]["currency"] == "EUR"


def test_an_empty_store_takes_its_first_file_s_currency_and_the_mapping_gives_rates(
    store: Store, tmp_path: Path
) -> None:
    mixed = [line("A", 4.0, "EUR"), line("B", 4.0, "GBP"), line("C", 4.0, "USD")]
    path = write_file(tmp_path, "mixed", "csv", mixed)
    with pytest.raises(InvalidInput, match="EUR and USD without rates") as refused:
        import_file(store, "orders", path, rates={"GBP": 1.2})
    assert refused.value.field == "rates" and count(store, "orders") == 0
    mapping = tmp_path / "rates.yaml"
    mapping.write_text("kind: orders\nrates: {GBP: 1.2, USD: 0.9}\n")
    import_file(store, "orders", path, mapping=mapping)
    assert totals(store) == {
        "A": (pytest.approx(8.0), "EUR"),
        "B": (pytest.approx(9.6), "EUR"),
        "C": (pytest.approx(7.2), "EUR"),
    }


def test_every_currency_rated_on_an_empty_store_is_refused(store: Store, tmp_path: Path) -> None:
    path = write_file(tmp_path, "usd", "csv", [line("D", 1.0, "USD")])
    with pytest.raises(InvalidInput, match="has a rate"):
        import_file(store, "orders", path, rates={"USD": 0.9})
    assert count(store, "orders") == 0


def test_rates_belong_to_orders_and_the_cli_names_a_bad_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    path = write_file(tmp_path, "stores", "csv", [{"store_id": "S1", "name": "Lyon"}])
    result = invoke(monkeypatch, url, "import", "stores", str(path), "--rate", "GBP=1.2")
    assert result.exit_code == 2 and "`rates` converts order amounts" in result.output
    result = invoke(monkeypatch, url, "import", "orders", str(path), "--rate", "pound=1.2")
    assert result.exit_code == 2 and "--rate 'pound=1.2' is not CUR=RATE" in result.output
    orders = write_file(tmp_path, "orders", "csv", [line("E", 1.0, "EUR"), line("G", 1.0, "GBP")])
    result = invoke(monkeypatch, url, "import", "orders", str(orders))
    assert result.exit_code == 2 and "--rate GBP=RATE" in result.output


def test_kpis_carry_the_currency_and_refuse_a_store_holding_two(
    store: Store, tmp_path: Path
) -> None:
    import_file(store, "orders", write_file(tmp_path, "eur", "csv", [line("E1", 5.0, "EUR")]))
    k = kpis(store, as_of=date(2024, 3, 31))
    assert k.currency == "EUR" and k.revenue == pytest.approx(10.0)
    assert money(k.revenue, k.currency) == "€10.00"
    assert money(1234.5, "EUR", "de_DE") == "1.234,50\u00a0€" and money(2, "GBP") == "£2.00"
    assert money(None, "EUR") == "n/a" and money(3.0, None) == "3.00"
    # an order in pounds written by another path than the import (an event, an older version)
    with store.begin() as conn:
        conn.execute(
            sa.insert(schema.orders).values(
                order_id="X1",
                ordered_at=datetime(2024, 3, 2),
                is_return=False,
                currency="GBP",
                total_amount=7.0,
                source="web",
            )
        )
    with pytest.raises(InvalidInput, match="EUR and GBP: a total would add them"):
        kpis(store, as_of=date(2024, 3, 31))
