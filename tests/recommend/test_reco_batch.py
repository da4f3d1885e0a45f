"""The products of many people computed together (:mod:`surmesure.decide.recommend.batch`) are
those each person gets alone, item for item, score for score, reason for reason: on a real
slice of Online Retail II, with stock at two stores, what the people bought, a category cap
and a newcomer the fit never saw."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from retail_slice import retail_slice

from surmesure.decide.recommend import model, people, service
from surmesure.decide.recommend.batch import pick_many
from surmesure.decide.recommend.guardrails import Stock

CUTOFF = datetime(2010, 7, 1)


def test_many_people_at_once_get_what_each_gets_alone(tmp_path: Path) -> None:
    store = retail_slice(tmp_path, 8, "2010-07-01")
    try:
        model.clear_cache()
        with store.connect() as conn:
            built = model.get_model(store, conn, CUTOFF)
            everyone = people.everyone(conn, built.as_of)
    finally:
        store.dispose()
        model.clear_cache()
    assert built.learned is not None
    codes = sorted(built.products)
    # a third of the products in stock at store s1 only, a third sold out, the rest unknown
    stock = Stock(
        {
            code: {"s1": 2, "online": 0} if i % 3 == 0 else {"s1": 0, "online": 0}
            for i, code in enumerate(codes)
            if i % 3 != 2
        }
    )
    ids = sorted(everyone)
    newcomer = people.PersonData(10**9, everyone[ids[0]].purchases, None, None)
    wishes = [(everyone[p], "s1" if p % 2 else None, None) for p in ids] + [(newcomer, None, None)]
    wishes.append((None, None, None))  # a visitor: left to the one-person path
    for k, per_category in ((10, 3), (4, 1)):
        together = pick_many(built, stock, wishes, k=k, per_category=per_category)
        assert together[-1] is None
        assert sum(items is not None for items in together) >= 0.9 * len(wishes)
        assert together[-2] is not None  # the newcomer, folded in
        reasons: Counter[str] = Counter()
        for (data, store_id, _), items in zip(wishes, together, strict=True):
            if items is None:
                continue
            alone = service.recommend_known(
                built, stock, data, k=k, store_id=store_id, per_category=per_category
            )
            assert items == alone, data
            reasons.update(r.reason.split(" who bought ")[0] for r in items)
        assert min(reasons["bought by customers"], reasons["liked by customers like you"]) > 50
        assert reasons["popular lately"] > 0, reasons
