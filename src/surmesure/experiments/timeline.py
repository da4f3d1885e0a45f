"""The sequential view of an experiment: its always-valid interval as it stood day by day.

For cut-off ``t`` the primary metric is measured as it could have been read at ``t``: the
people assigned before ``t``, each over the part of their attribution window before ``t``
(``[assigned_at, min(assigned_at + attribution_days, t))``, naive UTC), without CUPED. Each
variant is then compared with control by the confidence sequence of
:mod:`surmesure.learn.sequential`, whose interval is valid at every cut-off at once: the line
of its bounds is what a team reading the experiment every day saw.

Cut-offs are the ends of the days from the first assignment to the end of the last window (or
now, if sooner): at most :data:`MAX_POINTS` of them, evenly spread, and that end. One
statement computes them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from surmesure.experiments.catalog import get, utcnow
from surmesure.experiments.definitions import METRICS
from surmesure.experiments.results import _OUTCOMES
from surmesure.learn.frequentist import Lift
from surmesure.learn.moments import MetricKind, Moments
from surmesure.learn.sequential import compare_sequential
from surmesure.store import Store

MAX_POINTS = 30


@dataclass(frozen=True, slots=True)
class Timeline:
    """The primary metric's sequential absolute lift of each variant at each cut-off."""

    metric: str
    cutoffs: tuple[datetime, ...]
    n: dict[str, tuple[int, ...]]
    lifts: dict[str, tuple[Lift, ...]]


def timeline_sql(metric: str, days: int, points: int) -> str:
    """Per variant: ``n{k}``, ``s{k}`` and ``q{k}`` (n, Σy, Σy²) at each cut-off ``:t{k}``.
    Bound parameter: ``:experiment``; ``days`` is a validated integer, written inline."""
    o = _OUTCOMES[metric]
    window = f"INTERVAL '{int(days)} days'"
    value = o.value or "1"
    ks = range(points)
    if o.value is None:
        ys = [f"max(CASE WHEN o.at < :t{k} THEN 1 ELSE 0 END) AS y{k}" for k in ks]
    else:
        ys = [f"coalesce(sum(CASE WHEN o.at < :t{k} THEN o.v ELSE 0 END), 0) AS y{k}" for k in ks]
    sums = [f"sum(y{k}) AS s{k}, sum(y{k} * y{k}) AS q{k}" for k in ks]
    counts = [f"sum(CASE WHEN assigned_at < :t{k} THEN 1 ELSE 0 END) AS n{k}" for k in ks]
    picked = [f"c.n{k}, s.s{k}, s.q{k}" for k in ks]
    return (
        "WITH a AS (SELECT person_id, variant, assigned_at FROM experiment_assignments "
        "WHERE experiment = :experiment), "
        f"o AS (SELECT person_id, {o.at} AS at, CAST({value} AS DOUBLE PRECISION) AS v "
        f"FROM {o.table} WHERE {o.rows}), "
        f"pp AS (SELECT a.variant, {', '.join(ys)} FROM a JOIN o ON o.person_id = a.person_id "
        f"WHERE o.at >= a.assigned_at AND o.at < a.assigned_at + {window} "
        "GROUP BY a.person_id, a.variant), "
        f"s AS (SELECT variant, {', '.join(sums)} FROM pp GROUP BY variant), "
        f"c AS (SELECT variant, {', '.join(counts)} FROM a GROUP BY variant) "
        f"SELECT c.variant, {', '.join(picked)} FROM c LEFT JOIN s ON s.variant = c.variant"
    )


def cutoffs(first: datetime, last: datetime, days: int, now: datetime) -> list[datetime]:
    """The ends of the days from ``first`` to the end of the window after ``last`` (or
    ``now``): at most :data:`MAX_POINTS` of them, evenly spread, then that end itself."""
    start = datetime.combine(first.date(), datetime.min.time()) + timedelta(days=1)
    end = min(last + timedelta(days=days), now)
    if end < start:
        return [end] if end > first else []
    count = (end - start).days + 1
    step = max(1, math.ceil(count / MAX_POINTS))
    found = [start + timedelta(days=d) for d in range(0, count, step)]
    return found if found[-1] >= end else [*found, end]


def timeline(store: Store, name: str, alpha: float = 0.05, now: datetime | None = None) -> Timeline:
    """The sequential view of experiment ``name`` (its primary metric); :class:`NotFound`
    when it is unknown. No cut-off when nobody is assigned yet."""
    definition = get(store, name).definition
    metric, days = definition.primary, definition.attribution_days
    variants = [v.name for v in definition.variants if v.weight > 0]
    control = definition.control_variant
    with store.connect() as conn:
        span = conn.execute(
            sa.text(
                "SELECT min(assigned_at), max(assigned_at) FROM experiment_assignments "
                "WHERE experiment = :experiment"
            ),
            {"experiment": name},
        ).one()
        if span[0] is None:
            return Timeline(metric, (), {}, {})
        ts = cutoffs(span[0], span[1], days, now or utcnow())
        if not ts:
            return Timeline(metric, (), {}, {})
        params = {"experiment": name} | {f"t{k}": t for k, t in enumerate(ts)}
        rows = {
            str(r[0]): r[1:]
            for r in conn.execute(sa.text(timeline_sql(metric, days, len(ts))), params)
        }
    kind: MetricKind = "binomial" if METRICS[metric] == "binomial" else "mean"

    def moments(variant: str, k: int) -> Moments:
        row = rows.get(variant)
        if row is None:
            return Moments(0, 0.0, 0.0, kind)
        n, s, q = row[3 * k : 3 * k + 3]
        return Moments(int(n or 0), float(s or 0), float(q or 0), kind)

    treated = [v for v in variants if v != control]
    lifts = {
        v: tuple(
            compare_sequential(moments(control, k), moments(v, k), alpha, cuped=False).absolute
            for k in range(len(ts))
        )
        for v in treated
    }
    n = {v: tuple(moments(v, k).n for k in range(len(ts))) for v in variants}
    return Timeline(metric, tuple(ts), n, lifts)
