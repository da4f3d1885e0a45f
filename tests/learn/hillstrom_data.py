"""The Hillstrom e-mail test loaded once per session, as per-person arrays by segment."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pyarrow.csv as pacsv

from conftest import dataset

ARMS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
CONTROL = "No E-Mail"

Columns = dict[str, dict[str, npt.NDArray[np.float64]]]


@functools.cache
def _load(path: str) -> Columns:
    table = pacsv.read_csv(path)
    segment = np.asarray(table.column("segment").to_pylist())
    out: Columns = {}
    for arm in ARMS:
        mask = segment == arm
        out[arm] = {
            c: table.column(c).to_numpy().astype(np.float64)[mask]
            for c in ("visit", "conversion", "spend", "history", "recency")
        }
    return out


def hillstrom() -> Columns:
    return _load(str(dataset("hillstrom/hillstrom.csv")))
