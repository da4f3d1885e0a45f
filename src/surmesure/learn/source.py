"""Sufficient statistics of a past experiment from a CSV or Parquet file, in one DuckDB query.

The one module of ``learn`` that reads anything: it turns a file with one row per person into
:class:`Moments` per variant (and per segment). Rows with a missing metric (or covariate) are
left out. A metric whose every value is 0 or 1 is treated as a rate (binomial).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from surmesure.errors import InvalidInput, NotFound
from surmesure.learn.moments import Covariate, Moments


@dataclass(frozen=True, slots=True)
class ExperimentData:
    metric: str
    kind: str
    variants: dict[str, Moments]
    segments: dict[str, dict[str, Moments]]
    dropped_rows: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(path: Path) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    if path.suffix.lower() in (".parquet", ".pq"):
        return f"read_parquet({literal})"
    if path.suffix.lower() in (".csv", ".tsv", ".txt", ".gz"):
        return f"read_csv_auto({literal})"
    raise InvalidInput(
        f"File {path.name!r} is neither CSV nor Parquet.",
        field="file",
        hint="pass a .csv or .parquet file with one row per person",
    )


def read_experiment(
    path: Path,
    variant_column: str,
    metric: str,
    covariate: str | None = None,
    by: str | None = None,
) -> ExperimentData:
    """Moments of ``metric`` per variant (and per ``by`` segment) from the file at ``path``."""
    if not path.exists():
        raise NotFound(f"File {str(path)!r} does not exist.", field="file", hint="check the path")
    relation = _relation(path)
    con = duckdb.connect()
    try:
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        for option, name in (
            ("--variant-column", variant_column),
            ("--metric", metric),
            ("--covariate", covariate),
            ("--by", by),
        ):
            if name is not None and name not in columns:
                raise InvalidInput(
                    f"Column {name!r} (from {option}) is not in {path.name}.",
                    field=option.lstrip("-"),
                    hint=f"choose one of: {', '.join(columns)}",
                )
        y = f"CAST({_quote(metric)} AS DOUBLE)"
        x = f"CAST({_quote(covariate)} AS DOUBLE)" if covariate else None
        keys = [f"CAST({_quote(variant_column)} AS VARCHAR)"]
        if by:
            keys.append(f"CAST({_quote(by)} AS VARCHAR)")
        sums = ["count(*)", f"sum({y})", f"sum({y} * {y})", f"bool_and({y} IN (0, 1))"]
        if x:
            sums += [f"sum({x})", f"sum({x} * {x})", f"sum({x} * {y})"]
        keep = f"{y} IS NOT NULL" + (f" AND {x} IS NOT NULL" if x else "")
        sql = (
            f"SELECT {', '.join(keys + sums)} FROM {relation} WHERE {keep} "
            f"GROUP BY ALL ORDER BY ALL"
        )
        rows = con.execute(sql).fetchall()
        total = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    except duckdb.Error as exc:
        raise InvalidInput(
            f"Could not read {path.name}: {exc}",
            field="file",
            hint="check that the metric and covariate columns are numeric",
        ) from exc
    finally:
        con.close()
    width = len(keys)
    binary = all(bool(r[width + 3]) for r in rows)
    kind = "binomial" if binary else "mean"
    variants: dict[str, Moments] = {}
    segments: dict[str, dict[str, Moments]] = {}
    for r in rows:
        name = "(missing)" if r[0] is None else str(r[0])
        n, s1, s2 = int(r[width]), float(r[width + 1]), float(r[width + 2])
        cov = Covariate(*(float(v) for v in r[width + 4 : width + 7])) if x else None
        m = Moments(n, s1, s2, "binomial" if kind == "binomial" else "mean", cov)
        variants[name] = variants[name] + m if name in variants else m
        if by:
            seg = "(missing)" if r[1] is None else str(r[1])
            segments.setdefault(seg, {})[name] = m
    kept = sum(m.n for m in variants.values())
    dropped = (int(total[0]) if total else kept) - kept
    return ExperimentData(metric, kind, variants, segments, dropped)
