"""The report's figures' numbers: appetence cells with their head counts, and cohorts folded
into quarters past 24 months, against hand computations; the figures render them."""

from __future__ import annotations

import numpy as np
import pytest

from surmesure.derive import plots
from surmesure.derive.report import MONTHS_SHOWN, appetence_cells, by_quarter

NAN = float("nan")


def test_appetence_cells_count_the_people_behind_each_mean() -> None:
    segment = np.array(["Loyal", "Loyal", "Lost", "Loyal", "Lost"], dtype=object)
    rates = np.array(
        [[0.2, NAN], [0.4, 0.1], [0.05, NAN], [NAN, NAN], [0.15, NAN]], dtype=np.float64
    )
    means, people = appetence_cells(segment, ["Loyal", "Lost"], rates)
    assert people.tolist() == [[2, 1], [2, 0]]
    assert means[0].tolist() == pytest.approx([0.3, 0.1])
    assert means[1, 0] == pytest.approx(0.1) and np.isnan(means[1, 1])
    svg = plots.appetence_by_segment(["Loyal", "Lost"], ["email", "sms"], means, people)
    assert "2 people" in svg and "1 people" in svg and "from 0" in svg


def _months(n: int) -> list[str]:
    return [f"{2020 + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


def test_up_to_24_cohorts_stay_monthly() -> None:
    matrix = np.ones((MONTHS_SHOWN, 3))
    names, _, same, unit = by_quarter(_months(MONTHS_SHOWN), [1] * MONTHS_SHOWN, matrix)
    assert unit == "months" and same is matrix and names[0] == "2020-01"


def test_past_24_cohorts_are_quarters_weighted_by_buyers() -> None:
    n = 30
    months = _months(n)
    sizes = [10 * (i + 1) for i in range(n)]
    rng = np.random.default_rng(0)
    matrix = np.full((n, n), NAN)
    for i in range(n):  # cohort i has months since 0 .. n - 1 - i
        matrix[i, : n - i] = np.r_[1.0, rng.random(n - i - 1)]
    names, totals, out, unit = by_quarter(months, sizes, matrix)
    assert unit == "quarters" and len(names) == 10 and names[:2] == ["2020-Q1", "2020-Q2"]
    assert totals[0] == 10 + 20 + 30 and sum(totals) == sum(sizes)
    assert out.shape == (10, 1 + (n + 1) // 3) and (out[:, 0] == 1).all()
    # by hand: the first quarter, one quarter later = months since 1..3 of Jan, Feb, Mar
    cells = [(matrix[r, m], sizes[r]) for r in range(3) for m in (1, 2, 3)]
    want = sum(v * w for v, w in cells) / sum(w for _, w in cells)
    assert out[0, 1] == pytest.approx(want)
    # the last quarter (cohorts 27-29, seen 2, 1 and 0 months after): the cells that exist
    cells = [
        (matrix[r, m], sizes[r]) for r in (27, 28) for m in (1, 2) if np.isfinite(matrix[r, m])
    ]
    assert out[9, 1] == pytest.approx(sum(v * w for v, w in cells) / sum(w for _, w in cells))
    assert np.isnan(out[9, 2])
    svg = plots.retention_heatmap(names, totals, out, unit)
    assert "quarters since the first purchase" in svg and "2020-Q1 (60)" in svg
