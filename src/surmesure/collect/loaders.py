"""Writing validated records of each kind to the store, idempotently.

Each loader receives the valid records of one file (typed, identifiers normalized, datetimes in
naive UTC, in file order) and writes them inside the caller's transaction:

- records about a person are attached to one (:func:`surmesure.collect.sink.attach`), once per
  distinct combination of identifiers;
- facts (order lines, survey answers, e-mail activity, consents, trait observations) are keyed
  by their natural key or by :func:`surmesure.collect.sink.record_key`, and inserted with
  ``ON CONFLICT DO NOTHING``: a record already stored is a duplicate, not a second row;
- reference data (products, stock, stores) is upserted; a later row of the file for the same
  key supersedes an earlier one, which is then counted as a duplicate. A row for a stored key
  is ``updated`` when a value it gives differs from the stored one, else a duplicate left
  untouched (``updated_at`` aside: it says when, not what).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.collect import currency, sink
from surmesure.collect.mapping import POSITION, Mapping
from surmesure.collect.records import IDENTIFIER_FIELDS
from surmesure.config import Settings
from surmesure.dispatch import outbox
from surmesure.protect import blind
from surmesure.store import schema
from surmesure.store.engine import Store


@dataclass
class LoadContext:
    """What a loader needs besides the records. ``refs`` names a record by its position
    (for merge evidence); ``now`` is the import time, naive UTC."""

    store: Store
    conn: Connection
    kind: str
    source: str
    mapping: Mapping
    settings: Settings
    now: datetime
    refs: Callable[[int], str]
    ddb: duckdb.DuckDBPyConnection = field(default_factory=duckdb.connect)


@dataclass
class Loaded:
    """Records that added rows (``new``), changed stored reference data (``updated``) or were
    already stored (``duplicate``), what identity resolution did, and the rows written by
    table."""

    new: int = 0
    duplicate: int = 0
    updated: int = 0
    new_people: int = 0
    merges: int = 0
    conflicts: int = 0
    written: dict[str, int] = field(default_factory=dict)
    erased: dict[int, list[str]] = field(default_factory=dict)
    """Records refused for an erased identifier: position -> kinds that matched."""

    def add(self, other: Loaded) -> None:
        """Fold in the counts of ``other`` (a later chunk of the same file); not ``erased``,
        whose positions are those of a chunk."""
        self.new += other.new
        self.duplicate += other.duplicate
        self.updated += other.updated
        self.new_people += other.new_people
        self.merges += other.merges
        self.conflicts += other.conflicts
        for table, count in other.written.items():
            self.written[table] = self.written.get(table, 0) + count


def _sql(ctx: LoadContext, query: str, **tables: pa.Table) -> pa.Table:
    for name, table in tables.items():
        ctx.ddb.register(name, table)
    try:
        return ctx.ddb.sql(query).to_arrow_table()
    finally:
        for name in tables:
            ctx.ddb.unregister(name)


LOOKUP_CHUNK = 5_000
"""Keys looked up in one query when reading stored reference data."""

OWNED = "__owned"
"""Column :func:`_attach` adds: whether the row's person is its own (not a claim-only fact)."""


def _attach(ctx: LoadContext, table: pa.Table, source: str, out: Loaded) -> pa.Table:
    """``table`` with ``person_id``, ``node_id`` and :data:`OWNED`, resolving each distinct
    identifier combination once, in order of first appearance."""
    ids = [c for c in IDENTIFIER_FIELDS if table.column(c).null_count < table.num_rows]
    if not ids or table.num_rows == 0:
        nulls = pa.nulls(table.num_rows, pa.int64())
        owned = pa.array([False] * table.num_rows, pa.bool_())
        return (
            table.append_column("person_id", nulls)
            .append_column("node_id", nulls)
            .append_column(OWNED, owned)
        )
    cols = ", ".join(ids)
    distinct = _sql(
        ctx,
        f"SELECT {cols}, min({POSITION}) AS first FROM t "
        f"WHERE {' OR '.join(f'{c} IS NOT NULL' for c in ids)} "
        f"GROUP BY ALL ORDER BY first",
        t=table.select([POSITION, *ids]),
    )
    attached = sink.attach(
        ctx.store,
        ctx.conn,
        distinct.select(ids),
        source=source,
        now=ctx.now,
        refs=[ctx.refs(p) for p in distinct.column("first").to_pylist()],
        trusted=ctx.settings.trusts(source),
    )
    if ctx.kind != "orders":  # (an order is a change of its own, told once its lines are in)
        # the people these records name, new or merged ones included: the caches of decisions
        # re-read them once the import commits (subscriber people_changed)
        named = sorted({p for p in attached.rows.column("person_id").to_pylist() if p is not None})
        outbox.append(
            ctx.store, ctx.conn, outbox.PROFILE, named, at=ctx.now, details=[ctx.kind] * len(named)
        )
    out.new_people += attached.new_people
    out.merges += len(attached.merges)
    out.conflicts += len(attached.conflicts)
    same = "=" if len(ids) == 1 else "IS NOT DISTINCT FROM"
    on = " AND ".join(f"t.{c} {same} d.{c}" for c in ids)
    return _sql(
        ctx,
        f"SELECT t.*, d.person_id, d.node_id, coalesce(d.owned, false) AS {OWNED} "
        f"FROM t LEFT JOIN d ON {on} ORDER BY t.{POSITION}",
        t=table,
        d=attached.rows,
    )


def _count(out: Loaded, table: str, new: int) -> int:
    out.written[str(table)] = out.written.get(str(table), 0) + new
    return new


# -- orders ------------------------------------------------------------------------------------


def _fee_condition(mapping: Mapping) -> str:
    fees = mapping.rules.fees
    if fees is None:
        return "FALSE"
    parts = []
    if fees.codes:
        parts.append(f"product_code IN ({', '.join(_lit(c) for c in fees.codes)})")
    parts += [f"regexp_matches(product_code, {_lit(p)})" for p in fees.patterns]
    return " OR ".join(parts) or "FALSE"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_orders(ctx: LoadContext, valid: pa.Table) -> Loaded:
    out = Loaded()
    valid, _ = currency.convert(valid, currency.stored_currency(ctx.conn), ctx.mapping.rates)
    returns = ctx.mapping.rules.returns
    is_return = (
        f"coalesce(is_return, starts_with(order_id, {_lit(returns.order_id_prefix)}))"
        if returns
        else "coalesce(is_return, FALSE)"
    )
    # line numbers the import derived are unique per order; mapped ones may repeat
    unique = "line_no" not in ctx.mapping.columns
    lines = _sql(
        ctx,
        f"SELECT * REPLACE ({is_return} AS is_return), ({_fee_condition(ctx.mapping)}) AS is_fee,"
        f" quantity * unit_price AS amount FROM v "
        + (
            ""
            if unique
            else f"QUALIFY row_number() OVER (PARTITION BY order_id, line_no "
            f"ORDER BY {POSITION}) = 1 "
        )
        + f"ORDER BY {POSITION}",
        v=valid,
    )
    in_file_duplicates = valid.num_rows - lines.num_rows
    lines = _attach(ctx, lines, ctx.source, out)
    orders = _sql(
        ctx,
        f"""SELECT order_id,
              arg_min(person_id, {POSITION}) AS person_id,
              arg_min(node_id, {POSITION}) AS node_id,
              arg_min(customer_id, {POSITION}) AS customer_ref,
              arg_min(store_id, {POSITION}) AS store_id,
              arg_min(channel, {POSITION}) AS channel,
              arg_min(country, {POSITION}) AS country,
              arg_min(ordered_at, {POSITION}) AS ordered_at,
              arg_min(is_return, {POSITION}) AS is_return,
              arg_min(currency, {POSITION}) AS currency,
              sum(amount) AS total_amount,
              {_lit(ctx.source)} AS source
            FROM l GROUP BY order_id ORDER BY min({POSITION})""",
        l=lines,
    )
    if "customer_ref" in orders.column_names:
        position = orders.column_names.index("customer_ref")
        orders = orders.set_column(
            position,
            "customer_ref",
            blind.index_array(ctx.store, blind.USER_ID_KIND, orders.column("customer_ref")),
        )
    new_lines = _count(
        out, "order_lines", sink.write(ctx.store, ctx.conn, schema.order_lines, lines)
    )
    new_orders = _count(out, "orders", sink.write(ctx.store, ctx.conn, schema.orders, orders))
    if new_lines and new_orders < orders.num_rows:
        _recompute_totals(ctx, orders.column("order_id").to_pylist())
    if new_lines:
        bought = [
            (p, o)
            for p, o in zip(
                orders.column("person_id").to_pylist(),
                orders.column("order_id").to_pylist(),
                strict=True,
            )
            if p is not None
        ]
        outbox.append(
            ctx.store,
            ctx.conn,
            outbox.ORDER,
            [p for p, _ in bought],
            at=ctx.now,
            refs=[str(o) for _, o in bought],
        )
    products = _sql(
        ctx,
        f"""SELECT product_code,
              arg_max(description, {POSITION}) AS name,
              arg_max(unit_price, {POSITION}) FILTER (WHERE NOT is_return AND unit_price >= 0)
                AS price,
              arg_max(currency, {POSITION}) AS currency
            FROM l WHERE NOT is_fee GROUP BY product_code ORDER BY min({POSITION})""",
        l=lines,
    )
    products = products.append_column(
        "updated_at", pa.array([ctx.now] * products.num_rows, pa.timestamp("us"))
    )
    # the catalogue (``import products``) is authoritative: orders only add unknown products
    _count(out, "products", ctx.store.bulk_insert(ctx.conn, schema.products, products))
    out.new = new_lines
    out.duplicate = in_file_duplicates + lines.num_rows - new_lines
    return out


def _recompute_totals(ctx: LoadContext, order_ids: list[str]) -> None:
    """Set ``total_amount`` of these stored orders to the sum of their stored lines (an order
    that gained lines from a later file or a replay)."""
    query = (
        "UPDATE orders SET total_amount = s.total FROM (SELECT order_id, sum(amount) AS total "
        "FROM order_lines WHERE order_id IN ({ids}) GROUP BY order_id) s "
        "WHERE orders.order_id = s.order_id"
    )
    backend = ctx.store.backend
    ids = {"order_id": pa.array(order_ids, pa.string())}
    with backend.with_values(ctx.conn, "_touched", ids) as touched:
        sql = query.format(ids=f"SELECT order_id FROM {touched.sql}")
        backend.run(ctx.conn, sql, touched.params)


# -- facts about a person keyed by record -----------------------------------------------------


def _records(valid: pa.Table) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if v is not None and k != POSITION}
        for row in valid.to_pylist()
    ]


def _keyed(ctx: LoadContext, valid: pa.Table, key_field: str, kind: str) -> pa.Table:
    """``valid`` with its ``key_field`` column filled (the record's natural key when given,
    else a key made from the record itself) and later repeats of a key dropped."""
    keys = [row.get(key_field) or sink.record_key(kind, ctx.source, row) for row in _records(valid)]
    keyed = valid.set_column(
        valid.column_names.index(key_field), key_field, pa.array(keys, pa.string())
    )
    return _sql(
        ctx,
        f"SELECT * FROM k QUALIFY row_number() OVER (PARTITION BY {key_field} "
        f"ORDER BY {POSITION}) = 1 ORDER BY {POSITION}",
        k=keyed,
    )


def _load_facts(
    ctx: LoadContext, valid: pa.Table, table: sa.Table, key: str, extra: dict[str, Any]
) -> Loaded:
    out = Loaded()
    rows = _keyed(ctx, valid, key, ctx.kind)
    rows = _attach(ctx, rows, ctx.source, out)
    for name, value in extra.items():
        rows = rows.append_column(name, pa.array([value] * rows.num_rows))
    new = _count(out, table.name, sink.write(ctx.store, ctx.conn, table, rows))
    out.new = new
    out.duplicate = valid.num_rows - new
    return out


def load_surveys(ctx: LoadContext, valid: pa.Table) -> Loaded:
    return _load_facts(ctx, valid, schema.survey_answers, "answer_id", {"source": ctx.source})


def load_email(ctx: LoadContext, valid: pa.Table) -> Loaded:
    activity = valid.append_column("activity_id", pa.nulls(valid.num_rows, pa.string()))
    extra = {"channel": "email", "source": ctx.source}
    return _load_facts(ctx, activity, schema.channel_activity, "activity_id", extra)


def load_consents(ctx: LoadContext, valid: pa.Table) -> Loaded:
    with_id = valid.append_column("consent_id", pa.nulls(valid.num_rows, pa.string()))
    return _load_facts(ctx, with_id, schema.consents, "consent_id", {"source": ctx.source})


# -- customers: identifiers and trait observations --------------------------------------------


TRAIT_EXCLUDED = {*IDENTIFIER_FIELDS, "source", "observed_at", POSITION}
NOT_TRAITS = {*TRAIT_EXCLUDED, "__key", "person_id", "node_id", OWNED}


def load_customers(ctx: LoadContext, valid: pa.Table) -> Loaded:
    out = Loaded()
    records = valid.to_pylist()
    keys: list[str] = []
    for row in records:
        source = row.get("source") or ctx.source
        facts = {k: v for k, v in row.items() if v is not None and k != POSITION}
        keys.append(sink.record_key("customers", source, facts))
    stored = ctx.store.existing_keys(ctx.conn, schema.traits, "record_key", keys)
    seen: set[str] = set()
    keep: list[int] = []
    for i, (row, key) in enumerate(zip(records, keys, strict=True)):
        has_traits = any(row[k] is not None for k in row if k not in TRAIT_EXCLUDED)
        if has_traits and (key in stored or key in seen):
            out.duplicate += 1
            continue
        seen.add(key)
        keep.append(i)
    out.new = len(keep)
    table = valid.take(pa.array(keep, pa.int64())).append_column(
        "__key", pa.array([keys[i] for i in keep], pa.string())
    )
    sources = [r or ctx.source for r in table.column("source").to_pylist()]
    table = table.set_column(
        table.column_names.index("source"), "source", pa.array(sources, pa.string())
    )
    traits = 0
    for source in dict.fromkeys(sources):
        group = table.filter(pc.equal(table.column("source"), source))
        group = _attach(ctx, group, source, out)
        rows = group.to_pylist()
        # a low-trust row that only claims someone's identifiers brings them no trait
        traits += sink.write_traits(
            ctx.store,
            ctx.conn,
            record_keys=[r["__key"] for r in rows],
            person_ids=[r["person_id"] if r[OWNED] else None for r in rows],
            node_ids=[r["node_id"] for r in rows],
            traits=[{k: v for k, v in r.items() if k not in NOT_TRAITS} for r in rows],
            sources=[source] * len(rows),
            observed_at=[r["observed_at"] or ctx.now for r in rows],
            reliabilities=[ctx.settings.reliability_of(source)] * len(rows),
        )
    _count(out, "traits", traits)
    return out


# -- reference data ----------------------------------------------------------------------------


def _upsert(
    ctx: LoadContext, valid: pa.Table, table: sa.Table, keys: list[str], select: str
) -> Loaded:
    out = Loaded()
    rows = _sql(
        ctx,
        f"SELECT {select} FROM v QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} "
        f"ORDER BY {POSITION} DESC) = 1 ORDER BY {POSITION}",
        v=valid,
    )
    state = _reference_state(ctx, rows, table, keys)
    rows = rows.drop_columns([POSITION])
    changed = rows.filter(pc.not_equal(state, "same"))
    if "updated_at" not in changed.column_names:
        changed = changed.append_column(
            "updated_at", pa.array([ctx.now] * changed.num_rows, pa.timestamp("us"))
        )
    _count(out, table.name, ctx.store.bulk_insert(ctx.conn, table, changed, on_conflict="merge"))
    out.new = pc.sum(pc.equal(state, "new")).as_py() or 0
    out.updated = changed.num_rows - out.new
    out.duplicate = valid.num_rows - changed.num_rows
    return out


def _reference_state(
    ctx: LoadContext, rows: pa.Table, table: sa.Table, keys: list[str]
) -> pa.Array:
    """Per row: ``new`` (key not stored), ``changed`` (a value given differs from the stored
    one) or ``same``. A missing value never erases a stored one, so it never changes it."""
    compared = [c for c in rows.column_names if c not in (*keys, "updated_at", POSITION)]
    first = table.c[keys[0]]
    codes = sorted(set(rows.column(keys[0]).to_pylist()))
    found: list[Any] = []
    for start in range(0, len(codes), LOOKUP_CHUNK):
        chunk = codes[start : start + LOOKUP_CHUNK]
        found += ctx.conn.execute(
            sa.select(*(table.c[c] for c in keys + compared)).where(first.in_(chunk))
        ).all()
    if not found:
        return pa.array(["new"] * rows.num_rows, pa.string())
    stored = pa.table({c: pa.array([r[i] for r in found]) for i, c in enumerate(keys + compared)})
    same = " AND ".join(f"(v.{c} IS NULL OR v.{c} = s.{c})" for c in compared) or "true"
    result = _sql(
        ctx,
        f"SELECT CASE WHEN s.{keys[0]} IS NULL THEN 'new' WHEN {same} THEN 'same' "
        f"ELSE 'changed' END AS state FROM v LEFT JOIN s USING ({', '.join(keys)}) "
        f"ORDER BY v.{POSITION}",
        v=rows,
        s=stored,
    )
    return result.column("state").combine_chunks()


def load_products(ctx: LoadContext, valid: pa.Table) -> Loaded:
    return _upsert(
        ctx,
        valid,
        schema.products,
        ["product_code"],
        f"product_code, name, category, price, currency, {POSITION}",
    )


def load_stock(ctx: LoadContext, valid: pa.Table) -> Loaded:
    now = f"TIMESTAMP '{ctx.now.isoformat(sep=' ')}'"
    return _upsert(
        ctx,
        valid,
        schema.stock,
        ["product_code", "store_id"],
        f"product_code, store_id, CAST(quantity AS INTEGER) AS quantity, "
        f"coalesce(updated_at, {now}) AS updated_at, {POSITION}",
    )


def load_stores(ctx: LoadContext, valid: pa.Table) -> Loaded:
    return _upsert(
        ctx,
        valid,
        schema.stores,
        ["store_id"],
        f"store_id, name, city, postcode, country, latitude, longitude, {POSITION}",
    )


LOADERS: dict[str, Callable[[LoadContext, pa.Table], Loaded]] = {
    "customers": load_customers,
    "orders": load_orders,
    "products": load_products,
    "stock": load_stock,
    "stores": load_stores,
    "surveys": load_surveys,
    "email": load_email,
    "consents": load_consents,
}
