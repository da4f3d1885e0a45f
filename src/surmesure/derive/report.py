"""The derive report: one self-contained HTML page of the customer base, pictures first.

Reads the latest run of ``derive`` (the rows of the latest ``computed_on`` in
``derived_metrics``) and computes the KPIs (:mod:`surmesure.derive.kpi`) at that run's
``as_of``. The page holds the headline KPIs, then the RFM grid (people and revenue), the CLV
distribution with its top decile, the cohort retention heatmap, NPS by month, the channel
appetence and the engagement score by RFM segment, each as inline SVG: no script, no style
sheet, no network. A figure whose data is missing is replaced by a sentence saying what would
fill it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pyarrow as pa
from markupsafe import Markup
from pydantic import BaseModel

from surmesure.derive import plots
from surmesure.derive.appetence import CHANNELS
from surmesure.derive.kpi import Kpis, kpis
from surmesure.derive.money import money
from surmesure.derive.report_page import PAGE, SECTIONS
from surmesure.derive.rfm import SEGMENTS
from surmesure.derive.segment_satisfaction import FEW
from surmesure.derive.source import ibis_backend
from surmesure.store.engine import Store

READ = (
    "person_id", "as_of", "r_score", "fm_score", "rfm_segment", "monetary", "expected_value",
    "engagement_score", *(f"appetence_{c}" for c in CHANNELS),
)  # fmt: skip


class ReportResult(BaseModel):
    """Where the report went and what it shows."""

    path: str
    bytes: int
    as_of: date
    people: int
    figures: list[str]
    kpis: Kpis


def latest_run(store: Store) -> pa.Table:
    """The rows of the latest ``derive`` run (columns ``READ``); empty when none ran."""
    with ibis_backend(store) as backend:
        metrics = backend.table("derived_metrics")
        latest = metrics.computed_on.max().as_scalar()
        rows = metrics.filter(metrics.computed_on == latest).select(*READ)
        return rows.to_pyarrow()


def _column(rows: pa.Table, name: str) -> np.ndarray:
    return np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def rfm_cells(rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """People and net revenue per (R score, FM score) cell: ``[r - 1, fm - 1]``."""
    r, fm = _column(rows, "r_score"), _column(rows, "fm_score")
    scored = np.isfinite(r) & np.isfinite(fm)
    cell = (r[scored].astype(int) - 1) * 5 + fm[scored].astype(int) - 1
    money = np.nan_to_num(_column(rows, "monetary")[scored])
    counts = np.bincount(cell, minlength=25).reshape(5, 5).astype(float)
    return counts, np.bincount(cell, weights=money, minlength=25).reshape(5, 5)


MONTHS_SHOWN = 24
"""Past this many cohorts, the cohort chart shows quarters: 3 x fewer rows and columns."""


def by_quarter(
    months: list[str], sizes: list[int], matrix: np.ndarray
) -> tuple[list[str], list[int], np.ndarray, str]:
    """Monthly cohorts (``YYYY-MM``, buyers, retention by month since: column 0 is the first
    month) as quarterly ones when there are more than :data:`MONTHS_SHOWN`, else unchanged; and
    the unit of the columns ("months" or "quarters").

    A quarter's cohort holds the buyers of its three months. Its retention ``q >= 1`` quarters
    later is the mean of its months' shares over months since ``3q - 2 .. 3q``, each weighted by
    its month's buyers, over the cells that have already happened (a NaN cell, the future, is
    left out; NaN where none has). Column 0 is 1, as a cohort's own first period always is.
    """
    if len(months) <= MONTHS_SHOWN:
        return months, sizes, matrix, "months"
    quarter = np.asarray([f"{m[:4]}-Q{(int(m[5:7]) - 1) // 3 + 1}" for m in months])
    names = list(dict.fromkeys(quarter.tolist()))
    weight = np.asarray(sizes, dtype=np.float64)
    columns = 1 + (matrix.shape[1] + 1) // 3
    out = np.full((len(names), columns), np.nan)
    out[:, 0] = 1.0
    for i, name in enumerate(names):
        rows = quarter == name
        for q in range(1, columns):
            cells = matrix[rows, 3 * q - 2 : 3 * q + 1]
            w = np.broadcast_to(weight[rows, None], cells.shape)
            seen = np.isfinite(cells)
            if seen.any():
                out[i, q] = float((cells[seen] * w[seen]).sum() / w[seen].sum())
    totals = [int(weight[quarter == name].sum()) for name in names]
    return names, totals, out, "quarters"


def appetence_cells(
    segment: np.ndarray, present: list[str], rates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (rows, ``present`` order) and channel: the mean appetence of the people with
    one, and how many they are (NaN mean where nobody)."""
    means = np.full((len(present), rates.shape[1]), np.nan)
    people = np.zeros((len(present), rates.shape[1]))
    for i, name in enumerate(present):
        chosen = rates[segment == name]
        seen = np.isfinite(chosen).sum(axis=0)
        totals = np.nansum(chosen, axis=0)
        means[i] = np.where(seen > 0, totals / np.maximum(seen, 1), np.nan)
        people[i] = seen
    return means, people


def figures(rows: pa.Table, k: Kpis) -> dict[str, str]:
    """Every figure that has data, by title, as SVG."""
    out: dict[str, str] = {}
    counts, revenue = rfm_cells(rows)
    if counts.sum() > 0:
        out["RFM grid"] = plots.rfm_grid(counts, revenue)
    value = _column(rows, "expected_value")
    if np.isfinite(value).any():
        out["Customer lifetime value"] = plots.clv_distribution(value[np.isfinite(value)])
    if k.cohorts:
        width = max(len(c.retention) for c in k.cohorts)
        matrix = np.full((len(k.cohorts), width), np.nan)
        for i, c in enumerate(k.cohorts):
            matrix[i, : len(c.retention)] = c.retention
        labels, sizes, matrix, unit = by_quarter(
            [c.month for c in k.cohorts], [c.customers for c in k.cohorts], matrix
        )
        out["Cohort retention"] = plots.retention_heatmap(labels, sizes, matrix, unit)
    if k.nps_by_month:
        out["NPS by month"] = plots.nps_over_time(
            [g.group for g in k.nps_by_month],
            [g.nps for g in k.nps_by_month],
            [g.answers for g in k.nps_by_month],
        )
    segment = np.asarray(rows.column("rfm_segment").to_pylist(), dtype=object)
    rates = np.column_stack([_column(rows, f"appetence_{c}") for c in CHANNELS])
    present = [s for s in SEGMENTS if (segment == s).any()]
    if present and np.isfinite(rates).any():
        means, people = appetence_cells(segment, present, rates)
        out["Channel appetence by segment"] = plots.appetence_by_segment(
            present, CHANNELS, means, people
        )
    score = _column(rows, "engagement_score")
    scored = [(s, score[(segment == s) & np.isfinite(score)]) for s in present]
    scored = [(s, values) for s, values in scored if values.size]
    if scored:
        out["Engagement by segment"] = plots.engagement_by_segment(
            [s for s, _ in scored], [values for _, values in scored]
        )
    return out


def _headline(k: Kpis) -> list[tuple[str, str]]:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1%}"

    s = k.satisfaction
    return [
        ("buyers", f"{k.buyers:,}"),
        ("net revenue", money(k.revenue, k.currency)),
        ("revenue per customer", money(k.revenue_per_customer, k.currency)),
        ("average basket", money(k.average_basket, k.currency)),
        ("repeat purchase rate", pct(k.repeat_purchase_rate)),
        ("revenue from the top 10 %", pct(k.top_decile_share)),
        (f"churn at {k.churn_horizon_days} days", pct(k.churn_rate)),
        (f"NPS ({s.answers.get('nps', 0):,} answers)", "n/a" if s.nps is None else f"{s.nps:.0f}"),
        ("CSAT (share of 4-5)", pct(s.csat)),
        ("CES (mean, 1-7)", "n/a" if s.ces is None else f"{s.ces:.2f}"),
    ]


def render(rows: pa.Table, k: Kpis, pictures: dict[str, str], generated_at: datetime) -> str:
    """The HTML page around the figures (SVG, by title)."""
    template = jinja2.Environment(autoescape=True).from_string(PAGE)
    context: dict[str, Any] = {
        "as_of": k.as_of,
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "people": rows.num_rows,
        "headline": _headline(k),
        "figures": {title: Markup(svg) for title, svg in pictures.items()},
        "segments": k.satisfaction_by_segment,
        "few": FEW,
        "sections": SECTIONS,
        "window_days": k.window_days,
    }
    return template.render(context)


def write_report(
    store: Store, out: Path, *, horizon_days: int = 90, window_days: int = 365
) -> ReportResult:
    """Write the report of the latest ``derive`` run to ``out`` (folders created)."""
    rows = latest_run(store)
    as_of = rows.column("as_of")[0].as_py() if rows.num_rows else datetime.now(UTC).date()
    k = kpis(store, as_of=as_of, horizon_days=horizon_days, window_days=window_days)
    pictures = figures(rows, k)
    page = render(rows, k, pictures, datetime.now(UTC))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return ReportResult(
        path=str(out),
        bytes=len(page.encode()),
        as_of=as_of,
        people=rows.num_rows,
        figures=list(pictures),
        kpis=k,
    )
