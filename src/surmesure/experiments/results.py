"""Results of a recorded experiment: sufficient statistics in the store, then the engine.

For each assigned person the metrics are measured over the attribution window
``[assigned_at, assigned_at + attribution_days)`` (naive UTC; the start included, the end
excluded). With CUPED the covariate is the same metric over ``[assigned_at - days,
assigned_at)``. Per person:

- visit: 1 when the person has a page or track event in the window, else 0;
- conversion: 1 when the person has an order that is not a return in the window, else 0;
- revenue: order totals in the window, returns counted negative (whatever their stored sign);
- unsubscribe: 1 when the person has a channel activity of kind 'unsubscribed', else 0.

The store returns, per variant, n and for each metric Σy, Σy² (and Σx, Σx², Σxy);
:func:`surmesure.learn.analysis.analyze` does the rest. Two statements give the same sums:

- on DuckDB, when the experiment was assigned in at most ``_MAX_WAVES`` waves (a wave is one
  ``assign`` run: its people share one ``assigned_at``), no outcome is joined to an
  assignment. People are bits in bitmaps, one bitmap per block of 65,536 person ids: the
  people of each variant in each wave, and for each 0/1 metric the people with an outcome in
  each window. Σy of a 0/1 metric is the count of bits set in both (Σy² too; Σxy, in three).
  A summed metric is summed per person, and the person's variant and wave read from the
  bitmaps. With one wave at ten million people this takes a quarter of the CPU time of the
  join (1.1 s against 4.0 s): setting and reading bits in a few megabytes, instead of probing
  a hash table of ten million assignments with every outcome and grouping the matches per
  person. Each wave adds window edges to test every outcome against and sums per person:
  from four waves on, the join is as fast;
- otherwise (PostgreSQL, more waves, or person ids spread too far apart), the outcomes of all
  tables stacked and joined once to the assignments, summed per person then per variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import InvalidInput
from surmesure.experiments.catalog import SavedExperiment, get
from surmesure.experiments.definitions import METRICS, ExperimentDefinition
from surmesure.learn.analysis import ExperimentResult, analyze, as_dict
from surmesure.learn.moments import Covariate, MetricKind, Moments
from surmesure.store import Store


@dataclass(frozen=True, slots=True)
class _Outcome:
    """The rows of ``table`` that make a metric, timed by ``at``: a 0/1 metric is 1 when one
    of them falls in the window (``value`` None), a summed metric adds their ``value``."""

    table: str
    at: str
    rows: str
    value: str | None = None


_OUTCOMES: dict[str, _Outcome] = {
    # `IS TRUE` (the same rows) lets DuckDB test each distinct type once, not each of the rows
    "visit": _Outcome("events", "occurred_at", "(type IN ('page', 'track')) IS TRUE"),
    "conversion": _Outcome("orders", "ordered_at", "NOT is_return"),
    "revenue": _Outcome(
        "orders",
        "ordered_at",
        "TRUE",
        "CASE WHEN is_return THEN -abs(total_amount) ELSE total_amount END",
    ),
    "unsubscribe": _Outcome("channel_activity", "occurred_at", "kind = 'unsubscribed'"),
}

# A block is `person_id >> _SHIFT`, a bit in it `person_id & _MASK` (right for any BIGINT, the
# negative too): 8 KiB a bitmap, 153 blocks for ten million people.
_SHIFT = 16
_MASK = (1 << _SHIFT) - 1
# more waves, more edges and sums: ten million people in two waves take 1.1 s (the join 3.0 s),
# in four 2.6 s (the join 2.3 s), in eight 5.0 s (4.7 s)
_MAX_WAVES = 4
# assigned ids further apart than this could need more blocks than memory holds
_MAX_SPAN = 1 << 28

# the waves of an experiment and the range of its person ids (grouping by the variants too
# would cost four times as much: the cells are the defined variants in every wave)
_WAVES_SQL = (
    "SELECT assigned_at, min(person_id), max(person_id) FROM experiment_assignments "
    "WHERE experiment = :experiment GROUP BY assigned_at"
)


def _width(cuped: bool) -> int:
    return 5 if cuped else 2


def joined_sql(metrics: Sequence[str], days: int, cuped: bool) -> str:
    """Any store: per variant ``n`` then, per metric, Σy, Σy² (and Σx, Σx², Σxy).

    Outcome rows of every table are stacked (a column per metric, NULL where the row does not
    count), joined once to the assignments and summed per person; people without any outcome
    add 0 to every sum, so they count only in ``n``. Bound parameter: ``:experiment``.
    ``days`` is a validated integer, written inline.
    """
    window = f"INTERVAL '{int(days)} days'"
    branches = []
    for table in sorted({_OUTCOMES[m].table for m in metrics}):
        mine = [m for m in metrics if _OUTCOMES[m].table == table]
        cols = [
            f"CAST(CASE WHEN {_OUTCOMES[m].rows} THEN {_OUTCOMES[m].value or 1} END "
            f"AS DOUBLE PRECISION) AS {m}"
            if m in mine
            else f"CAST(NULL AS DOUBLE PRECISION) AS {m}"
            for m in metrics
        ]
        rows = " OR ".join(f"({_OUTCOMES[m].rows})" for m in mine)
        at = _OUTCOMES[mine[0]].at
        branches.append(
            f"SELECT person_id, {at} AS at, {', '.join(cols)} FROM {table} WHERE {rows}"
        )
    sides = [("y", "o.at >= a.assigned_at")] + ([("x", "o.at < a.assigned_at")] if cuped else [])
    values, sums = [], []
    for m in metrics:
        for side, cond in sides:
            if _OUTCOMES[m].value is None:
                value = f"max(CASE WHEN o.{m} IS NOT NULL AND {cond} THEN 1 ELSE 0 END)"
            else:
                value = f"coalesce(sum(CASE WHEN {cond} THEN o.{m} ELSE 0 END), 0)"
            values.append(f"{value} AS {m}_{side}")
        sums += [f"sum({m}_y) AS {m}_y1", f"sum({m}_y * {m}_y) AS {m}_y2"]
        if cuped:
            sums += [f"sum({m}_x) AS {m}_x1", f"sum({m}_x * {m}_x) AS {m}_x2"]
            sums += [f"sum({m}_x * {m}_y) AS {m}_xy"]
    outer = ", ".join(f"s.{c.rsplit(' AS ', 1)[1]}" for c in sums)
    start = f"a.assigned_at - {window}" if cuped else "a.assigned_at"
    return (
        "WITH a AS (SELECT person_id, variant, assigned_at FROM experiment_assignments "
        "WHERE experiment = :experiment), "
        f"o AS ({' UNION ALL '.join(branches)}), "
        f"pp AS (SELECT a.variant, {', '.join(values)} FROM a "
        f"JOIN o ON o.person_id = a.person_id "
        f"WHERE o.at >= {start} AND o.at < a.assigned_at + {window} "
        "GROUP BY a.person_id, a.variant), "
        f"s AS (SELECT variant, {', '.join(sums)} FROM pp GROUP BY variant), "
        "c AS (SELECT variant, count(*) AS n FROM a GROUP BY variant) "
        f"SELECT c.variant, c.n, {outer} "
        "FROM c LEFT JOIN s ON s.variant = c.variant ORDER BY c.variant"
    )


@dataclass(frozen=True, slots=True)
class Cells:
    """The cells of an experiment: each defined variant in each wave, wave by wave (cell
    ``k`` is variant ``k % len(variants)`` of wave ``k // len(variants)``). The edges of the
    waves' windows cut time into intervals: interval ``c`` is ``[edges[c-1], edges[c])``."""

    variants: tuple[str, ...]
    waves: tuple[datetime, ...]
    days: int
    cuped: bool

    @property
    def cells(self) -> list[tuple[str, datetime]]:
        return [(v, at) for at in self.waves for v in self.variants]

    @property
    def edges(self) -> list[datetime]:
        span = timedelta(days=self.days)
        shifts = (-span, timedelta(0), span) if self.cuped else (timedelta(0), span)
        return sorted({at + shift for at in self.waves for shift in shifts})

    def windows(self) -> list[tuple[str, int, int]]:
        """Each window's name, ``y{j}`` after wave ``j`` and ``x{j}`` before it (with CUPED),
        and its first and last interval."""
        span, edges, out = timedelta(days=self.days), self.edges, []
        for j, at in enumerate(self.waves):
            out.append((f"y{j}", edges.index(at) + 1, edges.index(at + span)))
            if self.cuped:
                out.append((f"x{j}", edges.index(at - span) + 1, edges.index(at)))
        return out

    def interval(self, at: str) -> str:
        """SQL: the interval of column ``at``, the number of edges it has reached."""
        return " + ".join(f"CAST({at} >= :t{e} AS INTEGER)" for e in range(len(self.edges)))

    def params(self) -> dict[str, Any]:
        """The edges (``:t{e}``, the first and last are ``:start`` and ``:end``) and cells."""
        edges = self.edges
        out: dict[str, Any] = {f"t{e}": at for e, at in enumerate(edges)}
        out |= {"start": edges[0], "end": edges[-1]}
        for k, (variant, at) in enumerate(self.cells):
            out[f"v{k}"], out[f"a{k}"] = variant, at
        return out


def bitmap_sql(metrics: Sequence[str], cells: Cells) -> tuple[str, dict[str, Any]]:
    """DuckDB: one row, for each cell ``n`` then, per metric, Σy, Σy² (and Σx, Σx², Σxy).

    Returns the statement and its parameters, all but ``:experiment`` and ``:lo``, ``:hi``
    (the range of the experiment's person ids).
    """
    count = len(cells.cells)
    ctes = [_assigned_blocks(count)]
    counts = [f"sum(bit_count(pa.b{k})) AS n{k}" for k in range(count)]
    joins, froms = [], ["bs"]
    columns: list[list[str]] = [[f"bs.n{k}"] for k in range(count)]
    for i, m in enumerate(metrics):
        if _OUTCOMES[m].value is not None:
            ctes += _summed(i, _OUTCOMES[m], cells)
            froms.append(f"t{i}")
            names = ("y1", "y2", "x1", "x2", "xy")[: _width(cells.cuped)]
            for k, cols in enumerate(columns):
                cols += [f"t{i}.{name}_{k}" for name in names]
            continue
        ctes.append(_bitmaps(i, _OUTCOMES[m], cells))
        joins.append(f"LEFT JOIN m{i} ON m{i}.block = pa.block")
        for k, cols in enumerate(columns):
            j = k // len(cells.variants)
            y, x, b = f"m{i}.y{j}", f"m{i}.x{j}", f"pa.b{k}"
            counts.append(f"sum(bit_count({b} & {y})) AS m{i}_y{k}")
            cols += [f"bs.m{i}_y{k}"] * 2
            if cells.cuped:
                counts.append(f"sum(bit_count({b} & {x})) AS m{i}_x{k}")
                counts.append(f"sum(bit_count({b} & {y} & {x})) AS m{i}_xy{k}")
                cols += [f"bs.m{i}_x{k}"] * 2 + [f"bs.m{i}_xy{k}"]
    ctes.append(f"bs AS (SELECT {', '.join(counts)} FROM pa {' '.join(joins)})")
    select = ", ".join(c for cols in columns for c in cols)
    return f"WITH {', '.join(ctes)} SELECT {select} FROM {', '.join(froms)}", cells.params()


_BLOCK = f"person_id >> {_SHIFT}"
_BITMAP = f"bitstring_agg(person_id & {_MASK}, 0, {_MASK})"


def _code_bits(cells: int) -> int:
    """Bits of a person's cell number: 1 + its cell, 0 for a person in none."""
    return cells.bit_length()


def _assigned_blocks(cells: int) -> str:
    """``pa``: per block, the bitmap ``b{k}`` of the people of each cell (NULL when none), and
    the bitmaps ``q{j}`` of the people whose cell number has bit ``j`` set."""
    number = " ".join(
        f"WHEN variant = :v{k} AND assigned_at = :a{k} THEN {k + 1}" for k in range(cells)
    )
    pivot = [f"any_value(b) FILTER (WHERE cell = {k + 1}) AS b{k}" for k in range(cells)]
    pivot += [
        f"bit_or(b) FILTER (WHERE (cell >> {j}) & 1 = 1) AS q{j}" for j in range(_code_bits(cells))
    ]
    # a bitmap per (block, variant, wave) first: testing each row against every cell is slower
    return (
        f"pa AS (SELECT block, {', '.join(pivot)} FROM (SELECT block, b, CASE {number} END "
        f"AS cell FROM (SELECT {_BLOCK} AS block, variant, assigned_at, {_BITMAP} AS b "
        "FROM experiment_assignments WHERE experiment = :experiment GROUP BY ALL)) GROUP BY block)"
    )


def _rows(o: _Outcome, cells: Cells) -> str:
    """``o``'s rows that may count: its own, of the experiment's people, in some window, with
    their block and interval."""
    return (
        f"SELECT *, {_BLOCK} AS block, {cells.interval(o.at)} AS c FROM {o.table} "
        f"WHERE ({o.rows}) AND person_id BETWEEN :lo AND :hi "
        f"AND {o.at} >= :start AND {o.at} < :end"
    )


def _bitmaps(i: int, o: _Outcome, cells: Cells) -> str:
    """``m{i}``: per block, the people with a row of 0/1 metric ``i`` in each window.

    A bitmap per interval, then those of a window's intervals OR-ed: testing each row against
    each window instead costs a bitmap per window per row."""
    merged = ", ".join(
        f"bit_or(b) FILTER (WHERE c BETWEEN {lo} AND {hi}) AS {name}"
        for name, lo, hi in cells.windows()
    )
    return (
        f"m{i} AS (SELECT block, {merged} FROM (SELECT block, c, {_BITMAP} AS b "
        f"FROM ({_rows(o, cells)}) GROUP BY ALL) GROUP BY block)"
    )


def _summed(i: int, o: _Outcome, cells: Cells) -> list[str]:
    """``p{i}`` sums summed metric ``i`` per person and window, ``c{i}`` reads each person's
    cell number from the bitmaps of ``pa``, ``t{i}`` gives the moments of each cell in one
    row."""
    count, waves = len(cells.cells), len(cells.waves)
    sums = ", ".join(
        f"sum(CASE WHEN c BETWEEN {lo} AND {hi} THEN v ELSE 0 END) AS {name}"
        for name, lo, hi in cells.windows()
    )
    bits = range(_code_bits(count))
    number = " + ".join(f"coalesce(get_bit(bb.q{j}, bit), 0) * {1 << j}" for j in bits)
    struct = ", ".join(f"'q{j}': pa.q{j}" for j in bits)

    def window(side: str) -> str:
        if waves == 1:
            return f"{side}0"
        whens = " ".join(f"WHEN {j} THEN {side}{j}" for j in range(waves))
        return f"CASE (cell - 1) // {len(cells.variants)} {whens} END"

    picked = f"{window('y')} AS y" + (f", {window('x')} AS x" if cells.cuped else "")
    exprs = {"y1": "y", "y2": "y * y", "x1": "x", "x2": "x * x", "xy": "x * y"}
    names = list(exprs)[: _width(cells.cuped)]
    pivot = ", ".join(
        f"any_value({name}) FILTER (WHERE cell = {k + 1}) AS {name}_{k}"
        for k in range(count)
        for name in names
    )
    sums_of = ", ".join(f"sum({exprs[name]}) AS {name}" for name in names)
    return [
        f"p{i} AS (SELECT {_BLOCK} AS block, CAST(person_id & {_MASK} AS INTEGER) AS bit, "
        f"{sums} FROM (SELECT person_id, c, {o.value} AS v FROM ({_rows(o, cells)})) "
        "GROUP BY person_id)",
        # the block's bitmaps through a scalar subquery: DuckDB then hashes the blocks, where
        # a join would hash the millions of people (it misjudges which side is the smaller)
        f"c{i} AS (SELECT {number} AS cell, * FROM (SELECT p.*, (SELECT {{{struct}}} "
        f"FROM pa WHERE pa.block = p.block) AS bb FROM p{i} p))",
        f"t{i} AS (SELECT {pivot} FROM (SELECT cell, {sums_of} "
        f"FROM (SELECT cell, {picked} FROM c{i}) GROUP BY cell))",
    ]


def _statistics(
    store: Store, conn: Connection, definition: ExperimentDefinition
) -> list[tuple[str, Sequence[Any]]]:
    """(variant, row) pairs, ``row`` being n then the sums of each metric in order; a variant
    may come in several rows (one per wave), whose figures add."""
    metrics, days, cuped = definition.metrics, definition.attribution_days, definition.cuped
    name = {"experiment": definition.name}
    if store.backend.bitstrings:
        found = conn.execute(sa.text(_WAVES_SQL), name).all()
        if not found:
            return []
        variants = tuple(v.name for v in definition.variants)
        cells = Cells(variants, tuple(sorted(r[0] for r in found)), days, cuped)
        lo, hi = min(int(r[1]) for r in found), max(int(r[2]) for r in found)
        if len(cells.waves) <= _MAX_WAVES and hi - lo <= _MAX_SPAN:
            sql, params = bitmap_sql(metrics, cells)
            row = conn.execute(sa.text(sql), params | name | {"lo": lo, "hi": hi}).one()
            width = 1 + _width(cuped) * len(metrics)
            return [(v, row[k * width : (k + 1) * width]) for k, (v, _) in enumerate(cells.cells)]
    rows = conn.execute(sa.text(joined_sql(metrics, days, cuped)), name).all()
    return [(str(r[0]), r[1:]) for r in rows]


def moments(store: Store, definition: ExperimentDefinition) -> dict[str, dict[str, Moments]]:
    """metric -> variant -> :class:`Moments`, every defined variant present (n = 0 if empty)."""
    metrics = definition.metrics
    width = _width(definition.cuped)
    # the cells and their sums from one snapshot of the store
    with store.connect() as conn, conn.begin():
        stats = _statistics(store, conn, definition)
    n = {v.name: 0 for v in definition.variants}
    sums = {v: [0.0] * (width * len(metrics)) for v in n}
    for variant, row in stats:
        if variant in n:
            n[variant] += int(row[0] or 0)
            sums[variant] = [a + float(b or 0) for a, b in zip(sums[variant], row[1:], strict=True)]
    out: dict[str, dict[str, Moments]] = {m: {} for m in metrics}
    for v, count in n.items():
        for i, m in enumerate(metrics):
            kind: MetricKind = "binomial" if METRICS[m] == "binomial" else "mean"
            s = sums[v][i * width : (i + 1) * width]
            cov = Covariate(s[2], s[3], s[4]) if definition.cuped else None
            out[m][v] = Moments(count, s[0], s[1], kind, cov)
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


def results_both_ways(
    store: Store, name: str, alpha: float = 0.05
) -> tuple[ExperimentResults, ExperimentResults]:
    """The fixed-horizon and the sequential results of experiment ``name``, from one reading
    of the store; :class:`NotFound` when it is unknown."""
    saved = get(store, name)
    stats = moments(store, saved.definition)
    d = saved.definition
    fixed = ExperimentResults(saved, tuple(analyze_moments(d, stats, alpha)))
    return fixed, ExperimentResults(saved, tuple(analyze_moments(d, stats, alpha, True)))
