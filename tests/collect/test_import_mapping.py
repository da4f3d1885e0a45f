"""Column mappings (YAML files and presets) and the errors that refuse a file as a whole."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from import_helpers import count, rows, write_file

from held import held
from surmesure.collect.importer import import_file
from surmesure.collect.mapping import MappingError, load_preset, preset_names
from surmesure.errors import InvalidInput, SurmesureError
from surmesure.protect import blind
from surmesure.store import Store

SHOP_LINES = [
    {
        "Ticket": "T-1",
        "When": "2024-07-01 14:00:00",
        "SKU": "P1",
        "Qty": "2",
        "Price": "3.5",
        "Card": "L-77",
        "Country": "France",
        "Return": "",
    },
    {
        "Ticket": "T-1",
        "When": "2024-07-01 14:00:00",
        "SKU": "FEE-BAG",
        "Qty": "1",
        "Price": "0.1",
        "Card": "L-77",
        "Country": "France",
        "Return": "",
    },
]

SHOP_MAPPING = """
kind: orders
source: shop
timezone: Europe/Paris
columns:
  order_id: Ticket
  ordered_at: When
  product_code: SKU
  quantity: Qty
  unit_price: Price
  loyalty_card: Card
  country: Country
  is_return: Return
constants:
  currency: EUR
  store_id: S1
rules:
  fees:
    patterns: ["^FEE-"]
"""


def test_yaml_mapping_renames_converts_time_and_adds_constants(
    store: Store, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "tickets", "csv", SHOP_LINES)
    mapping = tmp_path / "shop.yaml"
    mapping.write_text(SHOP_MAPPING)
    result = import_file(store, "orders", path, mapping=mapping)
    assert (result.rows_accepted, result.source, result.new_people) == (2, "shop", 1)
    order = rows(store, "SELECT * FROM orders")[0]
    # 14:00 in Paris in July (UTC+2) is 12:00 UTC
    assert order["ordered_at"] == datetime(2024, 7, 1, 12, 0)
    assert (order["currency"], order["store_id"], order["source"]) == ("EUR", "S1", "shop")
    assert order["is_return"] is False
    fees = rows(store, "SELECT product_code, is_fee FROM order_lines ORDER BY line_no")
    assert fees == [
        {"product_code": "P1", "is_fee": False},
        {"product_code": "FEE-BAG", "is_fee": True},
    ]
    assert rows(store, "SELECT product_code FROM products") == [{"product_code": "P1"}]
    assert [(k, v, s) for k, v, _, s in held(store)] == [("loyalty_card", "L-77", "shop")]
    run = rows(store, "SELECT mapping FROM import_runs")[0]["mapping"]
    assert "Ticket" in str(run)


def test_missing_required_column_is_a_clear_error_before_writing(
    store: Store, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "tickets", "csv", SHOP_LINES)
    mapping = tmp_path / "broken.yaml"
    mapping.write_text(SHOP_MAPPING.replace("  ordered_at: When\n", ""))
    with pytest.raises(MappingError) as caught:
        import_file(store, "orders", path, mapping=mapping)
    assert "'ordered_at'" in caught.value.message
    assert caught.value.hint is not None and "columns:" in caught.value.hint
    assert caught.value.field == "ordered_at"
    assert count(store, "import_runs") == count(store, "order_lines") == 0


def test_mapping_to_an_absent_column_names_it(store: Store, tmp_path: Path) -> None:
    path = write_file(tmp_path, "tickets", "csv", SHOP_LINES)
    mapping = tmp_path / "typo.yaml"
    mapping.write_text(SHOP_MAPPING.replace("SKU", "Sku"))
    with pytest.raises(MappingError, match="'Sku'"):
        import_file(store, "orders", path, mapping=mapping)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("columns: [a, b]", "columns"),
        ("timezone: Mars/Olympus", "timezone"),
        ("kind: customers", "kind 'customers'"),
        ("columns: {shoe_size: Size}", "shoe_size"),
        ("rules: {fees: {patterns: ['(']}}", "pattern"),
        ("a: [", "not valid YAML"),
    ],
)
def test_bad_mapping_documents_are_refused(
    duckdb_store: Store, tmp_path: Path, text: str, expected: str
) -> None:
    path = write_file(tmp_path, "tickets", "csv", SHOP_LINES)
    mapping = tmp_path / "bad.yaml"
    mapping.write_text(text)
    with pytest.raises(MappingError) as caught:
        import_file(duckdb_store, "orders", path, mapping=mapping)
    assert expected in str(caught.value)


def test_presets_are_data(duckdb_store: Store, tmp_path: Path) -> None:
    assert "online-retail" in preset_names()
    preset = load_preset("online-retail")
    assert preset.kind == "orders" and preset.timezone == "Europe/London"
    assert preset.rules.fees is not None and "BANK CHARGES" in preset.rules.fees.codes
    with pytest.raises(MappingError, match="no preset"):
        load_preset("nope")
    path = write_file(tmp_path, "tickets", "csv", SHOP_LINES)
    with pytest.raises(MappingError, match="Both"):
        import_file(duckdb_store, "orders", path, mapping=path, preset="online-retail")


@pytest.mark.parametrize(
    ("kind", "name", "content", "expected"),
    [
        ("orderz", "a.csv", "x\n1\n", "Unknown import kind"),
        ("orders", "a.xlsx", "x\n1\n", "extension"),
        ("orders", "missing.csv", None, "does not exist"),
        ("orders", "dupes.csv", "a,a\n1,2\n", "repeats"),
        ("orders", "bad.parquet", "not parquet", "cannot be read"),
    ],
)
def test_unreadable_input_is_refused(
    duckdb_store: Store,
    tmp_path: Path,
    kind: str,
    name: str,
    content: str | None,
    expected: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidInput, match=expected) as caught:
        import_file(duckdb_store, kind, path)
    assert isinstance(caught.value, SurmesureError)
    assert count(duckdb_store, "import_runs") == 0


def test_numbers_read_as_text_ids_lose_the_decimal(duckdb_store: Store, tmp_path: Path) -> None:
    path = write_file(
        tmp_path,
        "numeric_ids",
        "parquet",
        [
            {"order_id": 1.0, "ordered_at": "2024-01-01 00:00:00", "product_code": 85048,
             "quantity": 1, "unit_price": 1.0, "customer_id": 13085.0},
        ],
    )  # fmt: skip
    import_file(duckdb_store, "orders", path)
    assert rows(duckdb_store, "SELECT order_id, customer_ref FROM orders") == [
        {"order_id": "1", "customer_ref": blind.index(duckdb_store, "customer_id", "13085")}
    ]
    assert rows(duckdb_store, "SELECT product_code FROM order_lines") == [{"product_code": "85048"}]
