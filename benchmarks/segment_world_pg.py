"""The segment benchmark's world in PostgreSQL: the same tables, sizes and distributions as
``bench_segment.generate`` (DuckDB), generated in SQL with generate_series.

Randomness is ``hashint8extended(i, seed)``, one seed per column, so a run is the same every
time; the values differ from DuckDB's ``hash()`` (same distributions, not the same draws), so
member counts are close to DuckDB's, not equal. The tables are made UNLOGGED for the load (a
benchmark database, rebuilt at will) and analysed afterwards.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa

from surmesure.store import schema
from surmesure.store.engine import Store

CITIES = ["Lyon", "Paris", "Marseille", "Lille", "Nantes", "Bordeaux", "Toulouse", "Nice"]
SEGMENTS = ["Champions", "Loyal", "Potential", "At Risk", "Hibernating", "Lost"]
CATEGORIES = ["shoes", "bags", "hats", "coats", "shirts", "belts", "socks", "scarves"]
TABLES = ("people", "stores", "products", "traits", "derived_metrics", "events", "orders")
LOADED = (*TABLES, "order_lines")


def rand(salt: str) -> str:
    """A uniform number in [0, 1) from the row number ``i`` and a salt."""
    seed = zlib.crc32(salt.encode())
    return f"((abs(hashint8extended(i, {seed})) % 1000003) / 1000003.0)"


def pick(values: list[str], salt: str) -> str:
    array = "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"
    return f"({array})[1 + floor({len(values)} * {rand(salt)})::int]"


def run_parameters() -> tuple[str, str]:
    """Column list and values for the NOT NULL run parameters of derived_metrics."""
    names = [
        c.name
        for c in schema.derived_metrics.columns
        if not c.nullable and c.name not in ("person_id", "computed_on", "computed_at", "as_of")
    ]
    values = {"horizon_days": "365", "discount_rate": "0.1"}
    return ", ".join(names), ", ".join(values.get(n, "30") for n in names)


def statements(people: int) -> list[str]:
    run_columns, run_values = run_parameters()
    series = f"generate_series(1, {people}) AS t(i)"
    return [
        "INSERT INTO people (person_id, merged_into, created_at, updated_at) "
        f"SELECT i, NULL, '2024-01-01', '2024-01-01' FROM {series}",
        "INSERT INTO stores (store_id, name, country, latitude, longitude, updated_at) "
        f"SELECT 's' || i, 'store ' || i, 'FR', 43.0 + 6.0 * {rand('lat')}, "
        f"-1.0 + 8.0 * {rand('lon')}, '2026-01-01' FROM generate_series(0, 199) AS t(i)",
        "INSERT INTO products (product_code, category, price, currency, updated_at) "
        f"SELECT 'p' || i, (ARRAY{CATEGORIES!r})[1 + i % 8], 20.0, 'EUR', '2026-01-01' "
        "FROM generate_series(0, 499) AS t(i)",
        "INSERT INTO traits (record_key, name, person_id, node_id, value, source, observed_at, "
        f"reliability) SELECT 'k' || i, 'city', i, i, to_jsonb({pick(CITIES, 'city')}), 'crm', "
        f"timestamp '2024-04-01' + floor(720 * {rand('cat')}) * interval '1 day', "
        f"0.3 + 0.7 * {rand('crel')} FROM {series}",
        "INSERT INTO traits (record_key, name, person_id, node_id, value, source, observed_at, "
        f"reliability) SELECT 'w' || i, 'city', i, i, to_jsonb({pick(CITIES, 'city2')}), 'web', "
        f"timestamp '2025-04-01' + floor(360 * {rand('wat')}) * interval '1 day', 0.5 "
        f"FROM {series} WHERE {rand('second')} < 0.3",
        "INSERT INTO traits (record_key, name, person_id, node_id, value, source, observed_at, "
        f"reliability) SELECT 'k' || i, 'home_store_id', i, i, "
        f"to_jsonb('s' || floor(200 * {rand('home')})::int), 'crm', '2025-01-01', 0.9 "
        f"FROM {series}",
        "INSERT INTO derived_metrics (person_id, computed_on, computed_at, as_of, recency_days, "
        "frequency, monetary, r_score, f_score, m_score, rfm_segment, p_alive, expected_value, "
        f"{run_columns}) SELECT i, '2026-03-30', '2026-03-30 02:00', '2026-03-30', "
        f"floor(365 * {rand('rec')})::int, 1 + floor(12 * {rand('freq')})::int, "
        f"1000.0 * {rand('mon')}, 1 + floor(5 * {rand('r')})::int, "
        f"1 + floor(5 * {rand('f')})::int, 1 + floor(5 * {rand('m')})::int, "
        f"{pick(SEGMENTS, 'seg')}, {rand('alive')}, 500.0 * {rand('ev')}, {run_values} "
        f"FROM {series}",
        "INSERT INTO events (message_id, type, event, person_id, node_id, occurred_at, "
        "received_at, properties, source) SELECT 'e' || i, 'track', "
        f"CASE WHEN {rand('kind')} < 0.7 THEN 'Product Viewed' ELSE 'Added to Cart' END, "
        f"1 + floor({people} * {rand('who')})::bigint, NULL, "
        f"timestamp '2025-12-01' + floor(10368000 * {rand('when')}) * interval '1 second', "
        f"'2026-01-01', NULL, 'web' FROM generate_series(0, {4 * people - 1}) AS t(i)",
        "INSERT INTO orders (order_id, person_id, node_id, ordered_at, is_return, total_amount, "
        f"source) SELECT 'o' || i, 1 + floor({people} * {rand('buyer')})::bigint, NULL, "
        f"timestamp '2025-10-01' + floor(15552000 * {rand('paid')}) * interval '1 second', "
        f"{rand('ret')} < 0.05, 10.0 + 190.0 * {rand('amount')}, 'pos' "
        f"FROM generate_series(0, {people - 1}) AS t(i)",
        "INSERT INTO order_lines (order_id, line_no, product_code, quantity, unit_price, amount, "
        f"is_fee) SELECT 'o' || i, 0, 'p' || floor(500 * {rand('prod')})::int, 1, 0, "
        f"10.0 + 190.0 * {rand('amount')}, false FROM generate_series(0, {people - 1}) AS t(i)",
    ]


def generate_postgres(store: Store, people: int) -> None:
    """Fill the (empty, migrated) PostgreSQL store with ``people`` persons and their rows."""
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in LOADED:
            conn.execute(sa.text(f"ALTER TABLE {table} SET UNLOGGED"))
        conn.execute(sa.text("SET synchronous_commit = off"))
        for statement in statements(people):
            conn.execute(sa.text(statement))
        for table in LOADED:
            conn.execute(sa.text(f"ANALYZE {table}"))


def rows(store: Store) -> dict[str, int]:
    with store.connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("people", "traits", "derived_metrics", "events", "orders")
        }
