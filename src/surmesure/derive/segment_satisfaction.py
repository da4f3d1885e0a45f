"""NPS, CSAT and CES by RFM segment, in the segments' order, with counts and a small-sample flag.

Over the answers of the window (see :mod:`surmesure.derive.kpi`) of people who have an RFM
segment at ``as_of``. Each figure comes with the number of answers behind it and, for NPS, the
half-width of its 95% interval in points (normal approximation: the score of one answer is
+100, 0 or -100, so the variance of the NPS is ``(pro + det - (pro - det)^2) / n * 100^2``).
A figure resting on fewer than :data:`FEW` answers is flagged ``small``: it moves by tens of
points from one answer to the next and should not be compared.
"""

from __future__ import annotations

import math

import ibis.expr.types as ir
from pydantic import BaseModel

from surmesure.derive.rfm import SEGMENTS

FEW = 30
"""Answers below which a segment's figure is flagged as resting on a small sample."""


class SegmentSatisfaction(BaseModel):
    """One RFM segment's answers in the window; a figure is None without an answer."""

    segment: str
    nps_answers: int
    nps: float | None
    nps_margin: float | None
    csat_answers: int
    csat: float | None
    ces_answers: int
    ces: float | None
    small: bool


def _nps_margin(promoters: int, detractors: int, n: int) -> float | None:
    if n < 2:
        return None
    pro, det = promoters / n, detractors / n
    return 1.96 * 100 * math.sqrt(max(pro + det - (pro - det) ** 2, 0.0) / n)


def by_segment(tagged: ir.Table) -> list[SegmentSatisfaction]:
    """``tagged``: answers with ``rfm_segment``; one row per segment holding an answer, in
    :data:`~surmesure.derive.rfm.SEGMENTS` order."""
    scored = tagged.filter(tagged.rfm_segment.notnull())
    grouped = scored.group_by(segment=scored.rfm_segment, metric=scored.metric).aggregate(
        answers=scored.score.count(),
        high=(
            ((scored.metric == "nps") & (scored.score >= 9))
            | ((scored.metric == "csat") & (scored.score >= 4))
        ).sum(),
        low=((scored.metric == "nps") & (scored.score <= 6)).sum(),
        mean=scored.score.cast("float64").mean(),
    )
    cells: dict[tuple[str, str], dict[str, float]] = {
        (str(r["segment"]), str(r["metric"])): r for r in grouped.to_pyarrow().to_pylist()
    }
    out = []
    for segment in SEGMENTS:
        nps = cells.get((segment, "nps"))
        csat = cells.get((segment, "csat"))
        ces = cells.get((segment, "ces"))
        if nps is None and csat is None and ces is None:
            continue
        n_nps = int(nps["answers"]) if nps else 0
        n_csat = int(csat["answers"]) if csat else 0
        n_ces = int(ces["answers"]) if ces else 0
        out.append(
            SegmentSatisfaction(
                segment=segment,
                nps_answers=n_nps,
                nps=100 * (nps["high"] - nps["low"]) / n_nps if nps else None,
                nps_margin=_nps_margin(int(nps["high"]), int(nps["low"]), n_nps) if nps else None,
                csat_answers=n_csat,
                csat=csat["high"] / n_csat if csat else None,
                ces_answers=n_ces,
                ces=float(ces["mean"]) if ces else None,
                small=min(n for n in (n_nps, n_csat, n_ces) if n) < FEW,
            )
        )
    return out
