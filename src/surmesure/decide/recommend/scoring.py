"""Scoring, pure: complementary products from a person's baskets, fused with a prior.

The complementary score of a product ``C`` sums, over the products ``A`` the person bought,
``w(A) * confidence(A -> C) * log(1 + lift(A -> C))`` where ``w(A)`` halves every
``history_half_life_days`` since ``A`` was last bought: recent baskets speak loudest, and lift
rewards true complements without letting rare pairs run away. That ranking is fused with a
popularity prior (segment, then the same season last year, then overall) by weighted
reciprocal rank, ``weight / (fusion_k + rank)``, a fusion that needs no calibration between
the two scales.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    best: dict[str, tuple[float, str]] = {}
    for antecedent, at in latest.items():
        age = max((as_of - at).total_seconds() / 86_400.0, 0.0)
        weight = 0.5 ** (age / half_life_days)
        for rule in rules.by_antecedent.get(antecedent, ()):
            part = weight * rule.confidence * math.log1p(rule.lift)
            scores[rule.consequent] = scores.get(rule.consequent, 0.0) + part
            if part > best.get(rule.consequent, (0.0, ""))[0]:
                best[rule.consequent] = (part, antecedent)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(code, score, best[code][1]) for code, score in ranked]


def fuse(
    associated: Sequence[tuple[str, float, str]],
    priors: Sequence[tuple[str, str]],
    keep: Callable[[str], bool],
    scoring: Scoring,
) -> list[Candidate]:
    """Both rankings, filtered by ``keep`` then fused; ``priors`` holds ``(code, prior
    name)`` best first. Best first, ties by product code."""
    fused: dict[str, float] = {}
    because: dict[str, tuple[float, str | None, str | None]] = {}

    def add(code: str, rank: int, weight: float, antecedent: str | None, prior: str | None) -> None:
        part = weight / (scoring.fusion_k + rank)
        fused[code] = fused.get(code, 0.0) + part
        if part > because.get(code, (0.0, None, None))[0]:
            because[code] = (part, antecedent, prior)

    for rank, (code, _, antecedent) in enumerate(_kept(associated, keep, scoring.depth)):
        add(code, rank, scoring.association_weight, antecedent, None)
    for rank, (code, prior) in enumerate(_kept(priors, keep, scoring.depth)):
        add(code, rank, scoring.prior_weight, None, prior)
    ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [Candidate(code, score, because[code][1], because[code][2]) for code, score in ranked]


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
