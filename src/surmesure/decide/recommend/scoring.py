"""Scoring, pure: complementary products from a person's baskets, fused with a prior.

The complementary score of a product ``C`` sums, over the products ``A`` the person bought,
``w(A) * confidence(A -> C) * log(1 + lift(A -> C))`` where ``w(A)`` halves every
``history_half_life_days`` since ``A`` was last bought: recent baskets speak loudest, and lift
rewards true complements without letting rare pairs run away. That ranking is fused with a
popularity prior (segment, then the same season last year, then overall) by weighted
reciprocal rank, ``weight / (fusion_k + rank)``, a fusion that needs no calibration between
the two scales. When the model learned neighbours and tastes
(:mod:`~surmesure.decide.recommend.learned`), those two rankings take the rules' place and are
fused the same way with the prior, "popular lately" first (:meth:`Scoring.with_learned`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from itertools import count, repeat
from typing import Any, TypeVar

from surmesure.decide.recommend.association import Rules

T = TypeVar("T", bound=tuple[Any, ...])


@dataclass(frozen=True)
class Scoring:
    """Tuning of the scoring, measured out of sample on Online Retail II (benchmark)."""

    history_half_life_days: float = 30.0
    fusion_k: float = 5.0
    association_weight: float = 1.0
    prior_weight: float = 1.0
    depth: int = 300
    #: when the model has learned signals (enough data): the weights of the neighbours and
    #: tastes, the half-life of a purchase in the neighbours' sum, and the fusion constant,
    #: weight of the priors (lately first) and depth of each list then. The co-purchase rules
    #: take no part then (the neighbours hold what they said: adding them back at a third or
    #: more of the weight changed nothing out of sample) and are not mined.
    neighbour_weight: float = 1.0
    taste_weight: float = 1.0
    neighbour_half_life_days: float = 90.0
    learned_fusion_k: float = 10.0
    learned_prior_weight: float = 0.5
    learned_depth: int = 100

    def with_learned(self) -> Scoring:
        """This scoring as it fuses when learned signals take part (made once a scoring)."""
        return _with_learned(self)


@lru_cache(maxsize=64)
def _with_learned(scoring: Scoring) -> Scoring:
    return replace(
        scoring,
        fusion_k=scoring.learned_fusion_k,
        association_weight=0.0,
        prior_weight=scoring.learned_prior_weight,
        depth=scoring.learned_depth,
    )


@dataclass(frozen=True)
class Candidate:
    """A scored product and why: the antecedent it complements, or the prior it came from."""

    product_code: str
    score: float
    because_of: str | None
    prior: str | None


def complementary(
    purchases: Iterable[tuple[datetime, str]],
    rules: Rules,
    as_of: datetime,
    half_life_days: float,
) -> list[tuple[str, float, str]]:
    """Products complementing ``purchases``, best first: ``(code, score, strongest
    antecedent)``. Products already in ``purchases`` may appear; guardrails remove them."""
    latest: dict[str, datetime] = {}
    for at, code in purchases:
        if code not in latest or at > latest[code]:
            latest[code] = at
    scores: dict[str, float] = {}
    strongest: dict[str, float] = {}
    because: dict[str, str] = {}
    strengths = rules.strengths
    for antecedent, at in latest.items():
        age = max((as_of - at).total_seconds() / 86_400.0, 0.0)
        weight = 0.5 ** (age / half_life_days)
        for consequent, strength in strengths.get(antecedent, ()):
            part = weight * strength
            held = strongest.get(consequent)
            if held is None:
                scores[consequent] = part
                strongest[consequent] = part
                because[consequent] = antecedent
            else:
                scores[consequent] += part
                if part > held:
                    strongest[consequent] = part
                    because[consequent] = antecedent
    ranked = sorted([(-score, code) for code, score in scores.items()])
    return [(code, -negative, because[code]) for negative, code in ranked]


def fuse(
    associated: Sequence[tuple[str, float, str]],
    priors: Sequence[tuple[str, str]],
    keep: Callable[[str], bool],
    scoring: Scoring,
) -> list[Candidate]:
    """Both rankings, filtered by ``keep`` then fused; ``priors`` holds ``(code, prior
    name)`` best first. Best first, ties by product code."""
    scored, because = fused_scores(associated, priors, keep, scoring)
    ranked = best_first(scored)
    return [Candidate(code, score, because[code][1], because[code][2]) for code, score in ranked]


def fused_scores(
    associated: Sequence[tuple[str, float, str]],
    priors: Sequence[tuple[str, str]],
    keep: Callable[[str], bool],
    scoring: Scoring,
    keep_prior: Callable[[str], bool] | None = None,
    priors_kept: bool = False,
    associated_kept: bool = False,
) -> tuple[list[tuple[str, float]], dict[str, tuple[float, str | None, str | None]]]:
    """What :func:`fuse` ranks, before any :class:`Candidate` is made: ``(code, score)`` best
    first, and per code its strongest part ``(part, antecedent, prior)``. ``keep_prior``
    filters ``priors`` instead of ``keep`` (when they were filtered in part already);
    ``priors_kept`` (``associated_kept``): that list is filtered and cut to the depth
    already. Scores are left unsorted (see :func:`best_first`)."""
    kept_priors = priors if priors_kept else _kept(priors, keep_prior or keep, scoring.depth)
    kept_associated = associated if associated_kept else _kept(associated, keep, scoring.depth)
    return fused_ranked(
        kept_associated,
        ((rank, code, prior) for rank, (code, prior) in enumerate(kept_priors)),
        scoring,
    )


def fused_ranked(
    associated: Sequence[tuple[str, float, str]],
    priors: Iterable[tuple[int, str, str]],
    scoring: Scoring,
    others: Sequence[tuple[float, Sequence[tuple[str, str | None, str | None]]]] = (),
) -> tuple[list[tuple[str, float]], dict[str, tuple[float, str | None, str | None]]]:
    """:func:`fused_scores` of lists filtered already, the priors given with their rank
    ``(rank, code, prior name)`` (so a part of the ranking can be scored alone). ``others``:
    more rankings, each ``(weight, [(code, antecedent, prior name), ...])`` best first."""
    fused: dict[str, float] = {}
    because: dict[str, tuple[float, str | None, str | None]] = {}
    k = scoring.fusion_k
    weight = scoring.association_weight
    if weight > 0:
        for place, (first, _, because_of) in enumerate(associated):
            part = weight / (k + place)  # the first time a code is met, its strongest part
            fused[first] = part
            because[first] = (part, because_of, None)
    # each list as ``(rank, code, antecedent, prior name)``, its columns zipped in C (a
    # generator per list would run Python for every entry before the fusion does)
    columns = list(zip(*priors, strict=True))
    ranked: list[tuple[float, Iterable[tuple[int, str, str | None, str | None]]]] = [
        (scoring.prior_weight, zip(columns[0], columns[1], repeat(None), columns[2]))
    ] if columns else []  # fmt: skip
    for weight, other in others:
        if other:
            ranked.append((weight, zip(count(), *zip(*other, strict=True))))
    for weight, entries in ranked:
        if weight <= 0:
            continue
        for rank, code, antecedent, prior in entries:
            part = weight / (k + rank)
            held = because.get(code)
            if held is None:
                fused[code] = part
                because[code] = (part, antecedent, prior)
            else:
                fused[code] += part
                if part > held[0]:
                    because[code] = (part, antecedent, prior)
    return list(fused.items()), because


def best_first(scored: list[tuple[str, float]], n: int | None = None) -> list[tuple[str, float]]:
    """``(code, score)`` by score, then code; only the first ``n`` when given."""

    keyed = [(-score, code) for code, score in scored]  # compared as tuples, in C
    best = sorted(keyed) if n is None or n >= len(keyed) else heapq.nsmallest(n, keyed)
    return [(code, -negative) for negative, code in best]


def _kept(ranked: Sequence[T], keep: Callable[[str], bool], depth: int) -> list[T]:
    out: list[T] = []
    seen: set[str] = set()
    for item in ranked:
        code = item[0]
        if code in seen or not keep(code):
            continue
        seen.add(code)
        out.append(item)
        if len(out) >= depth:
            break
    return out


def prior_ranking(lists: Iterable[tuple[str, Sequence[str]]]) -> list[tuple[str, str]]:
    """Several popularity rankings chained, each product at its first place."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for name, codes in lists:
        for code in codes:
            if code not in seen:
                seen.add(code)
                out.append((code, name))
    return out
