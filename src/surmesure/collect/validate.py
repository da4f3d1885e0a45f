"""Validation of mapped records against their Pydantic model, columnar first.

Pydantic is the judge: a record is valid when its model accepts it, and a rejected record's
reason is Pydantic's message. Running the model row by row is too slow for large files, so a
columnar pass goes first: from each field's annotation (type, optional, ``Literal``, ``ge`` /
``le``, ``min_length`` / ``max_length``) it builds DuckDB SQL that computes the typed value and
flags every row that *might* be invalid (strict patterns for numbers and times, range and
length checks). Unflagged rows are certainly valid and keep the SQL value; flagged rows go
through the model one by one, and its verdict and message are kept. The columnar pass may
therefore only be stricter than the model, never laxer (a property test checks that both agree
on every field type).

After the model, the store's own bounds apply (integers fit 32 bits, numbers are finite, times
and dates fall in years 1900 to 2200, text holds no NUL character), then
identifier normalization (e-mail, E.164 phone, trimmed ids; once per distinct value), then the
checks of a kind that a model alone does not express (a survey score within its metric's range,
a person for records that need one, no text that a spreadsheet would run as a formula). Times
without a zone are read in the mapping's time zone; every datetime leaves as naive UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from surmesure.collect import bounds
from surmesure.collect.columnar import (
    INT32,
    FieldSpec,
    columnar_sql,
    field_spec,
    native_ok,
    specs,
)
from surmesure.collect.mapping import POSITION
from surmesure.collect.records import FORMULA, IDENTIFIER_FIELDS, KINDS, SCORE_RANGES, Record
from surmesure.domain.identity import normalize


@dataclass(frozen=True)
class Rejection:
    """Why the record at ``pos`` (0-based position in the file's table) was refused."""

    pos: int
    field: str | None
    value: str | None
    reason: str


@dataclass
class Validation:
    """Valid records (a :data:`POSITION` column, then every field of the kind, typed, in file
    order, datetimes naive UTC) and the rejected ones."""

    table: pa.Table
    rejections: list[Rejection] = field(default_factory=list)
    checked_per_row: int = 0


def _prepare(mapped: pa.Table, model: type[Record]) -> tuple[pa.Table, dict[str, Any], set[str]]:
    """The table the SQL reads (zone-aware times as naive UTC, other types the SQL cannot read
    natively as text), each present field's (spec, native) and the fields already in UTC."""
    out: dict[str, Any] = {POSITION: mapped.column(POSITION)}
    columns: dict[str, tuple[FieldSpec, bool]] = {}
    in_utc: set[str] = set()
    for name in model.model_fields:
        if name not in mapped.column_names:
            continue
        spec = field_spec(model, name)
        values = mapped.column(name)
        if pa.types.is_timestamp(values.type):
            if values.type.tz is not None:
                in_utc.add(name)
            values = values.cast(pa.timestamp("us"), safe=False)
        native = native_ok(spec, values.type)
        if not native and not pa.types.is_string(values.type):
            try:
                values = values.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                values = pa.array([None] * len(values), pa.string())
                spec = FieldSpec(name, "other", spec.required)
        out[name] = values
        columns[name] = (spec, native)
    return pa.table(out), columns, in_utc


def to_utc(value: datetime, zone: ZoneInfo) -> datetime:
    """Naive UTC of ``value``: an aware time is converted; a naive one is read in ``zone``
    (an ambiguous or missing wall-clock time takes the offset before the change, fold 0)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC).replace(tzinfo=None)


def localize(values: pa.Array | pa.ChunkedArray, zone: ZoneInfo) -> pa.Array:
    """:func:`to_utc` over a naive timestamp column, once per distinct value."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if zone.key == "UTC" or len(values) == 0:
        return values
    distinct = pc.unique(values)
    converted = pa.array(
        [None if v is None else to_utc(v, zone) for v in distinct.to_pylist()], values.type
    )
    return converted.take(pc.index_in(values, distinct))


# -- per row -----------------------------------------------------------------------------------


def _reason(errors: list[Any]) -> tuple[str | None, str | None, str]:
    first = errors[0]
    name = ".".join(str(p) for p in first["loc"]) or None
    value = None if first["type"] == "missing" else _text(first.get("input"))
    reason = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    return name, value, reason


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _store_bounds(model: type[Record], row: dict[str, Any]) -> tuple[str, Any, str] | None:
    for name, value in row.items():
        if value is None:
            continue
        base = field_spec(model, name).base
        if base == "int" and not INT32[0] <= value <= INT32[1]:
            return name, value, f"{name}: Input should be between {INT32[0]} and {INT32[1]}"
        if base == "float" and not math.isfinite(value):
            return name, value, f"{name}: Input should be a finite number"
        if isinstance(value, date) and not bounds.in_range(value):
            return name, value, f"{name}: {bounds.time_reason(value)}"
        if isinstance(value, str) and bounds.NUL in value:
            return name, value, f"{name}: {NUL_REASON}"
    return None


NUL_REASON = "contains a NUL character (\\u0000): remove it"


def _store_limits(table: pa.Table, rejections: list[Rejection]) -> pa.Table:
    """``table`` without the rows a store cannot keep, each refused naming its field: a time
    or date outside years 1900 to 2200 (before any time zone is applied: far from the
    present, a conversion overflows), a text with a NUL character (PostgreSQL refuses it)."""
    before = len(rejections)
    for name in table.column_names:
        values = table.column(name)
        if name == POSITION:
            continue
        if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
            year = pc.year(values)
            bad = pc.or_(pc.less(year, bounds.EARLIEST.year), pc.greater(year, bounds.LATEST.year))
        elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            bad = pc.match_substring(values, bounds.NUL)
        else:
            continue
        bad = pc.fill_null(bad, False)
        if not pc.any(bad).as_py():
            continue
        positions = pc.filter(table.column(POSITION), bad).to_pylist()
        for pos, value in zip(positions, pc.filter(values, bad).to_pylist(), strict=True):
            if isinstance(value, str):
                reason = f"{name}: {NUL_REASON}"
            else:
                reason = f"{name}: {bounds.time_reason(value)}"
            rejections.append(Rejection(pos, name, _text(value), reason))
    return _without(table, rejections) if len(rejections) > before else table


def _per_row(
    mapped: pa.Table,
    model: type[Record],
    indices: pa.Array,
    zone: ZoneInfo,
    rejections: list[Rejection],
) -> list[dict[str, Any]]:
    accepted: list[dict[str, Any]] = []
    for raw in mapped.take(indices).to_pylist():
        pos = raw.pop(POSITION)
        try:
            record = model.model_validate({k: v for k, v in raw.items() if v is not None})
        except ValidationError as exc:
            name, value, reason = _reason(exc.errors())
            rejections.append(Rejection(pos, name, value, reason))
            continue
        row = record.model_dump()
        bound = _store_bounds(model, row)
        if bound is not None:
            rejections.append(Rejection(pos, bound[0], _text(bound[1]), bound[2]))
            continue
        for name, value in row.items():
            if isinstance(value, datetime):
                row[name] = to_utc(value, zone)
        row[POSITION] = pos
        accepted.append(row)
    return accepted


# -- identifiers and kind checks ---------------------------------------------------------------


IDENTIFIER_REASONS = {
    "email": "email: not an e-mail address; expected name@domain.tld",
    "phone": "phone: not a valid phone number (read in region {region} when it has no "
    "country prefix); write it with its prefix, e.g. +33 6 12 34 56 78",
}

NEEDS_PERSON = {"customers", "email", "consents"}


def _normalize_identifiers(table: pa.Table, region: str, rejections: list[Rejection]) -> pa.Table:
    for name in IDENTIFIER_FIELDS:
        if name not in table.column_names:
            continue
        values = table.column(name).combine_chunks()
        if values.null_count == len(values):
            continue
        distinct = pc.unique(values.drop_null())
        normalized: list[str | None] = []
        errors: dict[str, str] = {}
        for value in distinct.to_pylist():
            try:
                normalized.append(normalize(name, value, region))
            except ValueError as exc:
                normalized.append(None)
                errors[value] = IDENTIFIER_REASONS.get(name, f"{name}: {exc}").format(region=region)
        if errors:
            bad = pc.is_in(values, pa.array(list(errors), pa.string()))
            positions = pc.filter(table.column(POSITION), bad).to_pylist()
            for pos, value in zip(positions, pc.filter(values, bad).to_pylist(), strict=True):
                rejections.append(Rejection(pos, name, value, errors[value]))
        mapped = pa.array(normalized, pa.string()).take(pc.index_in(values, distinct))
        table = table.set_column(table.column_names.index(name), name, mapped)
    return table


def _kind_checks(kind: str, table: pa.Table, rejections: list[Rejection]) -> None:
    rows = table.num_rows
    if kind == "surveys" and rows:
        metric, score = table.column("metric"), table.column("score")
        for name, (low, high) in SCORE_RANGES.items():
            out = pc.and_(
                pc.equal(metric, name),
                pc.or_(pc.less(score, low), pc.greater(score, high)),
            )
            for pos, value in zip(
                pc.filter(table.column(POSITION), out).to_pylist(),
                pc.filter(score, out).to_pylist(),
                strict=True,
            ):
                reason = f"score: a {name.upper()} score should be between {low} and {high}"
                rejections.append(Rejection(pos, "score", str(value), reason))
    if kind in NEEDS_PERSON and rows:
        anyone = pc.is_valid(table.column(IDENTIFIER_FIELDS[0]))
        for name in IDENTIFIER_FIELDS[1:]:
            anyone = pc.or_(anyone, pc.is_valid(table.column(name)))
        for pos in pc.filter(table.column(POSITION), pc.invert(anyone)).to_pylist():
            reason = f"{kind} records need an identifier: {', '.join(IDENTIFIER_FIELDS)}"
            rejections.append(Rejection(pos, None, None, reason))


def _formula_checks(table: pa.Table, model: type[Record], rejections: list[Rejection]) -> None:
    refused = {r.pos for r in rejections}
    for spec in specs(model):
        if spec.base != "str" or spec.name in IDENTIFIER_FIELDS or not table.num_rows:
            continue
        values = table.column(spec.name)
        found = pc.fill_null(pc.match_substring_regex(values, FORMULA), False)
        for pos, value in zip(
            pc.filter(table.column(POSITION), found).to_pylist(),
            pc.filter(values, found).to_pylist(),
            strict=True,
        ):
            if pos in refused:
                continue
            refused.add(pos)
            reason = (
                f"{spec.name}: starts like a spreadsheet formula ({value[:1]!r}), which a "
                f"spreadsheet opening an export would run; write the value without it"
            )
            rejections.append(Rejection(pos, spec.name, value, reason))


# -- entry point -------------------------------------------------------------------------------


def validate(
    mapped: pa.Table, kind: str, *, timezone: str = "UTC", region: str = "FR"
) -> Validation:
    """Validate the mapped records of ``kind`` (see the module docstring); ``region`` reads
    phone numbers written without a country prefix."""
    model = KINDS[kind]
    zone = ZoneInfo(timezone)
    prepared, columns, in_utc = _prepare(mapped, model)
    con = duckdb.connect()
    try:
        con.register("m", prepared)
        result = con.sql(columnar_sql(columns)).to_arrow_table()
    finally:
        con.close()
    bad = result.column("__bad")
    fast = result.filter(pc.invert(bad)).drop_columns(["__bad"])
    # the scan may return rows in any order: find the flagged rows in ``mapped`` by position
    flagged = pc.index_in(pc.filter(result.column(POSITION), bad), mapped.column(POSITION))
    rejections: list[Rejection] = []
    fast = _store_limits(fast, rejections)
    for name, (spec, _) in columns.items():
        if spec.base == "datetime" and name not in in_utc:
            fast = fast.set_column(
                fast.column_names.index(name), name, localize(fast.column(name), zone)
            )
    schema = pa.schema(
        [pa.field(POSITION, pa.int64())] + [pa.field(s.name, s.arrow_type) for s in specs(model)]
    )
    fast = _complete(fast, model, schema)
    slow = _per_row(mapped, model, flagged, zone, rejections)
    table = fast
    if slow:
        table = pa.concat_tables([fast, pa.Table.from_pylist(slow, schema=schema)])
        table = table.sort_by(POSITION)
    table = _without(_normalize_identifiers(table, region, rejections), rejections)
    _kind_checks(kind, table, rejections)
    _formula_checks(table, model, rejections)
    table = _without(table, rejections)
    rejections.sort(key=lambda r: r.pos)
    return Validation(table.combine_chunks(), rejections, len(flagged))


def _without(table: pa.Table, rejections: list[Rejection]) -> pa.Table:
    if not rejections:
        return table
    refused = pa.array(sorted({r.pos for r in rejections}), pa.int64())
    return table.filter(pc.invert(pc.is_in(table.column(POSITION), refused)))


def _complete(fast: pa.Table, model: type[Record], schema: pa.Schema) -> pa.Table:
    """Every field of the kind in schema order; absent fields hold their default."""
    columns = []
    for f in schema:
        if f.name in fast.column_names:
            columns.append(fast.column(f.name).cast(f.type))
        else:
            default = field_spec(model, f.name).default if f.name != POSITION else None
            columns.append(pa.array([default] * fast.num_rows, f.type))
    return pa.table(columns, schema=schema)
