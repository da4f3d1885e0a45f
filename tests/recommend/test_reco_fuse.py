"""A block's fusion (:func:`~surmesure.decide.recommend.batch_arrays.fuse`) adds each
product's reciprocal ranks as one person's fusion (:func:`~surmesure.decide.recommend.scoring.
fused_ranked`) adds them, part after part, so each score is the same to the bit, and says each
product came from its strongest part, the first on a tie."""

from __future__ import annotations

import numpy as np

from surmesure.decide.recommend.batch_arrays import Part, fuse
from surmesure.decide.recommend.scoring import Scoring, fused_ranked


def _part(entries: list[tuple[int, int, int]], source: int, weight: float) -> Part:
    """``(row, column, rank)`` entries of one ranking, all from ``source``."""
    rows, columns, ranks = (np.asarray(v, np.int64) for v in zip(*entries, strict=True))
    return Part(rows, columns, ranks, np.full(rows.size, source), weight)


def test_a_block_fuses_each_row_as_one_person_is_fused() -> None:
    scoring = Scoring().with_learned()
    # row 1: the priors (p7), the neighbours (p7, p3), the tastes (p5, p7); p7's three parts
    # 0.5/10, 1/10 and 1/11 sum to another last bit taken right to left. Row 2: p4 first of
    # both learned rankings, two equal parts.
    parts = [
        _part([(1, 7, 0)], -2, scoring.prior_weight),
        _part([(1, 7, 0), (1, 3, 1), (2, 4, 0)], 0, scoring.neighbour_weight),
        _part([(1, 5, 0), (1, 7, 1), (2, 4, 0)], -1, scoring.taste_weight),
    ]
    fused = fuse(parts, 10, scoring)

    first, because_first = fused_ranked(
        [], [(0, "p7", "popular")], scoring,
        [(scoring.neighbour_weight, [("p7", "a", "neighbours"), ("p3", "a", "neighbours")]),
         (scoring.taste_weight, [("p5", None, "tastes"), ("p7", None, "tastes")])],
    )  # fmt: skip
    second, because_second = fused_ranked(
        [], [], scoring,
        [(scoring.neighbour_weight, [("p4", "a", "neighbours")]),
         (scoring.taste_weight, [("p4", None, "tastes")])],
    )  # fmt: skip
    alone = dict(first) | dict(second)
    because = because_first | because_second
    codes = ["p3", "p5", "p7", "p4"]
    assert fused.keys.tolist() == [13, 15, 17, 24]
    assert fused.score.tolist() == [alone[c] for c in codes]
    assert alone["p7"] != 0.5 / 10 + (1 / 10 + 1 / 11)  # (the order of the sum matters)
    named = {0: "neighbours", -1: "tastes", -2: "popular"}
    assert [named[int(s)] for s in fused.source] == [because[c][2] for c in codes]
    assert fused.source.tolist() == [0, -1, 0, 0]  # p4: the first of two equal parts
