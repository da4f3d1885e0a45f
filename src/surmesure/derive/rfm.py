"""RFM: recency, frequency and monetary value per person, scored 1-5 and named.

Per identified person with at least one purchase (a non-return order) on or before ``as_of``:

- ``recency_days``: days from the last purchase day to ``as_of`` (0 = bought that day);
- ``frequency``: distinct purchase orders (returns are not purchases);
- ``monetary``: value of purchases minus returns (non-fee lines), in the orders' currency.

Scores are quintiles of equal size: buyers are ranked ``i = 0 .. n-1`` from the worst to the
best value and scored ``1 + floor(5 i / n)``. Ties are broken by the other measures, so that
among one-time buyers the bigger spenders get the higher F, then by ``person_id`` so that every
engine gives every person the same score:

- R: recency descending (the most recent score 5), then frequency, then monetary;
- F: frequency, then monetary, then recency descending;
- M: monetary, then frequency, then recency descending.

Monetary values are ranked in whole cents so that float sums taken in another order cannot
change a score. The ``FM`` score is ``round((F + M) / 2)``, halves rounded up.

Segments come from the usual grid of R score (rows) by FM score (columns):

    R \\ FM  1               2               3               4               5
    5       New             Potential loy.  Potential loy.  Champions       Champions
    4       Promising       Potential loy.  Potential loy.  Loyal           Loyal
    3       About to sleep  About to sleep  Need attention  Loyal           Loyal
    2       Hibernating     Hibernating     At risk         At risk         Can't lose them
    1       Lost            Hibernating     At risk         At risk         Can't lose them

People who never bought (only returns, or no order) get no RFM row.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir

from surmesure.derive.source import days_between, person_orders

SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
)

# (R score, FM scores) -> segment; the table in the module docstring, row by row.
GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
    4: ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    1: ("Lost", "Hibernating", "At risk", "At risk", "Can't lose them"),
}

RFM_COLUMNS = (
    "person_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "fm_score",
    "rfm_segment",
)


def segment_of(r_score: int, fm_score: int) -> str:
    """The named segment of an (R, FM) pair of scores, each 1-5."""
    return GRID[r_score][fm_score - 1]


def fm_score_of(f_score: int, m_score: int) -> int:
    """``round((F + M) / 2)``, halves rounded up."""
    return (f_score + m_score + 1) // 2


def rfm_values(backend: Any, as_of: date, orders: ir.Table | None = None) -> ir.Table:
    """Per buyer: ``person_id``, ``recency_days``, ``frequency``, ``monetary`` (unscored);
    ``orders`` is :func:`person_orders` when already at hand."""
    orders = person_orders(backend, as_of) if orders is None else orders
    per_person = orders.group_by("person_id").aggregate(
        last_purchase=orders.order_day.max(where=~orders.is_return),
        frequency=orders.order_id.nunique(where=~orders.is_return),
        monetary=orders.amount.sum(),
    )
    buyers = per_person.filter(per_person.frequency > 0)
    return buyers.select(
        "person_id",
        recency_days=days_between(ibis.date(as_of), buyers.last_purchase),
        frequency=buyers.frequency,
        monetary=buyers.monetary,
    )


def _quintile(total: ir.IntegerValue, *order_by: ir.Value) -> ir.IntegerValue:
    # row_number() is 0-based on every backend
    position = ibis.row_number().over(order_by=list(order_by))
    return (position * 5 // total + 1).cast("int16")


def rfm(backend: Any, as_of: date, orders: ir.Table | None = None) -> ir.Table:
    """The RFM table (columns ``RFM_COLUMNS``), one row per buyer; see the module docstring."""
    values = rfm_values(backend, as_of, orders)
    cents = (values.monetary * 100).round().cast("int64")
    recency, frequency, person = values.recency_days, values.frequency, values.person_id
    total = person.count().over(ibis.window())
    scored = values.mutate(
        r_score=_quintile(total, recency.desc(), frequency.asc(), cents.asc(), person.asc()),
        f_score=_quintile(total, frequency.asc(), cents.asc(), recency.desc(), person.asc()),
        m_score=_quintile(total, cents.asc(), frequency.asc(), recency.desc(), person.asc()),
    )
    scored = scored.mutate(fm_score=((scored.f_score + scored.m_score + 1) // 2).cast("int16"))
    cases = [
        ((scored.r_score == r) & (scored.fm_score == fm), name)
        for r, row in GRID.items()
        for fm, name in enumerate(row, start=1)
    ]
    scored = scored.mutate(rfm_segment=ibis.cases(*cases, else_=ibis.null("string")))
    return scored.select(*RFM_COLUMNS)
