"""Satisfaction by segment: order, counts, margin and the small-sample flag, on an in-memory
table against figures computed by hand."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest

from surmesure.derive.segment_satisfaction import FEW, by_segment


def test_segments_in_rfm_order_with_margins_and_the_small_flag() -> None:
    rows = []
    # Champions: 40 NPS answers, 20 promoters, 10 passives, 10 detractors; 40 CSAT, 30 at 4-5
    rows += [("Champions", "nps", 10)] * 20 + [("Champions", "nps", 7)] * 10
    rows += [("Champions", "nps", 2)] * 10
    rows += [("Champions", "csat", 5)] * 30 + [("Champions", "csat", 2)] * 10
    rows += [("Champions", "ces", 3)] * 40
    # Lost, listed before Champions in the table: 3 answers only
    rows = [("Lost", "nps", 0), ("Lost", "nps", 10), ("Lost", "csat", 4), *rows]
    rows += [(None, "nps", 10)]  # no segment: left out
    table = ibis.memtable(
        pa.table(
            {
                "rfm_segment": [r[0] for r in rows],
                "metric": [r[1] for r in rows],
                "score": [r[2] for r in rows],
            }
        )
    )
    got = by_segment(table)
    assert [g.segment for g in got] == ["Champions", "Lost"]
    champions, lost = got
    assert (champions.nps_answers, champions.nps) == (40, pytest.approx(25.0))
    # p = 0.5, d = 0.25: variance (0.75 - 0.0625) / 40
    assert champions.nps_margin == pytest.approx(1.96 * 100 * (0.6875 / 40) ** 0.5)
    assert (champions.csat_answers, champions.csat) == (40, pytest.approx(0.75))
    assert (champions.ces_answers, champions.ces) == (40, pytest.approx(3.0))
    assert not champions.small and FEW <= 40
    assert (lost.nps_answers, lost.nps, lost.csat, lost.ces, lost.small) == (
        2,
        0.0,
        1.0,
        None,
        True,
    )
