"""The learned ranker's order fused with today's: many rows at once give what a plain sort of
each row gives, ties included, and the ranker's verdict counts for today's first ``KEEP``
products only."""

from __future__ import annotations

import numpy as np

from surmesure.decide.recommend import ranker
from surmesure.decide.recommend.ranker import KEEP
from surmesure.decide.recommend.scoring import best_first


def _rows(rng: np.random.Generator) -> list[tuple[list[str], list[float], list[float]]]:
    """Rows of products (codes, today's scores, the ranker's), many of them tied: scores are
    drawn from a few values, and some products are not scored by the ranker (``-1``)."""
    rows = []
    for size in (1, 5, KEEP - 1, KEEP, KEEP + 1, 2 * KEEP + 37, 300):
        codes = [f"P{j:04d}" for j in rng.choice(5000, size, replace=False)]
        today = (rng.integers(1, 40, size) / 97).tolist()
        theirs = np.where(rng.random(size) < 0.1, -1.0, rng.integers(0, 60, size) / 61).tolist()
        rows.append((codes, today, theirs))
    return rows


def _sorted_blend(codes: list[str], today: list[float], theirs: list[float]) -> list[float]:
    """The blend of one row by plain sorts: the ranker's verdict dropped past today's first
    ``KEEP`` (by score, then code), then ``1 / (10 + place)`` in either order summed."""
    n = len(codes)
    first = sorted(range(n), key=lambda j: (-today[j], codes[j]))[:KEEP]
    mine = [theirs[j] if j in set(first) else -1.0 for j in range(n)]
    by_ranker = sorted(range(n), key=lambda j: (-mine[j], -today[j], codes[j]))
    by_today = sorted(range(n), key=lambda j: (-today[j], -mine[j], codes[j]))
    place_ranker = {j: p for p, j in enumerate(by_ranker)}
    place_today = {j: p for p, j in enumerate(by_today)}
    return [1 / (10 + place_ranker[j]) + 1 / (10 + place_today[j]) for j in range(n)]


def test_many_rows_blend_as_each_row_sorted_alone() -> None:
    rows = _rows(np.random.default_rng(5))
    # one person's form
    for codes, today, theirs in rows:
        learned = {c: s for c, s in zip(codes, theirs, strict=True) if s >= 0}
        got = ranker.blended(list(zip(codes, today, strict=True)), learned)
        assert [c for c, _ in got] == codes
        assert [s for _, s in got] == _sorted_blend(codes, today, theirs)
    # the batch's form: every row at once, codes as sortable numbers
    who = np.concatenate([np.full(len(r[0]), i) for i, r in enumerate(rows)])
    codes = np.concatenate([[int(c[1:]) for c in r[0]] for r in rows])
    today = np.concatenate([r[1] for r in rows])
    theirs = np.concatenate([r[2] for r in rows])
    # the rows interleaved, each one's products in code order
    mixed = np.argsort(codes, kind="stable")
    who, codes, today, theirs = who[mixed], codes[mixed], today[mixed], theirs[mixed]
    places = ranker.places_today(who, today)
    got = ranker.blend(who, today, theirs, places)
    for i, (row_codes, row_today, row_theirs) in enumerate(rows):
        mine = who == i
        assert sorted(places[mine].tolist()) == list(range(len(row_codes)))
        alone = _sorted_blend(row_codes, row_today, row_theirs)
        expected = dict(zip(row_codes, alone, strict=True))
        assert {f"P{c:04d}": s for c, s in zip(codes[mine], got[mine], strict=True)} == expected


def test_the_ranker_counts_for_todays_first_products_only() -> None:
    codes = [f"P{j:03d}" for j in range(KEEP + 20)]
    scored = [(c, 1.0 / (1 + j)) for j, c in enumerate(codes)]
    learned = {c: 0.5 for c in codes}
    plain = ranker.blended(scored, learned)
    # the ranker's verdict past today's first KEEP changes nothing
    past = {**learned, **{c: 0.99 for c in codes[KEEP:]}}
    assert ranker.blended(scored, past) == plain
    # within them, it does: the last one counted rises to the top of the ranker's order
    within = {**learned, codes[KEEP - 1]: 0.99}
    assert dict(ranker.blended(scored, within))[codes[KEEP - 1]] > dict(plain)[codes[KEEP - 1]]


def test_one_row_in_todays_order_blends_as_the_sorted_row() -> None:
    """One person's form given today's order (best first, ties by code): the same scores to
    the bit as the row blended by arrays, ties and unscored products included."""
    for codes, today, theirs in _rows(np.random.default_rng(11)):
        learned = {c: s for c, s in zip(codes, theirs, strict=True) if s >= 0}
        scored = list(zip(codes, today, strict=True))
        ordered = best_first(scored)
        got = ranker.blended_ranked(ordered, learned)
        assert [c for c, _ in got] == [c for c, _ in ordered]
        assert dict(got) == dict(ranker.blended(scored, learned))
        assert dict(got) == dict(zip(codes, _sorted_blend(codes, today, theirs), strict=True))
    assert ranker.blended_ranked([], {}) == []
