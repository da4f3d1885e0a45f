"""The limits of a storable value, checked against a plain recursive reading of them."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from surmesure.collect import bounds

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64]),
    st.text(max_size=8),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=40,
)


def storable(value: Any, depth: int = 0) -> bool:
    """The reference: every limit of the module docstring, read the obvious way."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return True
    if isinstance(value, int):
        return -(2**63) <= value <= 2**63 - 1
    if depth >= bounds.MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all("\x00" not in k and storable(v, depth + 1) for k, v in value.items())
    return all(storable(v, depth + 1) for v in value)


def nest(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = {"a": value}
    return value


@settings(max_examples=300, deadline=None)
@given(documents, st.integers(0, 40))
def test_fault_agrees_with_the_reference_and_storable_repairs(value: Any, levels: int) -> None:
    value = nest(value, levels)
    found = bounds.fault(value)
    assert (found is None) == storable(value)
    assert bounds.fault(bounds.storable(value)) is None


def test_the_place_of_a_fault_is_named() -> None:
    assert bounds.fault({"a": [1, {"b\x00": 2}]}) == (
        "a[1].b\\u0000",
        "the key contains a NUL character (\\u0000): rename it",
    )
    assert bounds.fault({"n": [0, 2**63]}, "properties")[0] == "properties.n[1]"
    assert bounds.fault(nest(1, 100))[0] == "a" * 1 + ".a" * (bounds.MAX_DEPTH - 1)


def test_loads_keeps_every_integer_exact() -> None:
    text = b'{"big": 123456789012345678901234567890, "id": "12345678901234567890123", "x": 1.5}'
    assert bounds.loads(text) == json.loads(text)
    assert bounds.loads(text)["big"] == 123456789012345678901234567890
    assert bounds.loads(b'{"small": 9007199254740993}') == orjson.loads(
        b'{"small": 9007199254740993}'
    )
