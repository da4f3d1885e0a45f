"""A saved next-best-action model for tests: a randomized experiment with two arms whose
effects are known, written as a CSV, fitted and saved by ``uplift actions --save offer``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

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
