"""A saved next-best-action model for tests: a randomized experiment with two arms whose
effects are known, written as a CSV, fitted and saved by ``uplift actions --save offer``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pytest
import sqlalchemy as sa

from conftest import invoke_json
from surmesure.store import Store, schema


def experiment(path: Path, n: int = 9_000, seed: int = 0) -> Path:
    """Arms at random; ``mens`` lifts visits of recent people (recency <= 4), ``womens`` of
    urban people long gone (recency > 8); nothing helps the others."""
    rng = np.random.default_rng(seed)
    recency = rng.integers(1, 13, n)
    zip_ = rng.choice(["Urban", "Rural"], n)
    arm = rng.choice(["none", "mens", "womens"], n)
    p = np.full(n, 0.1)
    p[(arm == "mens") & (recency <= 4)] += 0.4
    p[(arm == "womens") & (recency > 8) & (zip_ == "Urban")] += 0.4
    visit = rng.binomial(1, p)
    lines = ["recency,zip,segment,visit"]
    lines += [f"{r},{z},{a},{v}" for r, z, a, v in zip(recency, zip_, arm, visit, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def save(monkeypatch: pytest.MonkeyPatch, store: Store, csv: Path) -> dict[str, Any]:
    payload = invoke_json(
        monkeypatch,
        store.url,
        "uplift",
        "actions",
        str(csv),
        "--treatment-column",
        "segment",
        "--arms",
        "mens,womens",
        "--control",
        "none",
        "--outcome",
        "visit",
        "--value",
        "10",
        "--cost",
        "0.5",
        "--learner",
        "t",
        "--save",
        "offer",
        "--examples",
        "0",
    )
    return payload


_KEPT: dict[str, Any] = {}
"""The row ``uplift actions --save offer`` wrote the first time :func:`kept` fitted it."""


def kept(monkeypatch: pytest.MonkeyPatch, store: Store, folder: Path) -> None:
    """Model ``offer`` saved in ``store`` as :func:`save` saves it: fitted by the command the
    first time in a test process, its stored row (pickled models and their digest) written
    again into each later store, so tests that only read the model do not fit it again."""
    table = schema.action_models
    row = _KEPT.get("offer")
    if row is None:
        save(monkeypatch, store, experiment(folder / "test.csv"))
        with store.connect() as conn:
            found = conn.execute(sa.select(table).where(table.c.name == "offer"))
            _KEPT["offer"] = dict(found.mappings().one())
        return
    with store.begin() as conn:
        conn.execute(table.insert().values(**row))


def recency(store: Store, person_id: int, days: int, at: datetime) -> None:
    """The person's derived ``recency_days``, computed an hour before ``at``."""
    with store.begin() as conn:
        conn.execute(
            schema.derived_metrics.insert().values(
                person_id=person_id,
                computed_on=at.date(),
                computed_at=at - timedelta(hours=1),
                as_of=at.date(),
                recency_days=days,
                horizon_days=365,
                discount_rate=0.1,
                window_days=365,
            )
        )


HILLSTROM_FEATURES = ("recency", "history", "zip_code")


def hillstrom_sample(path: Path, n: int = 6_000) -> Path:
    """The first ``n`` people of the Hillstrom e-mail test (arms at random), with the columns
    a model reads: recency (months), history (dollars), zip_code, and the arm and visit."""
    from conftest import dataset

    table = pacsv.read_csv(dataset("hillstrom/hillstrom.csv")).slice(0, n)
    pacsv.write_csv(table.select([*HILLSTROM_FEATURES, "segment", "visit"]), path)
    return path


def save_hillstrom(monkeypatch: pytest.MonkeyPatch, store: Store, csv: Path) -> dict[str, Any]:
    """``uplift actions --save hill`` on the sample: the men's and women's e-mails, a visit
    worth 10, an e-mail costing 0.5."""
    return invoke_json(
        monkeypatch,
        store.url,
        "uplift",
        "actions",
        str(csv),
        "--treatment-column",
        "segment",
        "--arms",
        "Mens E-Mail,Womens E-Mail",
        "--control",
        "No E-Mail",
        "--outcome",
        "visit",
        "--value",
        "10",
        "--cost",
        "0.5",
        "--learner",
        "t",
        "--save",
        "hill",
        "--examples",
        "0",
    )
