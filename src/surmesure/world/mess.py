"""The mess real files have: rows an import must refuse, each with one known defect.

A defect is applied to a copy of a valid row, inserted at a random place in the file, so the
clean rows (and the truth they carry) are untouched and every refused row is counted. Each
defect names the field the quarantine will name (``None`` when the row as a whole is refused:
a row with the wrong number of cells, or a record without any identifier).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

Row = dict[str, str | None]


@dataclass(frozen=True)
class Defect:
    """``reason`` (a short label), the ``field`` at fault, how often (share of the file's
    rows, at least one per file), which rows can take it, and how to spoil one."""

    reason: str
    field: str | None
    spoil: Callable[[Row], Row]
    needs: str | None = None  # a column that must be filled in the row to spoil
    rate: float = 0.001
    ragged: bool = False


@dataclass
class Spoiled:
    """Lines to insert: ``before[i]`` is the clean row index the line ``lines[i]`` goes
    before; ``counts`` the rows per defect."""

    before: np.ndarray
    lines: list[bytes]
    counts: list[dict[str, Any]]


def cell(value: Any) -> str | None:
    """A value as a CSV cell writes it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _csv_lines(rows: list[Row], columns: list[str]) -> list[bytes]:
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns})
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue().splitlines(keepends=True)


def spoil(table: pa.Table, defects: list[Defect], rng: np.random.Generator) -> Spoiled:
    """Spoiled copies of rows of ``table`` for each defect, at random places."""
    before: list[np.ndarray] = []
    lines: list[bytes] = []
    counts = []
    columns = table.column_names
    for defect in defects:
        if table.num_rows == 0:
            break
        if defect.needs is not None:
            candidates = np.flatnonzero(
                table.column(defect.needs).is_valid().to_numpy(zero_copy_only=False)
            )
        else:
            candidates = np.arange(table.num_rows)
        if len(candidates) == 0:
            continue
        count = max(1, round(defect.rate * table.num_rows))
        base = candidates[rng.integers(0, len(candidates), count)]
        rows = [
            defect.spoil({k: cell(v) for k, v in row.items()})
            for row in table.take(pa.array(base)).to_pylist()
        ]
        made = _csv_lines(rows, columns)
        if defect.ragged:
            made = [line.rstrip(b"\r\n") + b',""\n' for line in made]
        lines.extend(made)
        before.append(rng.integers(0, table.num_rows + 1, count))
        counts.append({"reason": defect.reason, "field": defect.field, "rows": count})
    at = np.concatenate(before) if before else np.zeros(0, np.int64)
    order = np.argsort(at, kind="stable")
    return Spoiled(at[order], [lines[i] for i in order.tolist()], counts)


def _set(name: str, value: Callable[[str | None], str | None]) -> Callable[[Row], Row]:
    def apply(row: Row) -> Row:
        return {**row, name: value(row.get(name))}

    return apply


def _no_identifier(row: Row) -> Row:
    return {
        **row,
        **{k: None for k in ("customer_id", "loyalty_card", "email", "phone", "anonymous_id")},
    }


def _without_tld(email: str | None) -> str:
    local, _, domain = (email or "x@y.fr").strip().rpartition("@")
    return f"{local}@{domain.split('.')[0]}"


def _impossible_date(value: str | None) -> str:
    return (value or "1980-01-01")[:4] + "-02-30" + (value or "")[10:]


def _day_first(value: str | None) -> str:
    year, month, day = (value or "1980-01-17")[:10].split("-")
    return f"{day}/{month}/{year}"


def _score_out_of_range(row: Row) -> Row:
    bad = {"nps": "11", "csat": "6", "ces": "0"}
    return {**row, "score": bad.get(row.get("metric") or "nps", "11")}


DEFECTS: dict[str, list[Defect]] = {
    "customers_crm": [
        Defect("bad_email", "email", _set("email", lambda v: (v or "").replace("@", " at ")),
               needs="email"),
        Defect("impossible_date", "birth_date", _set("birth_date", _impossible_date),
               needs="birth_date"),
        Defect("unknown_gender", "gender", _set("gender", lambda v: "female")),
    ],
    "customers_shop": [
        Defect("bad_email", "email", _set("email", _without_tld), needs="email"),
    ],
    "customers_call_centre": [
        Defect("bad_phone", "phone", _set("phone", lambda v: (v or "06 12 34 56 78")[:-3]),
               needs="phone"),
        Defect("ragged_row", None, lambda row: row, ragged=True),
    ],
    "customers_partner": [
        Defect("day_first_date", "birth_date", _set("birth_date", _day_first),
               needs="birth_date"),
    ],
    "products": [Defect("negative_price", "price", _set("price", lambda v: f"-{v}"))],
    "stock": [Defect("negative_stock", "quantity", _set("quantity", lambda v: "-3"))],
    "orders": [
        Defect("impossible_date", "ordered_at", _set("ordered_at", _impossible_date)),
        Defect("quantity_in_words", "quantity", _set("quantity", lambda v: "deux")),
        Defect("decimal_comma", "unit_price",
               _set("unit_price", lambda v: (v or "0").replace(".", ",") + ",5")),
        Defect("missing_product", "product_code", _set("product_code", lambda v: None)),
    ],
    "surveys": [
        Defect("score_out_of_range", "score", _score_out_of_range),
        Defect("unknown_metric", "metric", _set("metric", lambda v: "satisfaction")),
    ],
    "email": [
        Defect("unknown_activity", "kind", _set("kind", lambda v: "forwarded")),
        Defect("bad_email", "email", _set("email", _without_tld), needs="email"),
    ],
    "consents": [
        Defect("unknown_purpose", "purpose", _set("purpose", lambda v: "newsletter")),
        Defect("missing_identifier", None, _no_identifier),
    ],
}  # fmt: skip
