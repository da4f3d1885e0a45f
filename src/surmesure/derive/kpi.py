"""Retention and value KPIs of the whole customer base at a date.

Over identified people and their orders on or before ``as_of`` (conventions of
:mod:`surmesure.derive.source`; a *buyer* has at least one purchase, a return is no purchase):

- ``repeat_purchase_rate``: share of buyers with two purchase orders or more;
- ``average_basket``: mean value of a purchase order (non-fee lines);
- ``revenue``: net value of the buyers' orders (purchases minus returns); ``revenue_per_customer``
  is that over the number of buyers; every amount is in ``currency``, the one currency of the
  stored orders (a store holding two refuses: see :mod:`surmesure.collect.currency`);
- ``top_decile_share``: share of the revenue made by the ``ceil(buyers / 10)`` buyers of highest
  net value (ties: the smaller person id first);
- churn at ``horizon_days`` ``h``: of the buyers with a purchase in the year before ``as_of - h``
  (days ``as_of - h - 364`` to ``as_of - h``), the share with no purchase in the last ``h`` days
  (``as_of - h + 1`` to ``as_of``); None when that base is empty;
- cohorts: buyers grouped by the calendar month of their first purchase; ``retention[m]`` is the
  share of a cohort with a purchase in the ``m``-th month after it (``retention[0]`` is 1),
  up to the month of ``as_of``;
- NPS (promoters 9-10 minus detractors 0-6, in % of answers), CSAT (share of 4-5) and CES (mean)
  over the answers of the ``window_days`` days ending on ``as_of``; the three by RFM segment at
  ``as_of`` (same window, :mod:`surmesure.derive.segment_satisfaction`) and NPS by calendar
  month of the answer (every answer by ``as_of``).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, Field

from surmesure.collect import currency
from surmesure.derive.rfm import rfm, rfm_values
from surmesure.derive.satisfaction import SatisfactionSummary, person_answers, summary
from surmesure.derive.segment_satisfaction import SegmentSatisfaction, by_segment
from surmesure.derive.source import ibis_backend, person_orders
from surmesure.errors import InvalidInput
from surmesure.store.engine import Store
from surmesure.store.span import default_as_of


class Cohort(BaseModel):
    """Buyers whose first purchase fell in ``month`` (YYYY-MM), and the share of them buying
    again in each later month (index 0: the first month itself)."""

    month: str
    customers: int
    retention: list[float]


class NpsGroup(BaseModel):
    """The NPS of a group of answers (a month)."""

    group: str
    answers: int
    nps: float


class Kpis(BaseModel):
    """The headline KPIs at ``as_of``; see :mod:`surmesure.derive.kpi` for every definition."""

    as_of: date
    currency: str | None = Field(
        None, description="ISO 4217 code of every amount (revenue, basket); None: no currency"
    )
    buyers: int
    purchase_orders: int
    revenue: float
    repeat_purchase_rate: float | None
    average_basket: float | None
    revenue_per_customer: float | None
    top_decile_share: float | None
    churn_horizon_days: int
    churn_base: int = Field(description="buyers active in the year before as_of - horizon")
    churned: int
    churn_rate: float | None
    cohorts: list[Cohort]
    satisfaction: SatisfactionSummary
    window_days: int
    satisfaction_by_segment: list[SegmentSatisfaction]
    nps_by_month: list[NpsGroup]
    as_of_note: str | None = Field(
        None, description="why as_of is not today, when it was not given and is not"
    )


def _month_index(day: ir.DateValue) -> ir.IntegerValue:
    return day.year() * 12 + day.month() - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def cohorts(orders: ir.Table, as_of: date) -> list[Cohort]:
    """The cohort retention matrix from :func:`person_orders`."""
    bought = orders.filter(~orders.is_return)
    bought = bought.select("person_id", month=_month_index(bought.order_day))
    first = bought.group_by("person_id").aggregate(cohort=bought.month.min())
    joined = bought.join(first, "person_id")
    cells = joined.group_by("cohort", offset=joined.month - joined.cohort).aggregate(
        people=joined.person_id.nunique()
    )
    last = as_of.year * 12 + as_of.month - 1
    counts: dict[int, dict[int, int]] = {}
    for row in cells.to_pyarrow().to_pylist():
        counts.setdefault(int(row["cohort"]), {})[int(row["offset"])] = int(row["people"])
    result = []
    for cohort in sorted(counts):
        size = counts[cohort][0]
        retention = [counts[cohort].get(m, 0) / size for m in range(last - cohort + 1)]
        result.append(Cohort(month=_month_name(cohort), customers=size, retention=retention))
    return result


def _nps(table: ir.Table, key: ir.Value) -> list[NpsGroup]:
    nps = table.filter(table.metric == "nps")
    grouped = nps.group_by(group=key).aggregate(
        answers=nps.score.count(),
        promoters=(nps.score >= 9).sum(),
        detractors=(nps.score <= 6).sum(),
    )
    rows = grouped.filter(grouped.group.notnull()).to_pyarrow().to_pylist()
    return [
        NpsGroup(
            group=str(r["group"]),
            answers=int(r["answers"]),
            nps=100 * (int(r["promoters"]) - int(r["detractors"])) / int(r["answers"]),
        )
        for r in sorted(rows, key=lambda r: str(r["group"]))
    ]


def value_kpis(backend: Any, as_of: date, orders: ir.Table) -> dict[str, Any]:
    """Buyers, orders, revenue, repeat rate, basket and top-decile share."""
    values = rfm_values(backend, as_of, orders)
    row = values.aggregate(
        buyers=values.person_id.count(),
        repeaters=(values.frequency >= 2).sum(),
        revenue=values.monetary.sum(),
    )
    totals = row.to_pyarrow().to_pylist()[0]
    purchases = orders.filter(~orders.is_return)
    basket = purchases.aggregate(n=purchases.order_id.count(), amount=purchases.amount.sum())
    baskets = basket.to_pyarrow().to_pylist()[0]
    buyers = int(totals["buyers"] or 0)
    revenue = float(totals["revenue"] or 0.0)
    top = math.ceil(buyers / 10)
    ranked = values.order_by([values.monetary.desc(), values.person_id.asc()]).limit(top)
    top_revenue = ranked.aggregate(total=ranked.monetary.sum()).to_pyarrow().to_pylist()[0]
    n = int(baskets["n"] or 0)
    return {
        "buyers": buyers,
        "purchase_orders": n,
        "revenue": revenue,
        "repeat_purchase_rate": int(totals["repeaters"]) / buyers if buyers else None,
        "average_basket": float(baskets["amount"]) / n if n else None,
        "revenue_per_customer": revenue / buyers if buyers else None,
        "top_decile_share": (float(top_revenue["total"]) / revenue if buyers and revenue else None),
    }


def churn(orders: ir.Table, as_of: date, horizon_days: int) -> tuple[int, int]:
    """(base, churned) at the horizon; see the module docstring."""
    cut = as_of - timedelta(days=horizon_days)
    purchases = orders.filter(~orders.is_return)
    day = purchases.order_day
    per_person = purchases.group_by("person_id").aggregate(
        before=((day > ibis.date(cut - timedelta(days=365))) & (day <= ibis.date(cut))).sum(),
        after=(day > ibis.date(cut)).sum(),
    )
    base = per_person.filter(per_person.before > 0)
    row = base.aggregate(base=base.count(), churned=(base.after == 0).sum())
    counts = row.to_pyarrow().to_pylist()[0]
    return int(counts["base"] or 0), int(counts["churned"] or 0)


def kpis(
    store: Store,
    *,
    as_of: date | None = None,
    horizon_days: int = 90,
    window_days: int = 365,
) -> Kpis:
    """Every KPI at ``as_of`` (default: :func:`~surmesure.store.span.default_as_of`)."""
    note = None
    if as_of is None:
        as_of, note = default_as_of(store, datetime.now(UTC).date())
    for name, value in (("horizon_days", horizon_days), ("window_days", window_days)):
        if value <= 0:
            raise InvalidInput(
                f"{name.replace('_', ' ').capitalize()} {value} is not positive.",
                hint=f"use --{name.replace('_', '-')} with a positive number of days",
                field=name,
            )
    with store.connect() as conn:
        money = currency.single_currency(conn)
    with ibis_backend(store) as backend, person_orders(backend, as_of).cache() as orders:
        values = value_kpis(backend, as_of, orders)
        base, churned = churn(orders, as_of, horizon_days)
        matrix = cohorts(orders, as_of)
        answers = person_answers(backend, as_of)
        recent = answers.filter(
            answers.answered_at >= ibis.timestamp(as_of - timedelta(days=window_days - 1))
        )
        segments = rfm(backend, as_of, orders).select("person_id", "rfm_segment")
        tagged = recent.left_join(segments, "person_id", rname="{name}_rfm")
        segments_satisfaction = by_segment(tagged)
        month = answers.answered_at.date()
        by_month = _nps(
            answers,
            month.year().cast("string").lpad(4, "0")
            + "-"
            + month.month().cast("string").lpad(2, "0"),
        )
        overall = summary(backend, as_of, window_days)
    return Kpis(
        as_of=as_of,
        as_of_note=note,
        currency=money,
        **values,
        churn_horizon_days=horizon_days,
        churn_base=base,
        churned=churned,
        churn_rate=churned / base if base else None,
        cohorts=matrix,
        satisfaction=overall,
        window_days=window_days,
        satisfaction_by_segment=segments_satisfaction,
        nps_by_month=by_month,
    )
