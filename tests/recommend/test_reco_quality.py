"""Out-of-sample quality on Online Retail II: ours must beat popularity by at least 30%."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import copy_store
from surmesure.decide.recommend import evaluate, model, service
from surmesure.decide.recommend.guardrails import Policy
from surmesure.store import open_store

CUTOFF = datetime(2010, 9, 1)


def test_beats_popularity_on_online_retail(online_retail: tuple[Path, Any], tmp_path: Path) -> None:
    store = open_store(copy_store(online_retail[0], tmp_path))  # the file, imported
    try:
        model.clear_cache()
        with store.connect() as conn:
            holdout = evaluate.holdout(conn, CUTOFF)
            baseline = evaluate.popularity_baseline(conn, holdout, 10)
        ever = Policy(bought_window_days=None)
        ours = {
            pid: [r.product_code for r in recs]
            for pid, _, recs in service.recommend_all(
                store, k=10, as_of=CUTOFF, policy=ever, person_ids=holdout.targets
            )
        }
    finally:
        store.dispose()
        model.clear_cache()
    pop = evaluate.quality(holdout, baseline, 10)
    got = evaluate.quality(holdout, ours, 10)
    assert got.people == pop.people > 1000
    # nothing already bought is recommended, and nothing is made up
    assert all(not set(top) & holdout.bought[pid] for pid, top in ours.items())
    assert got.hit >= 1.3 * pop.hit, (got, pop)
    assert got.recall >= 1.3 * pop.recall, (got, pop)
