"""Derived metrics as templates read them: named values with a reliability, like traits.

A template field may read a metric instead of a trait (``fields: {tier: {metric: clv_tier,
fallback: ""}}``). Besides every column of ``derived_metrics`` a segment may test
(:data:`~surmesure.domain.segments.METRICS`), a field may read:

- ``points``: loyalty points, one per whole unit of currency spent within the derive window
  (``monetary``, returns deducted), rounded down;
- ``clv_tier``: the highest of ``Settings.clv_tiers`` whose lowest expected value (CLV over the
  derive horizon, ``expected_value``) the person reaches;
- ``top_category``: the category the person bought most (``top_category_1``).

A metric is exact when derive computes it, then ages: its effective reliability is
``0.5 ** (age_days / Settings.metric_half_life_days)`` with the age counted from ``computed_at``,
so a template falls back, as for a trait, when the last run is too old for its threshold, or
when the person has no derived row (``missing``). The row read is the one with the latest
``as_of`` on or before the day of ``now``, then the latest computed (as segments read it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from math import floor
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.content import Known
from surmesure.domain.segments import METRICS, as_number
from surmesure.domain.templates import DERIVED_METRICS as DERIVED
from surmesure.store import schema
from surmesure.store.among import among_ids

SOURCE = "derive"

#: one metric's latest value and when it was computed
Latest = tuple[Any, datetime]


def columns_for(names: Iterable[str]) -> frozenset[str]:
    """The ``derived_metrics`` columns the metrics ``names`` are read from."""
    return frozenset(DERIVED.get(n, n) for n in names)


def tier_of(expected_value: float, tiers: Mapping[str, float]) -> str | None:
    """The highest tier whose lowest value ``expected_value`` reaches; ``None`` below all."""
    reached = [(low, name) for name, low in tiers.items() if expected_value >= low]
    return max(reached)[1] if reached else None


def value_of(name: str, latest: Mapping[str, Latest], tiers: Mapping[str, float]) -> Any:
    """The value of metric ``name`` from the latest columns; ``None`` when it has none."""
    held = latest.get(DERIVED.get(name, name))
    if held is None or held[0] is None:
        return None
    value = held[0]
    if name == "points":
        return max(0, floor(float(value)))
    if name == "clv_tier":
        return tier_of(float(value), tiers)
    return value


def known_metrics(
    latest: Mapping[str, Latest],
    names: Iterable[str],
    now: datetime,
    half_life_days: float,
    tiers: Mapping[str, float],
) -> dict[str, Known]:
    """The metrics ``names`` of one person with their effective reliability at ``now``;
    a metric without a value is left out (a field reading it falls back as ``missing``)."""
    out: dict[str, Known] = {}
    for name in names:
        value = value_of(name, latest, tiers)
        if value is None:
            continue
        computed_at = latest[DERIVED.get(name, name)][1]
        age_days = max((now - computed_at).total_seconds() / 86_400.0, 0.0)
        out[name] = Known(value, SOURCE, float(0.5 ** (age_days / half_life_days)))
    return out


def read_latest(
    conn: Connection, person_ids: Sequence[int], columns: Collection[str], now: datetime
) -> dict[int, dict[str, Latest]]:
    """The latest value of each of ``columns`` for each person, in one statement."""
    wanted = sorted(set(columns) & set(METRICS))
    if not wanted or not person_ids:
        return {}
    d = schema.derived_metrics
    rows = conn.execute(
        sa.select(d.c.person_id, d.c.computed_at, *(d.c[c] for c in wanted))
        .where(among_ids(d.c.person_id, person_ids), d.c.as_of <= now.date())
        .order_by(d.c.person_id, d.c.as_of, d.c.computed_at)
    )
    numbers = {c for c in wanted if METRICS[c] == "number"}
    out: dict[int, dict[str, Latest]] = {}
    for r in rows:
        values = r._mapping
        # rows come oldest first: the last one of a person wins
        out[int(r.person_id)] = {
            c: (
                as_number(values[c]) if c in numbers and values[c] is not None else values[c],
                r.computed_at,
            )
            for c in wanted
        }
    return out
