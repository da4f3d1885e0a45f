"""Results of a recorded experiment: sufficient statistics in one query, then the engine.

For each assigned person the metrics are measured over the attribution window
``[assigned_at, assigned_at + attribution_days)`` (naive UTC; the start included, the end
excluded). With CUPED the covariate is the same metric over ``[assigned_at - days,
assigned_at)``. Per person:

- visit: 1 when the person has a page or track event in the window, else 0;
- conversion: 1 when the person has an order that is not a return in the window, else 0;
- revenue: order totals in the window, returns counted negative (whatever their stored sign);
- unsubscribe: 1 when the person has a channel activity of kind 'unsubscribed', else 0.

One SQL statement returns, per variant, n and for each metric Σy, Σy² (and Σx, Σx², Σxy);
:func:`surmesure.learn.analysis.analyze` does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from surmesure.errors import InvalidInput
from surmesure.experiments.catalog import SavedExperiment, get
from surmesure.experiments.definitions import METRICS, ExperimentDefinition
from surmesure.learn.analysis import ExperimentResult, analyze, as_dict
from surmesure.learn.moments import Covariate, MetricKind, Moments
from surmesure.store import Store

# metric -> (source, per-person aggregate of the value where {w} is the window condition)
_METRICS: dict[str, tuple[int, str]] = {
    "visit": (0, "max(CASE WHEN o.src = 0 AND {w} THEN 1 ELSE 0 END)"),
    "conversion": (1, "max(CASE WHEN o.src = 1 AND {w} AND NOT o.is_return THEN 1 ELSE 0 END)"),
    "revenue": (
        1,
        "sum(CASE WHEN o.src = 1 AND {w} THEN CASE WHEN o.is_return THEN -abs(o.amount) "
        "ELSE o.amount END ELSE 0 END)",
    ),
    "unsubscribe": (2, "max(CASE WHEN o.src = 2 AND {w} THEN 1 ELSE 0 END)"),
}

# source -> the outcome rows it contributes: (person_id, at, src, amount, is_return)
_SOURCES: dict[int, str] = {
    0: "SELECT person_id, occurred_at AS at, 0 AS src, 0.0 AS amount, FALSE AS is_return "
    "FROM events WHERE type IN ('page', 'track')",
    1: "SELECT person_id, ordered_at AS at, 1 AS src, total_amount AS amount, is_return "
    "FROM orders",
    2: "SELECT person_id, occurred_at AS at, 2 AS src, 0.0 AS amount, FALSE AS is_return "
    "FROM channel_activity WHERE kind = 'unsubscribed'",
}


def statistics_sql(metrics: Sequence[str], days: int, cuped: bool) -> str:
    """The one statement: per variant ``n`` then, per metric, Σy, Σy² (Σx, Σx², Σxy).

    Outcomes of every source are stacked, joined once to the assignments and summed per
    person; people without any outcome add 0 to every sum, so they count only in ``n``.
    Bound parameter: ``:experiment``. ``days`` is a validated integer, written inline.
    """
    window = f"INTERVAL '{int(days)} days'"
    union = " UNION ALL ".join(_SOURCES[s] for s in sorted({_METRICS[m][0] for m in metrics}))
    values, sums, outer = [], [], []
    for m in metrics:
        expr = _METRICS[m][1]
        values.append(f"{expr.format(w='o.at >= a.assigned_at')} AS {m}_y")
        sums += [f"sum({m}_y) AS {m}_y1", f"sum({m}_y * {m}_y) AS {m}_y2"]
        outer += [f"coalesce(s.{m}_y1, 0)", f"coalesce(s.{m}_y2, 0)"]
        if cuped:
            values.append(f"{expr.format(w='o.at < a.assigned_at')} AS {m}_x")
            sums += [
                f"sum({m}_x) AS {m}_x1",
                f"sum({m}_x * {m}_x) AS {m}_x2",
                f"sum({m}_x * {m}_y) AS {m}_xy",
            ]
            outer += [f"coalesce(s.{m}_x1, 0)", f"coalesce(s.{m}_x2, 0)", f"coalesce(s.{m}_xy, 0)"]
    start = f"a.assigned_at - {window}" if cuped else "a.assigned_at"
    return (
        "WITH a AS (SELECT person_id, variant, assigned_at FROM experiment_assignments "
        "WHERE experiment = :experiment), "
        f"o AS ({union}), "
        f"pp AS (SELECT a.variant, {', '.join(values)} FROM a "
        f"JOIN o ON o.person_id = a.person_id "
        f"WHERE o.at >= {start} AND o.at < a.assigned_at + {window} "
        "GROUP BY a.person_id, a.variant), "
        f"s AS (SELECT variant, {', '.join(sums)} FROM pp GROUP BY variant), "
        "c AS (SELECT variant, count(*) AS n FROM a GROUP BY variant) "
        f"SELECT c.variant, c.n, {', '.join(outer)} "
        "FROM c LEFT JOIN s ON s.variant = c.variant ORDER BY c.variant"
    )


def moments(store: Store, definition: ExperimentDefinition) -> dict[str, dict[str, Moments]]:
    """metric -> variant -> :class:`Moments`, every defined variant present (n = 0 if empty)."""
    metrics = definition.metrics
    sql = statistics_sql(metrics, definition.attribution_days, definition.cuped)
    with store.connect() as conn:
        rows = conn.execute(sa.text(sql), {"experiment": definition.name}).all()
    width = 5 if definition.cuped else 2
    out: dict[str, dict[str, Moments]] = {m: {} for m in metrics}
    by_variant = {str(r[0]): r for r in rows}
    for v in definition.variants:
        r = by_variant.get(v.name)
        for i, m in enumerate(metrics):
            kind: MetricKind = "binomial" if METRICS[m] == "binomial" else "mean"
            if r is None:
                cov = Covariate(0.0, 0.0, 0.0) if definition.cuped else None
                out[m][v.name] = Moments(0, 0.0, 0.0, kind, cov)
                continue
            s = [float(x or 0) for x in r[2 + i * width : 2 + (i + 1) * width]]
            cov = Covariate(s[2], s[3], s[4]) if definition.cuped else None
            out[m][v.name] = Moments(int(r[1]), s[0], s[1], kind, cov)
    return out


@dataclass(frozen=True, slots=True)
class MetricResult:
    metric: str
    role: str
    kind: str
    result: ExperimentResult


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    experiment: SavedExperiment
    metrics: tuple[MetricResult, ...]

    def payload(self) -> dict[str, Any]:
        """JSON-ready: the experiment, then per metric what ``experiment analyze`` reports."""
        d = self.experiment.definition
        return {
            "experiment": d.name,
            "status": self.experiment.status,
            "started_at": self.experiment.summary()["started_at"],
            "control": d.control_variant,
            "attribution_days": d.attribution_days,
            "cuped": d.cuped,
            "metrics": [
                {"metric": r.metric, "role": r.role, "kind": r.kind, **as_dict(r.result)}
                for r in self.metrics
            ],
        }


def analyze_moments(
    definition: ExperimentDefinition,
    stats: dict[str, dict[str, Moments]],
    alpha: float = 0.05,
    sequential: bool = False,
) -> list[MetricResult]:
    """Every metric through the engine: variants planned (weight > 0) against control."""
    weights = {v.name: v.weight for v in definition.variants if v.weight > 0}
    control = definition.control_variant
    if control not in weights or len(weights) < 2:
        raise InvalidInput(
            f"Experiment {definition.name!r} needs the control and one more variant with "
            "a weight above 0 to compare them.",
            field="variants",
            hint="raise the weights of the variants to compare",
        )
    results = []
    for m in definition.metrics:
        cells = {v: stats[m][v] for v in weights}
        result = analyze(
            cells, control, weights, alpha=alpha, sequential=sequential, cuped=definition.cuped
        )
        role = "primary" if m == definition.primary else "guardrail"
        results.append(MetricResult(m, role, METRICS[m], result))
    return results


def results(
    store: Store, name: str, alpha: float = 0.05, sequential: bool = False
) -> ExperimentResults:
    """The results of experiment ``name`` as of now; :class:`NotFound` when it is unknown."""
    saved = get(store, name)
    stats = moments(store, saved.definition)
    return ExperimentResults(
        saved, tuple(analyze_moments(saved.definition, stats, alpha, sequential))
    )
