"""Trait provenance and resolution.

"A filled field is not a reliable field": every value of a trait is kept with its source, the
time it was observed and the source's reliability. The value a profile shows is the one with the
highest *effective* reliability, which decays with age::

    effective = reliability * 0.5 ** (age_days / half_life_days)

Ties go to the most recent observation, then to the lexically smallest source for determinism.
Missing values (``None``) are not observations: they never override a known value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import log2
from typing import Any

#: A personal field's default threshold in templates: better than a coin flip. A value a person
#: gave on the web (base reliability 0.6) stays usable for about a quarter of the half-life.
DEFAULT_MIN_RELIABILITY = 0.5


@dataclass(frozen=True)
class Observation:
    """One value of one trait as a source reported it."""

    name: str
    value: Any
    source: str
    observed_at: datetime
    reliability: float


@dataclass(frozen=True)
class ResolvedTrait:
    """The winning observation of a trait, its effective reliability, and the others."""

    name: str
    value: Any
    source: str
    observed_at: datetime
    reliability: float
    effective_reliability: float
    competing: tuple[tuple[Observation, float], ...] = field(default=())


def effective_reliability(obs: Observation, now: datetime, half_life_days: float) -> float:
    """Reliability of ``obs`` at ``now``; an observation from the future counts as fresh."""
    age_days = max((now - obs.observed_at).total_seconds() / 86_400.0, 0.0)
    return float(obs.reliability * 0.5 ** (age_days / half_life_days))


def reliable_until(
    reliability: float, observed_at: datetime, half_life_days: float, threshold: float
) -> datetime | None:
    """When a value observed at ``observed_at`` with ``reliability`` decays below
    ``threshold``; ``None`` when it never reached it."""
    if reliability < threshold or reliability <= 0 or threshold <= 0:
        return None
    return observed_at + timedelta(days=half_life_days * log2(reliability / threshold))


def resolve(
    observations: Iterable[Observation],
    now: datetime,
    half_life_days: float | Mapping[str, float],
    default_half_life_days: float = 730.0,
) -> dict[str, ResolvedTrait]:
    """Resolve every trait in ``observations``; ``half_life_days`` may differ per trait."""
    by_name: dict[str, list[tuple[Observation, float]]] = {}
    for obs in observations:
        if obs.value is None:
            continue
        half_life = (
            half_life_days.get(obs.name, default_half_life_days)
            if isinstance(half_life_days, Mapping)
            else half_life_days
        )
        by_name.setdefault(obs.name, []).append((obs, effective_reliability(obs, now, half_life)))
    resolved: dict[str, ResolvedTrait] = {}
    for name, scored in by_name.items():
        scored.sort(key=_rank)
        best, best_score = scored[0]
        resolved[name] = ResolvedTrait(
            name=name,
            value=best.value,
            source=best.source,
            observed_at=best.observed_at,
            reliability=best.reliability,
            effective_reliability=best_score,
            competing=tuple(scored[1:]),
        )
    return resolved


def _rank(item: tuple[Observation, float]) -> tuple[float, float, str, str]:
    obs, score = item
    return (
        -round(score, 12),
        -(obs.observed_at - datetime.min).total_seconds(),
        obs.source,
        repr(obs.value),
    )
