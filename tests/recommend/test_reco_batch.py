"""The products of many people computed together (:mod:`surmesure.decide.recommend.batch`) are
those each person gets alone, item for item, score for score, reason for reason: on a real
slice of Online Retail II, with stock at two stores, what the people bought, a category cap
and a newcomer the fit never saw; and with categories, consumables, segments and the whole
history banned laid over it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime

import pytest
from retail_slice import retail_slice

from surmesure.decide.recommend import model, people, service
from surmesure.decide.recommend.batch import Wish, pick_many
from surmesure.decide.recommend.guardrails import Policy, Stock

CUTOFF = datetime(2010, 7, 1)

Sliced = tuple[model.Model, dict[int, people.PersonData]]


@pytest.fixture(scope="module")
def sliced(tmp_path_factory: pytest.TempPathFactory) -> Sliced:
    """The model of the slice and everyone in it."""
    store = retail_slice(tmp_path_factory.mktemp("batch"), 8, "2010-07-01")
    try:
        model.clear_cache()
        with store.connect() as conn:
            built = model.get_model(store, conn, CUTOFF)
            everyone = people.everyone(conn, built.as_of)
    finally:
        store.dispose()
        model.clear_cache()
    assert built.learned is not None
    return built, everyone


def _stock(built: model.Model) -> Stock:
    """A third of the products in stock at store s1 only, a third sold out, the rest unknown."""
    codes = sorted(built.products)
    return Stock(
        {
            code: {"s1": 2, "online": 0} if i % 3 == 0 else {"s1": 0, "online": 0}
            for i, code in enumerate(codes)
            if i % 3 != 2
        }
    )


def test_many_people_at_once_get_what_each_gets_alone(sliced: Sliced) -> None:
    built, everyone = sliced
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


def test_categories_consumables_and_segments_change_nothing_of_that(sliced: Sliced) -> None:
    """Products in four categories (a fifth without), one of them bought again, people in
    two segments with rankings of their own, all history or the last year banned: the cap,
    the bans and the segments' priors give each person what they get alone."""
    base, everyone = sliced
    codes = sorted(base.products)
    products = {
        code: replace(base.products[code], category=None if i % 5 == 4 else f"c{i % 4}")
        for i, code in enumerate(codes)
    }
    by_segment = {"a": base.popular[::2], "b": tuple(reversed(base.popular[:300]))}
    segment = {0: "a", 1: "b", 2: None}
    folks = {p: replace(d, segment=segment[p % 3]) for p, d in everyone.items()}
    built = replace(  # nothing trending: the segments' rankings lead the priors
        base, products=products, by_segment=by_segment, people=folks, trending=(), memo={}
    )
    stock = _stock(built)
    ids = sorted(folks)[::2]
    wishes: list[Wish] = [(folks[p], "s1" if p % 4 == 1 else None, None) for p in ids]
    capped: Counter[str] = Counter()
    for policy in (
        Policy(bought_window_days=None, consumable_categories=frozenset({"c1"})),
        Policy(),
    ):
        for k, per_category in ((10, 3), (10, 1)):
            together = pick_many(
                built, stock, wishes, k=k, per_category=per_category, policy=policy
            )
            assert sum(items is not None for items in together) >= 0.9 * len(wishes)
            for (data, store_id, _), items in zip(wishes, together, strict=True):
                if items is None:
                    continue
                alone = service.recommend_known(
                    built, stock, data, k=k, store_id=store_id, per_category=per_category,
                    policy=policy,
                )  # fmt: skip
                assert items == alone, data
                categories = Counter(r.category for r in items if r.category is not None)
                assert max(categories.values(), default=0) <= per_category
                capped.update(r.reason for r in items if r.reason.startswith("popular"))
                capped["full"] += len(items) == k
    assert capped["full"] > len(wishes) and capped["popular in your segment"] > 0, capped
