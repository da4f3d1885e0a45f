"""A past experiment, one row per person, from a CSV or Parquet file, as arrays for learners.

Numeric and boolean columns become features as they are (missing values stay NaN, which the
default gradient-boosting models handle); text columns are one-hot encoded, one feature per
observed value. Rows whose treatment column is neither the treatment nor the control value are
left out, and so are rows with a missing outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from surmesure.errors import InvalidInput, NotFound
from surmesure.learn.source import _relation

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class UpliftData:
    """Features ``x`` (one column per name in ``feature_names``), outcome ``y``, 0/1 ``treated``."""

    x: Array
    y: Array
    treated: npt.NDArray[np.int8]
    feature_names: tuple[str, ...]
    features: tuple[str, ...]
    binary: bool
    dropped_rows: int


def encode(table: pa.Table, features: Sequence[str]) -> tuple[Array, tuple[str, ...]]:
    """Feature matrix of ``features`` from ``table``: numbers as floats, text one-hot."""
    blocks: list[Array] = []
    names: list[str] = []
    for name in features:
        column = table.column(name)
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            blocks.append(np.asarray(values, dtype=np.float64)[:, None])
            names.append(name)
            continue
        text = np.asarray(column.cast(pa.string()).fill_null("(missing)").to_pylist())
        levels = np.unique(text)
        blocks.append((text[:, None] == levels[None, :]).astype(np.float64))
        names += [f"{name}={level}" for level in levels]
    return np.hstack(blocks), tuple(names)


def _read(path: Path) -> pa.Table:
    if not path.exists():
        raise NotFound(f"File {str(path)!r} does not exist.", field="file", hint="check the path")
    relation = _relation(path)
    con = duckdb.connect()
    try:
        return con.sql(f"SELECT * FROM {relation}").to_arrow_table()
    except duckdb.Error as exc:
        raise InvalidInput(f"Could not read {path.name}: {exc}", field="file") from exc
    finally:
        con.close()


def _columns(
    table: pa.Table, path: Path, treatment_column: str, outcome: str, features: Sequence[str] | None
) -> list[str]:
    """The feature columns, every named column checked to exist."""
    columns = table.column_names
    chosen = [c for c in columns if c not in (treatment_column, outcome)]
    chosen = list(features) if features else chosen
    for option, name in [("--treatment-column", treatment_column), ("--outcome", outcome)] + [
        ("--features", f) for f in chosen
    ]:
        if name not in columns:
            raise InvalidInput(
                f"Column {name!r} (from {option}) is not in {path.name}.",
                field=option.lstrip("-"),
                hint=f"choose among: {', '.join(columns)}",
            )
    if outcome in chosen or treatment_column in chosen:
        raise InvalidInput(
            "The outcome and the treatment column cannot be features.",
            field="features",
            hint="remove them from --features",
        )
    return chosen


def _outcome(table: pa.Table, outcome: str) -> Array:
    try:
        y_all = table.column(outcome).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(
            f"Outcome column {outcome!r} is not numeric.", field="outcome", hint="pick a number"
        ) from exc
    return np.asarray(y_all, dtype=np.float64)


def _arms(table: pa.Table, treatment_column: str) -> npt.NDArray[np.object_]:
    return np.asarray(table.column(treatment_column).cast(pa.string()).to_pylist(), dtype=object)


def _require(arm: npt.NDArray[np.object_], column: str, value: str, option: str) -> None:
    if not (arm == value).any():
        seen = sorted({str(a) for a in arm[:100_000]})[:20]
        raise InvalidInput(
            f"No row has {column} = {value!r} (from {option}).",
            field=option.lstrip("-"),
            hint=f"values seen include: {', '.join(seen)}",
        )


def read_uplift_data(
    path: Path,
    treatment_column: str,
    treatment: str,
    control: str,
    outcome: str,
    features: Sequence[str] | None = None,
) -> UpliftData:
    """Rows of ``treatment`` and ``control`` from ``path``; by default every other column except
    ``outcome`` is a feature (name the features when the file holds other outcomes)."""
    table = _read(path)
    chosen = _columns(table, path, treatment_column, outcome, features)
    arm = _arms(table, treatment_column)
    y_all = _outcome(table, outcome)
    keep = ((arm == treatment) | (arm == control)) & np.isfinite(y_all)
    for value, option in ((treatment, "--treatment"), (control, "--control")):
        _require(arm, treatment_column, value, option)
    x, names = encode(table.filter(pa.array(keep)), chosen)
    y = y_all[keep]
    return UpliftData(
        x=x,
        y=y,
        treated=(arm[keep] == treatment).astype(np.int8),
        feature_names=names,
        features=tuple(chosen),
        binary=bool(np.isin(y, (0.0, 1.0)).all()),
        dropped_rows=int((~keep).sum() - (~np.isin(arm, (treatment, control))).sum()),
    )


@dataclass(frozen=True, slots=True)
class ArmsData:
    """Features ``x``, outcome ``y``, and ``arm`` per row: -1 for control, else the index of the
    row's arm in ``arms``."""

    x: Array
    y: Array
    arm: npt.NDArray[np.intp]
    arms: tuple[str, ...]
    feature_names: tuple[str, ...]
    features: tuple[str, ...]
    binary: bool


def read_arms_data(
    path: Path,
    treatment_column: str,
    arms: Sequence[str],
    control: str,
    outcome: str,
    features: Sequence[str] | None = None,
) -> ArmsData:
    """Rows of every arm in ``arms`` and of ``control`` from ``path``, as for one treatment."""
    table = _read(path)
    chosen = _columns(table, path, treatment_column, outcome, features)
    arm = _arms(table, treatment_column)
    y_all = _outcome(table, outcome)
    for value in arms:
        _require(arm, treatment_column, value, "--arms")
    _require(arm, treatment_column, control, "--control")
    keep = np.isin(arm, [*arms, control]) & np.isfinite(y_all)
    index = np.full(arm.size, -1, dtype=np.intp)
    for i, value in enumerate(arms):
        index[arm == value] = i
    x, names = encode(table.filter(pa.array(keep)), chosen)
    y = y_all[keep]
    return ArmsData(
        x=x,
        y=y,
        arm=index[keep],
        arms=tuple(arms),
        feature_names=names,
        features=tuple(chosen),
        binary=bool(np.isin(y, (0.0, 1.0)).all()),
    )
