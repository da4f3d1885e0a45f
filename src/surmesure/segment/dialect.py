"""The few SQL pieces that differ between DuckDB and PostgreSQL: JSON access and hashing.

JSON values (traits, event properties) are compared by kind, as in memory: a JSON string only
equals a string, a JSON number only compares with a number (as a double), a JSON boolean only
with a boolean. A predicate is NULL (so false) when the kinds differ.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from surmesure.domain.segments import Kind, Op, Scalar, kind_of

_NUMBER_TYPES = {"duckdb": ("UBIGINT", "BIGINT", "HUGEINT", "DOUBLE"), "postgresql": ("number",)}
_STRING_TYPE = {"duckdb": "VARCHAR", "postgresql": "string"}
_BOOLEAN_TYPE = {"duckdb": "BOOLEAN", "postgresql": "boolean"}
_NULL_TYPE = {"duckdb": "NULL", "postgresql": "null"}


class Json:
    """JSON helpers for one dialect (``duckdb`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        if dialect not in _STRING_TYPE:
            raise ValueError(f"unsupported dialect {dialect!r}")
        self.dialect = dialect

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    def type_of(self, value: Any) -> ColumnElement[str]:
        fn = sa.func.jsonb_typeof if self.pg else sa.func.json_type
        return fn(value, type_=sa.String)

    def text(self, value: Any) -> ColumnElement[str]:
        if self.pg:
            return value.op("#>>", return_type=sa.Text)(sa.literal_column("'{}'"))  # type: ignore[no-any-return]
        return sa.func.json_extract_string(value, "$", type_=sa.Text)

    def key(self, value: Any, key: str) -> Any:
        """The JSON value under ``key`` of a JSON object (NULL when absent)."""
        if self.pg:
            return value.op("->", return_type=postgresql.JSONB)(sa.literal(key, sa.Text))
        escaped = key.replace("\\", "\\\\").replace('"', '\\"')
        return sa.func.json_extract(value, f'$."{escaped}"', type_=sa.JSON)

    def is_null(self, value: Any) -> ColumnElement[bool]:
        """True for SQL NULL and for JSON ``null``."""
        return sa.or_(value.is_(None), self.type_of(value) == _NULL_TYPE[self.dialect])

    def as_kind(self, value: Any, kind: Kind) -> ColumnElement[Any]:
        """``value`` as a SQL string, double or boolean text when it is a JSON ``kind``, else
        NULL."""
        if kind == "number":
            test = self.type_of(value).in_(_NUMBER_TYPES[self.dialect])
            return sa.case((test, sa.cast(self.text(value), sa.Float(precision=53))))
        expected = _STRING_TYPE[self.dialect] if kind == "string" else _BOOLEAN_TYPE[self.dialect]
        return sa.case((self.type_of(value) == expected, self.text(value)))

    def compare(self, value: Any, op: Op, operand: Scalar | list[Scalar] | None) -> Any:
        """The typed predicate ``value op operand`` on a JSON value (``exists``/``missing``
        are handled by the caller)."""
        first = operand[0] if isinstance(operand, list) else operand
        kind = kind_of(first)
        assert kind is not None
        typed = self.as_kind(value, kind)
        if op == "ne":  # present and not equal, whatever its kind
            return sa.not_(sa.func.coalesce(typed == _sql_operand(operand, kind), sa.false()))
        return compare(typed, op, _sql_operand(operand, kind))


def _sql_operand(operand: Any, kind: Kind) -> Any:
    if kind == "number":  # bound as doubles: an int first must not truncate the rest
        return [float(v) for v in operand] if isinstance(operand, list) else float(operand)
    if kind == "boolean":
        if isinstance(operand, list):
            return ["true" if v else "false" for v in operand]
        return "true" if operand else "false"
    return operand


def compare(column: Any, op: Op, operand: Any) -> Any:
    """``column op operand`` for a typed SQL column (NULL stays NULL, so false); numbers are
    compared as doubles."""
    if kind_of(operand[0] if isinstance(operand, list) else operand) == "number":
        column = sa.cast(column, sa.Float(precision=53))
        operand = _sql_operand(operand, "number")
    match op:
        case "eq":
            return column == operand
        case "ne":
            return column != operand
        case "in":
            return column.in_(list(operand))
        case "lt":
            return column < operand
        case "le":
            return column <= operand
        case "gt":
            return column > operand
        case "ge":
            return column >= operand
        case "contains":
            return sa.func.strpos(column, operand) > 0
        case "exists" | "missing":
            return column.is_not(None)
    raise AssertionError(op)


def bucket_hash(dialect: str, salt: str, person_id: Any) -> ColumnElement[int]:
    """The first 32 bits of ``md5(salt || ':' || person_id)`` as an integer in [0, 2³²)."""
    digest = sa.func.md5(sa.literal(f"{salt}:", sa.Text) + sa.cast(person_id, sa.Text))
    head = sa.func.substr(digest, 1, 8)
    if dialect == "postgresql":
        bits = sa.cast(sa.literal("x", sa.Text) + head, postgresql.BIT(32))
        return sa.cast(bits, sa.BigInteger)
    return sa.cast(sa.literal("0x", sa.Text) + head, sa.BigInteger)
