"""The store seen through Ibis, and the per-order facts every metric starts from.

Everything in ``derive`` is written once as Ibis expressions over these tables, so the same code
runs on the embedded DuckDB store, on PostgreSQL and on any engine Ibis drives (Spark).

Conventions shared by every metric:

- a person is *identified* when it holds an identifier of kind ``customer_id``;
- anonymous orders (``person_id`` NULL) are ignored;
- ``as_of`` is a calendar date: orders placed on or before that day count, later ones do not;
  durations are whole days between calendar dates (timestamps are naive UTC);
- the value of an order is the sum of its non-fee lines (fees, postage and adjustments are not
  products); a return has negative lines, so summing purchases and returns gives a net value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from surmesure.store.engine import Store


@contextmanager
def ibis_backend(store: Store) -> Iterator[Any]:
    """An Ibis backend on the store's database, sharing one of the store's connections."""
    with store.connect() as conn, store.backend.ibis(conn) as backend:
        yield backend


def identified_people(backend: Any) -> ir.Table:
    """One row per identified person: ``person_id`` and its ``customer_id`` as stored, a blind
    index (the smallest index when a merge left it with several)."""
    ids = backend.table("identifiers")
    return (
        ids.filter(ids.kind == "customer_id")
        .group_by("person_id")
        .aggregate(customer_id=ids.value.min())
    )


def person_orders(backend: Any, as_of: date) -> ir.Table:
    """One row per order of an identified person placed on or before ``as_of``: ``person_id``,
    ``order_id``, ``order_day`` (date), ``is_return`` and ``amount`` (non-fee lines; 0 when an
    order has only fees)."""
    orders = backend.table("orders")
    lines = backend.table("order_lines")
    cutoff = ibis.timestamp(as_of + timedelta(days=1))
    values = lines.filter(~lines.is_fee).group_by("order_id").aggregate(amount=lines.amount.sum())
    people = identified_people(backend).select("person_id")
    kept = orders.filter(orders.person_id.notnull(), orders.ordered_at < cutoff)
    kept = kept.semi_join(people, "person_id")
    joined = kept.left_join(values, "order_id")
    return joined.select(
        person_id=kept.person_id,
        order_id=kept.order_id,
        order_day=kept.ordered_at.date(),
        is_return=kept.is_return,
        amount=values.amount.coalesce(0.0),
    )


def days_between(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    """Whole days from ``earlier`` to ``later``."""
    return later.delta(earlier, unit="day")
