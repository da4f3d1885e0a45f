"""The columnar validation agrees with Pydantic, record by record, for every field type.

For each kind of field the models use (bounded text, optional text, integers with and without
bounds, numbers with bounds, booleans, dates, datetimes, literals with and without a default),
random values are put into otherwise valid records; ``validate`` must accept exactly the
records the model accepts (within the store's bounds: 32-bit integers, finite numbers, years
1900 to 2200, no NUL character), with the same values.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from surmesure.collect.columnar import INT32, field_spec
from surmesure.collect.mapping import POSITION
from surmesure.collect.records import KINDS
from surmesure.collect.validate import to_utc, validate

BASE: dict[str, dict[str, Any]] = {
    "orders": {
        "order_id": "A1",
        "ordered_at": "2024-01-01 00:00:00",
        "product_code": "P1",
        "quantity": "1",
        "unit_price": "1.5",
    },
    "stores": {"store_id": "S1"},
    "stock": {"product_code": "P1", "store_id": "S1", "quantity": "1"},
    "customers": {"customer_id": "C1"},
    "consents": {
        "email": "a@example.com",
        "purpose": "marketing",
        "granted": "true",
        "recorded_at": "2024-01-01 00:00:00",
    },
}

# (kind, field): one of each field type the import models use
FIELDS = [
    ("orders", "order_id"),  # text, 1..64 characters, required
    ("orders", "description"),  # text up to 512, optional
    ("orders", "currency"),  # text of exactly 3
    ("orders", "quantity"),  # integer
    ("orders", "line_no"),  # integer >= 0, optional
    ("stock", "quantity"),  # integer >= 0, required
    ("orders", "unit_price"),  # number
    ("stores", "latitude"),  # number in [-90, 90]
    ("orders", "is_return"),  # boolean
    ("customers", "birth_date"),  # date
    ("orders", "ordered_at"),  # datetime, required
    ("customers", "gender"),  # literal, optional
    ("consents", "channel"),  # literal with a default
]

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
spaces = st.sampled_from(["", " ", "  ", "\t", "\n", "\u00a0"])


@st.composite
def numberish(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = draw(digits)
    frac = draw(st.one_of(st.just(""), digits.map(lambda d: "." + d), st.just(".")))
    exp = draw(st.sampled_from(["", "e3", "E-2", "e"]))
    sep = draw(st.sampled_from(["", "_"]))
    text = sign + whole[:3] + sep + whole[3:] + frac + exp
    return draw(spaces) + text + draw(spaces)


@st.composite
def dateish(draw: st.DrawFn) -> str:
    year = draw(st.integers(0, 10_999))
    month = draw(st.integers(0, 13))
    day = draw(st.integers(0, 32))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if draw(st.booleans()):
        hour = draw(st.integers(0, 25))
        minute = draw(st.integers(0, 61))
        sep = draw(st.sampled_from(["T", " ", "t", "_"]))
        text += f"{sep}{hour:02d}:{minute:02d}"
        if draw(st.booleans()):
            text += f":{draw(st.integers(0, 61)):02d}"
        text += draw(st.sampled_from(["", ".5", ".123456", ".1234567", "Z", "+01:00", "-0530"]))
    return text


BOOLEANS = ["true", "false", "True", "FALSE", "1", "0", "yes", "no", "on", "off", "t", "y"]
CHOICES = ["f", "m", "x", "F", " f", "email", "sms", "any", "Email", "web", "paper ", "phone"]
CODES = ["", " ", "EUR", "GBP ", "eur", "€€€", "ab", "abcd", "\u00e9t\u00e9"]
FORMULAS = ["=", "=1+1", " =A1", "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "+33 6 12"]
words = st.sampled_from([*BOOLEANS, *CHOICES, *CODES, *FORMULAS])
values = st.one_of(
    st.none(),
    st.text(max_size=70),
    st.text(alphabet=st.characters(codec="ascii"), min_size=60, max_size=70),
    words,
    numberish(),
    dateish(),
)


def _model_verdict(kind: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """The model's verdict, then the store's bounds (32-bit integers, finite numbers, years
    1900 to 2200, no NUL character)."""
    try:
        row = KINDS[kind].model_validate({k: v for k, v in record.items() if v is not None})
    except ValidationError:
        return None
    dumped = row.model_dump()
    for value in dumped.values():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) and not INT32[0] <= value <= INT32[1]:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, date) and not 1900 <= value.year <= 2200:
            return None
        if isinstance(value, str) and "\x00" in value:
            return None
    return dumped


def _check(kind: str, name: str, column: list[Any], arrow_type: pa.DataType) -> None:
    records = [{**BASE[kind], name: value} for value in column]
    names = list(dict.fromkeys([*BASE[kind], name]))
    mapped = pa.table(
        {
            POSITION: pa.array(range(len(records)), pa.int64()),
            **{
                n: pa.array([r[n] for r in records], arrow_type if n == name else pa.string())
                for n in names
            },
        }
    )
    result = validate(mapped, kind)
    accepted = {row[POSITION]: row for row in result.table.to_pylist()}
    for pos, record in enumerate(records):
        expected = _model_verdict(kind, record)
        if expected is None:
            assert pos not in accepted, f"{name}={record[name]!r} accepted, the model refuses"
            continue
        assert pos in accepted, f"{name}={record[name]!r} refused, the model accepts"
        want = expected[name]
        if isinstance(want, datetime):
            want = to_utc(want, ZoneInfo("UTC"))
        assert accepted[pos][name] == want, f"{name}={record[name]!r}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=st.lists(values, min_size=1, max_size=25), which=st.sampled_from(FIELDS))
def test_columnar_and_model_agree_on_text(column: list[Any], which: tuple[str, str]) -> None:
    kind, name = which
    _check(kind, name, column, pa.string())


@settings(max_examples=40, deadline=None)
@given(
    column=st.lists(
        st.one_of(
            st.none(),
            st.integers(-(2**40), 2**40),
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(-1e6, 1e6).map(round),
        ),
        min_size=1,
        max_size=25,
    ),
    which=st.sampled_from([f for f in FIELDS if field_spec(KINDS[f[0]], f[1]).base in
                           ("int", "float")]),
)  # fmt: skip
def test_columnar_and_model_agree_on_native_numbers(
    column: list[Any], which: tuple[str, str]
) -> None:
    kind, name = which
    floats = [None if v is None else float(v) for v in column]
    _check(kind, name, floats, pa.float64())
    if all(v is None or isinstance(v, int) for v in column):
        _check(kind, name, column, pa.int64())
