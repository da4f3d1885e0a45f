"""``recommend --all`` (blocks of people ranked at once, the learned ranker scoring each block
in one call) gives each person the list ``recommend --person`` gives them, item for item,
score for score, reason for reason: on a real slice of Online Retail II, its model fitted with
the learned ranker and kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from retail_slice import retail_slice

from surmesure.config import get_settings
from surmesure.decide.recommend import everyone, model, service
from surmesure.decide.recommend.kept import fit_and_keep

CUTOFF = datetime(2010, 9, 1)


@pytest.fixture(autouse=True)
def ranker_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SURMESURE_RECOMMEND_RANKER", raising=False)
    monkeypatch.setenv("SURMESURE_RECOMMEND_WORKERS", "1")
    get_settings.cache_clear()
    model.clear_cache()
    yield
    get_settings.cache_clear()
    model.clear_cache()


def test_everyone_gets_the_list_each_person_gets_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = retail_slice(tmp_path, 4, "2010-09-01")
    try:
        fit_and_keep(store, CUTOFF)
        model.clear_cache()
        with store.connect() as conn:
            built = model.get_model(store, conn, CUTOFF)
        assert built.ranker is not None and built.learned is not None, built.description
        wanted = sorted(built.people)[::4]
        monkeypatch.setattr(everyone, "CHUNK", 97)  # several blocks, the last one short
        together = {
            pid: recs
            for pid, _, recs in service.recommend_all(store, k=10, as_of=CUTOFF, person_ids=wanted)
        }
        assert sorted(together) == wanted and len(wanted) > 150
        for pid in wanted:
            alone = service.recommend(store, pid, k=10, as_of=CUTOFF)
            assert together[pid] == alone, pid
        reasons = {r.reason.split(" who bought ")[0] for recs in together.values() for r in recs}
        assert {"bought by customers", "liked by customers like you"} <= reasons, reasons
        assert sum(len(recs) == 10 for recs in together.values()) > 0.9 * len(wanted)
    finally:
        store.dispose()
        model.clear_cache()
