"""Category breadth, up-sell potential, and the engagement scores 0-100.

Per buyer (a person with at least one purchase, a non-return order, on or before ``as_of``):

- ``category_breadth``: distinct product categories bought over the whole history up to
  ``as_of`` (the non-fee lines of purchase orders, joined to ``products.category``; lines of
  unknown products or without a category are left out, so a buyer can have 0). The history
  rather than the window: breadth grows slowly, and a 90-day window would leave most buyers at
  0 or 1;
- ``upsell_potential``: the share of the buyer's RFM segment peers (the other buyers of the
  same ``rfm_segment``) whose average basket is above the buyer's own, in [0, 1]; high means
  room to grow. The average basket is the value of purchases (non-fee lines, returns not
  subtracted) over the number of purchase orders, taken in whole cents per order so every engine
  compares the same numbers. NULL for a buyer alone in the segment.

Both are NULL for people who never bought.

The scores rank each component within the population of the run (the identified people with a
value for it) by its mid-rank percentile:

    P(x) = (#{y < x} + #{y = x} / 2) / n        in (0, 1), ties share one value

A component where less is better enters as ``1 - P(x)``. With the weights ``RELATIONAL`` and
``TRANSACTIONAL`` below:

    relational_engagement    = 100 * (0.3 P(open_rate) + 0.4 P(click_rate)
                                      + 0.3 (1 - P(days_since_interaction))) / sum of weights used
    transactional_engagement = 100 * (0.5 P(purchases_per_month) + 0.25 (1 - P(gap_regularity))
                                      + 0.25 P(category_breadth)) / sum of weights used
    engagement_score         = mean of the two scores that are not NULL

A NULL component is skipped and the weights of the others renormalized; a score whose
components are all NULL is NULL. Open and click rates are NULL without an e-mail sent in the
window; purchases per month is taken for buyers only (a non-buyer has no transactional score);
regularity needs two gaps between purchase days.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

BREADTH_COLUMNS = ("person_id", "category_breadth", "upsell_potential")
SCORE_COLUMNS = ("relational_engagement", "transactional_engagement", "engagement_score")

# (column, weight, True when less is better)
RELATIONAL = (
    ("open_rate", 0.3, False),
    ("click_rate", 0.4, False),
    ("days_since_interaction", 0.3, True),
)
TRANSACTIONAL = (
    ("purchases_per_month", 0.5, False),
    ("gap_regularity", 0.25, True),
    ("category_breadth", 0.25, False),
)
# what the scores read from the per-person rows, besides the components
SCORE_INPUTS = ("frequency", *(c for c, _, _ in RELATIONAL + TRANSACTIONAL))


def category_breadth(backend: Any, orders: ir.Table) -> ir.Table:
    """Per buyer: ``person_id``, ``category_breadth``; ``orders`` is
    :func:`surmesure.derive.source.person_orders`."""
    purchases = orders.filter(~orders.is_return).select("order_id", "person_id")
    buyers = purchases.select("person_id").distinct()
    lines = backend.table("order_lines")
    lines = lines.filter(~lines.is_fee).select("order_id", "product_code")
    products = backend.table("products").select("product_code", "category")
    bought = purchases.join(lines, "order_id").join(products, "product_code")
    counted = bought.group_by("person_id").aggregate(breadth=bought.category.nunique())
    joined = buyers.left_join(counted, "person_id", rname="{name}_c")
    return joined.select(
        person_id=joined.person_id, category_breadth=joined.breadth.coalesce(0).cast("int64")
    )


def upsell_potential(orders: ir.Table, scored: ir.Table) -> ir.Table:
    """Per buyer: ``person_id``, ``upsell_potential``; ``scored`` is the RFM table
    (:func:`surmesure.derive.rfm.rfm`), which gives the peers."""
    purchases = orders.filter(~orders.is_return)
    cents = (purchases.amount * 100).round().cast("int64")
    baskets = purchases.group_by("person_id").aggregate(
        cents=cents.sum(), orders=purchases.order_id.nunique()
    )
    baskets = baskets.select("person_id", basket=baskets.cents.cast("float64") / baskets.orders)
    peers = baskets.join(scored.select("person_id", "rfm_segment"), "person_id")
    segment = peers.rfm_segment
    # rank() is the 0-based minimum rank: by descending basket, the count of bigger baskets
    above = ibis.rank().over(group_by=segment, order_by=peers.basket.desc())
    others = peers.person_id.count().over(group_by=segment) - 1
    return peers.select(
        "person_id",
        upsell_potential=ibis.ifelse(
            others > 0, above.cast("float64") / others, ibis.null("float64")
        ),
    )


def breadth_and_upsell(backend: Any, orders: ir.Table, scored: ir.Table) -> ir.Table:
    """The table of ``BREADTH_COLUMNS``, one row per buyer."""
    breadth = category_breadth(backend, orders)
    upsell = upsell_potential(orders, scored)
    joined = breadth.left_join(upsell, "person_id", rname="{name}_u")
    return joined.select(*BREADTH_COLUMNS)


def percentile(values: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each finite value among the finite values; NaN stays NaN."""
    out = np.full(values.shape, np.nan)
    known = np.isfinite(values)
    if not known.any():
        return out
    ordered = np.sort(values[known])
    below = np.searchsorted(ordered, values[known], side="left")
    upto = np.searchsorted(ordered, values[known], side="right")
    out[known] = (below + (upto - below) / 2) / ordered.size
    return out


def weighted(parts: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """100 times the weighted mean of the finite parts per row, weights renormalized; NaN
    where no part is finite."""
    total = np.zeros(parts[0][0].shape)
    weights = np.zeros(parts[0][0].shape)
    for values, weight in parts:
        known = np.isfinite(values)
        total += np.where(known, values, 0.0) * weight
        weights += known * weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weights > 0, 100 * total / weights, np.nan)


def _floats(rows: pa.Table, name: str) -> np.ndarray:
    return np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def engagement_scores(rows: pa.Table) -> dict[str, pa.Array]:
    """The three scores (``SCORE_COLUMNS``) of the per-person rows (columns ``SCORE_INPUTS``),
    ranked within those rows; see the module docstring."""
    buyer = np.isfinite(_floats(rows, "frequency"))

    def component(name: str, inverted: bool) -> np.ndarray:
        values = _floats(rows, name)
        if name == "purchases_per_month":
            values = np.where(buyer, values, np.nan)
        ranked = percentile(values)
        return 1 - ranked if inverted else ranked

    relational = weighted([(component(c, inv), w) for c, w, inv in RELATIONAL])
    transactional = weighted([(component(c, inv), w) for c, w, inv in TRANSACTIONAL])
    overall = weighted([(relational / 100, 1.0), (transactional / 100, 1.0)])
    return {
        name: pa.array(values, pa.float64(), mask=~np.isfinite(values))
        for name, values in zip(SCORE_COLUMNS, (relational, transactional, overall), strict=True)
    }
