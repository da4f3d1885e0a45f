"""Vectorized text for the demo world: numbers, words and templates as Arrow string arrays,
so a million names or identifiers are formatted without a Python loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Text: TypeAlias = pa.Array | pa.ChunkedArray | str


def digits(values: np.ndarray, width: int, prefix: str = "") -> pa.Array:
    """``prefix`` followed by each value zero-padded to ``width`` digits."""
    text = pc.utf8_lpad(pa.array(values, pa.int64()).cast(pa.string()), width=width, padding="0")
    return join(prefix, text) if prefix else text


def join(*parts: Text) -> pa.Array:
    """Element-wise concatenation; a null part makes the result null."""
    return pc.binary_join_element_wise(*parts, "")


def words(vocabulary: Sequence[str], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """``vocabulary[index]`` for each index; null where ``mask`` is False."""
    taken = pa.array(list(vocabulary), pa.string()).take(pa.array(index, pa.int64()))
    if mask is None:
        return taken
    return pc.if_else(pa.array(mask), taken, pa.scalar(None, pa.string()))


def where(mask: np.ndarray, when_true: Text, when_false: Text) -> pa.Array:
    return pc.if_else(pa.array(mask, pa.bool_()), when_true, when_false)


def null_where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    """``values`` with nulls where ``mask`` is True."""
    return where(mask, pa.scalar(None, values.type), values)


def cut(values: Text, start: int, stop: int) -> pa.Array:
    return pc.utf8_slice_codeunits(values, start, stop)


def timestamps(values: np.ndarray) -> pa.Array:
    """Seconds since the epoch as a naive timestamp column (written 2026-03-14 15:42:07)."""
    return pa.array(values.astype("datetime64[s]"), pa.timestamp("s"))


def dates(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    array = pa.array(values.astype("datetime64[D]"), pa.date32())
    return array if mask is None else null_where(~mask, array)


def iso_utc(values: np.ndarray) -> pa.Array:
    """Milliseconds since the epoch as ISO 8601 text in UTC (2026-03-14T15:42:07.123Z)."""
    stamps = pa.array(values.astype("datetime64[ms]"), pa.timestamp("ms"))
    return join(pc.strftime(stamps, "%Y-%m-%dT%H:%M:%S"), "Z")


def hex_ids(rng: np.random.Generator, count: int, uuid: bool = True) -> list[str]:
    """``count`` random identifiers: UUID-shaped (version 4) or 32 hex digits."""
    high = rng.integers(0, 2**63, size=count, dtype=np.int64)
    low = rng.integers(0, 2**63, size=count, dtype=np.int64)
    if not uuid:
        return [f"{h:016x}{lo:016x}" for h, lo in zip(high.tolist(), low.tolist(), strict=True)]
    return [
        f"{h >> 32:08x}-{(h >> 16) & 0xFFFF:04x}-4{h & 0xFFF:03x}-"
        f"{0x8000 | (lo >> 48) & 0x3FFF:04x}-{lo & 0xFFFFFFFFFFFF:012x}"
        for h, lo in zip(high.tolist(), low.tolist(), strict=True)
    ]
