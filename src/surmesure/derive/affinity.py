"""Product and category affinities: where a person's money goes.

Per identified person, over the non-fee lines of their orders on or before ``as_of`` (returns
subtract), net spend per category (``products.category``; lines of unknown products or
without a category are left out) and per product:

- ``top_category_1`` .. ``top_category_3``: the categories of highest net spend (ties: the
  category name), among those with a positive net spend; NULL past the last such category;
- ``top_category_share``: the first category's share of the person's positive category spend;
- ``top_product_code``: the product of highest positive net spend (ties: the code).

People with no positive spend get no row.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir

from surmesure.derive.source import person_orders

TOP = 3
AFFINITY_COLUMNS = (
    "person_id",
    *(f"top_category_{i}" for i in range(1, TOP + 1)),
    "top_category_share",
    "top_product_code",
)


def person_lines(backend: Any, as_of: date, orders: ir.Table | None = None) -> ir.Table:
    """Non-fee lines of identified people's orders by ``as_of``: ``person_id``,
    ``product_code``, ``category`` (NULL when unknown), ``amount``."""
    orders = person_orders(backend, as_of) if orders is None else orders
    lines = backend.table("order_lines")
    lines = lines.filter(~lines.is_fee).select("order_id", "product_code", "amount")
    products = backend.table("products").select("product_code", "category")
    joined = orders.select("order_id", "person_id").join(lines, "order_id")
    joined = joined.left_join(products, "product_code", rname="{name}_p")
    return joined.select("person_id", "product_code", "category", "amount")


def _ranked(lines: ir.Table, key: str) -> ir.Table:
    spend = lines.group_by("person_id", key).aggregate(spend=lines.amount.sum())
    spend = spend.filter(spend[key].notnull(), spend.spend > 0)
    order = [spend.spend.desc(), spend[key].asc()]
    return spend.mutate(rank=ibis.row_number().over(group_by=spend.person_id, order_by=order))


def affinities(backend: Any, as_of: date, orders: ir.Table | None = None) -> ir.Table:
    """The affinity table (columns ``AFFINITY_COLUMNS``); see the module docstring."""
    lines = person_lines(backend, as_of, orders)
    categories = _ranked(lines, "category")
    tops = categories.group_by("person_id").aggregate(
        **{
            f"top_category_{i + 1}": categories.category.max(where=categories["rank"] == i)
            for i in range(TOP)
        },
        top_category_share=(
            categories.spend.max(where=categories["rank"] == 0) / categories.spend.sum()
        ),
    )
    products = _ranked(lines, "product_code")
    product = products.filter(products["rank"] == 0).select(
        "person_id", top_product_code=products.product_code
    )
    joined = product.left_join(tops, "person_id", rname="{name}_c")
    return joined.select(*AFFINITY_COLUMNS)
