"""The columnar half of validation: what a Pydantic field's annotation says, as DuckDB SQL.

:func:`field_spec` reads a model field's annotation (type, optional, ``Literal``, ``ge`` /
``le`` / ``gt`` / ``lt``, ``min_length`` / ``max_length``, default). :func:`columnar_sql` turns
the fields present in a mapped table into one ``SELECT`` over a registered relation ``m`` that
computes each typed value and a ``__bad`` flag for every row the model might refuse. The SQL
accepts only what it is sure of (strict patterns for numbers and times, ASCII-bounded text
edges, byte lengths as an upper bound of character lengths); everything else is flagged and left
to the model (see :mod:`surmesure.collect.validate`).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
import pyarrow as pa
from pydantic.fields import FieldInfo

from surmesure.collect.mapping import POSITION
from surmesure.collect.records import Record

INT32 = (-(2**31), 2**31 - 1)

Base = Literal["str", "int", "float", "bool", "date", "datetime", "literal", "other"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "literal": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "other": pa.string(),
}

_PY_BASES: dict[type, Base] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    date: "date",
    datetime: "datetime",
}

DATETIME_PATTERN = (
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
)
DATE_PATTERN = r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}"
INT_PATTERN = r"-?[0-9]{1,18}"
FLOAT_PATTERN = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"
TEXT_EDGES = r"(?s)[!-~](.*[!-~])?"
BOOL_TEXT = {"true": True, "false": False, "True": True, "False": False, "1": True, "0": False}


@dataclass(frozen=True)
class FieldSpec:
    """What a field's annotation says, in the terms the columnar pass can check."""

    name: str
    base: Base
    required: bool
    default: Any = None
    min_length: int | None = None
    max_length: int | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.base]


# -- field introspection ---------------------------------------------------------------------


def _constraints(metadata: list[Any], out: dict[str, Any]) -> bool:
    """Fold annotation metadata into ``out``; False when some constraint is not understood."""
    understood = True
    for item in metadata:
        if isinstance(item, FieldInfo):
            understood &= _constraints(list(item.metadata), out)
        elif isinstance(item, at.MinLen):
            out["min_length"] = item.min_length
        elif isinstance(item, at.MaxLen):
            out["max_length"] = item.max_length
        elif isinstance(item, at.Ge):
            out["ge"] = item.ge
        elif isinstance(item, at.Gt):
            out["gt"] = item.gt
        elif isinstance(item, at.Le):
            out["le"] = item.le
        elif isinstance(item, at.Lt):
            out["lt"] = item.lt
        else:
            understood = False
    return understood


@cache
def field_spec(model: type[Record], name: str) -> FieldSpec:
    """The :class:`FieldSpec` of ``model.name``. A field whose annotation the columnar pass
    does not understand gets base ``"other"``: every non-null value is checked per row."""
    info = model.model_fields[name]
    annotation: Any = info.annotation
    args: dict[str, Any] = {}
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else Any
    understood = _constraints(list(info.metadata), args)
    if hasattr(annotation, "__metadata__"):
        understood &= _constraints(list(annotation.__metadata__), args)
        annotation = annotation.__origin__
    base: Base
    if get_origin(annotation) is Literal and all(isinstance(a, str) for a in get_args(annotation)):
        base = "literal"
        args["choices"] = tuple(get_args(annotation))
    else:
        base = _PY_BASES.get(annotation, "other") if isinstance(annotation, type) else "other"
    if not understood:
        base = "other"
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    return FieldSpec(name, base, info.is_required(), default, **args)


def specs(model: type[Record]) -> list[FieldSpec]:
    return [field_spec(model, name) for name in model.model_fields]


# -- the columnar pass -------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return repr(value)


def _range(spec: FieldSpec, value: str, bounds: tuple[int, int] | None = None) -> list[str]:
    checks = []
    for op, bound in ((">=", spec.ge), (">", spec.gt), ("<=", spec.le), ("<", spec.lt)):
        if bound is not None:
            checks.append(f"{value} {op} {bound!r}")
    if bounds is not None:
        checks.append(f"{value} BETWEEN {bounds[0]} AND {bounds[1]}")
    return checks


def native_ok(spec: FieldSpec, arrow_type: pa.DataType) -> bool:
    """Whether an Arrow column of ``arrow_type`` holds ``spec``'s type as Pydantic reads it."""
    checks: dict[str, Callable[[pa.DataType], bool]] = {
        "int": pa.types.is_integer,
        "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
        "bool": pa.types.is_boolean,
        "date": pa.types.is_date32,
        "datetime": lambda t: pa.types.is_timestamp(t) and t.tz is None,
    }
    check = checks.get(spec.base)
    return bool(check and check(arrow_type))


def _text_exprs(spec: FieldSpec, c: str) -> tuple[str, list[str]]:
    """(typed value, conditions that make a non-null text value certainly valid)."""
    if spec.base == "str":
        value = f"trim({c}, ' ')"
        ok = [f"regexp_full_match({value}, {_lit(TEXT_EDGES)})"]
        if spec.min_length:
            ok.append(f"length({value}) >= {spec.min_length}")
        if spec.max_length is not None:
            # bytes bound characters from above: stricter for non-ASCII text, never laxer
            ok.append(f"strlen({value}) <= {spec.max_length}")
        return value, ok
    if spec.base == "literal":
        return c, [f"{c} IN ({', '.join(_lit(x) for x in spec.choices)})"]
    if spec.base == "int":
        value = f"TRY_CAST({c} AS BIGINT)"
        return value, [f"regexp_full_match({c}, {_lit(INT_PATTERN)})", *_range(spec, value, INT32)]
    if spec.base == "float":
        value = f"TRY_CAST({c} AS DOUBLE)"
        return value, [f"regexp_full_match({c}, {_lit(FLOAT_PATTERN)})", *_range(spec, value)]
    if spec.base == "bool":
        true = ", ".join(_lit(k) for k, v in BOOL_TEXT.items() if v)
        return f"({c} IN ({true}))", [f"{c} IN ({', '.join(_lit(k) for k in BOOL_TEXT)})"]
    if spec.base == "date":
        value = f"TRY_CAST({c} AS DATE)"
        return value, [f"regexp_full_match({c}, {_lit(DATE_PATTERN)})", f"{value} IS NOT NULL"]
    if spec.base == "datetime":
        value = f"TRY_CAST({c} AS TIMESTAMP)"
        return value, [f"regexp_full_match({c}, {_lit(DATETIME_PATTERN)})", f"{value} IS NOT NULL"]
    return "CAST(NULL AS VARCHAR)", ["FALSE"]


def _native_exprs(spec: FieldSpec, c: str) -> tuple[str, list[str]]:
    if spec.base == "int":
        value = f"CAST({c} AS BIGINT)"
        return value, _range(spec, value, INT32)
    if spec.base == "float":
        value = f"CAST({c} AS DOUBLE)"
        return value, [f"isfinite({value})", *_range(spec, value)]
    if spec.base == "datetime":
        return f"CAST({c} AS TIMESTAMP)", []
    return c, []


def columnar_sql(columns: dict[str, tuple[FieldSpec, bool]]) -> str:
    """One SELECT over ``m`` giving each field's value and ``__bad`` (row needs the model).
    ``columns``: field -> (spec, whether the column already holds the field's type)."""
    select = [_q(POSITION)]
    bad = []
    for name, (spec, native) in columns.items():
        c = _q(name)
        value, ok = _native_exprs(spec, c) if native else _text_exprs(spec, c)
        if spec.default is not None:
            value = f"coalesce({value}, {_lit(spec.default)})"
        sql_type = {
            "int": "BIGINT",
            "float": "DOUBLE",
            "bool": "BOOLEAN",
            "date": "DATE",
            "datetime": "TIMESTAMP",
        }.get(spec.base, "VARCHAR")
        select.append(f"CAST({value} AS {sql_type}) AS {c}")
        null_ok = "FALSE" if spec.required else "TRUE"
        fine = " AND ".join(ok) if ok else "TRUE"
        bad.append(f"NOT coalesce(CASE WHEN {c} IS NULL THEN {null_ok} ELSE ({fine}) END, FALSE)")
    select.append(f"({' OR '.join(bad) or 'FALSE'}) AS __bad")
    # a parallel scan returns rows in any order; later steps keep the first of duplicates
    return f"SELECT {', '.join(select)} FROM m ORDER BY {_q(POSITION)}"
