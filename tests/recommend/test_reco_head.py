"""Scoring only the head of the fused ranking gives the list scoring everything gives."""

from __future__ import annotations

import random

from surmesure.decide.recommend.guardrails import cap_per_category
from surmesure.decide.recommend.model import Product
from surmesure.decide.recommend.scoring import Scoring, best_first, fused_scores
from surmesure.decide.recommend.service import _head


def full(
    associated: list[tuple[str, float, str]],
    kept: list[tuple[str, str]],
    products: dict[str, Product],
    k: int,
    per_category: int,
    scoring: Scoring,
) -> list[tuple[str, float, str | None, str | None]]:
    """Every product scored, then the first ``k`` under the cap (a full sort when the best
    few do not hold ``k``)."""
    scored, because = fused_scores(
        associated, kept, lambda _: True, scoring, priors_kept=True, associated_kept=True
    )
    score = dict(scored)
    top: list[str] = []
    for n in (4 * k * max(1, 4 // per_category) + 8, None):
        top = cap_per_category((c for c, _ in best_first(scored, n)), products, per_category, k)
        if len(top) >= k or n is None or n >= len(scored):
            break
    return [(c, score[c], because[c][1], because[c][2]) for c in top]


def test_the_head_gives_the_full_ranking() -> None:
    served = 0
    for seed in range(400):
        rng = random.Random(seed)
        categories = rng.randint(1, 8)
        codes = [f"P{i}" for i in range(rng.randint(5, 400))]
        products = {c: Product(c, c, f"c{rng.randrange(categories)}", 1.0) for c in codes}
        priors = ["segment", "season", "popular"]
        kept = [(c, rng.choice(priors)) for c in rng.sample(codes, len(codes))]
        kept = kept[: rng.randint(0, 300)]
        chosen = rng.sample(codes, min(len(codes), rng.choice([0, 1, 3, 10, 60])))
        associated = [(c, 1.0 / (1 + i), rng.choice(codes)) for i, c in enumerate(chosen)]
        k, per_category = rng.choice([1, 4, 10]), rng.choice([1, 2, 3])
        scoring = Scoring(prior_weight=rng.choice([0.3, 1.0, 3.0]))
        first = 4 * k * max(1, 4 // per_category) + 8
        found = _head(associated, kept, first, scoring, products, per_category, k)
        if found is None:  # fewer than k under the cap in the head: pick scores everything
            continue
        served += 1
        best, score, because = found
        got = [(c, score[c], because[c][1], because[c][2]) for c in best]
        assert got == full(associated, kept, products, k, per_category, scoring), seed
    assert served > 200  # most cases are answered by the head alone
