"""The learned ranker of the recommendations: trained at model build on the months before
``as_of`` only, deterministic, absent on too little history, and under every guardrail."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from import_helpers import write_file

from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.decide.recommend import inventory, model, popular, ranker, service
from surmesure.decide.recommend.guardrails import Policy
from surmesure.store import Store

AS_OF = datetime(2024, 6, 1)


@pytest.fixture(autouse=True)
def ranker_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The learned ranker is trained (``SURMESURE_RECOMMEND_RANKER``), and every test builds
    its own models."""
    monkeypatch.setenv("SURMESURE_RECOMMEND_RANKER", "1")
    get_settings.cache_clear()
    model.clear_cache()
    yield
    get_settings.cache_clear()
    model.clear_cache()


MAPPING = "kind: orders\n"
#: six categories of ten products; P00 is out of stock everywhere
CATEGORIES = 6
EVER = Policy(bought_window_days=None)


def _lines(
    seed: int,
    people: int,
    until: datetime,
    prefix: str = "o",
    who: str = "C",
    start: datetime = datetime(2024, 1, 1),
) -> list[dict[str, object]]:
    """Orders of ``people`` customers from ``start``: each favours two categories."""
    rng = random.Random(seed)
    lines: list[dict[str, object]] = []
    for c in range(people):
        liked = rng.sample(range(CATEGORIES), 2)
        at = start + timedelta(days=rng.randrange(110), hours=10)
        n = 0
        while at < until:
            for _ in range(3):
                cat = rng.choice(liked) if rng.random() < 0.8 else rng.randrange(CATEGORIES)
                lines.append(
                    {
                        "order_id": f"{prefix}{c}-{n}", "customer_id": f"{who}{c}",
                        "ordered_at": f"{at:%Y-%m-%d %H:%M:%S}",
                        "product_code": f"P{cat}{rng.randrange(10)}", "quantity": 1,
                        "unit_price": 2.0,
                    }
                )  # fmt: skip
            n += 1
            at += timedelta(days=rng.randrange(10, 30))
    return lines


def _load(store: Store, directory: Path, until: datetime = AS_OF) -> None:
    products = [
        {"product_code": f"P{c}{i}", "name": f"item {c}{i}", "category": f"cat{c}", "price": 2.0}
        for c in range(CATEGORIES)
        for i in range(10)
    ]
    import_file(store, "products", write_file(directory, "products", "csv", products))
    stock = [
        {"product_code": p["product_code"], "store_id": "online",
         "quantity": 0 if p["product_code"] == "P00" else 9, "updated_at": "2024-01-01 00:00:00"}
        for p in products
    ]  # fmt: skip
    import_file(store, "stock", write_file(directory, "stock", "csv", stock))
    _orders(store, directory, _lines(5, 400, until), "orders")


def _orders(store: Store, directory: Path, lines: list[dict[str, object]], name: str) -> None:
    mapping = directory / "orders.yaml"
    mapping.write_text(MAPPING)
    import_file(store, "orders", write_file(directory, name, "csv", lines), mapping=mapping)


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Store:
    model.clear_cache()
    inventory.clear_snapshots()
    _load(store, tmp_path)
    return store


def _lists(store: Store, **kwargs: object) -> dict[int, list[service.Recommendation]]:
    return {
        pid: recs
        for pid, _, recs in service.recommend_all(store, as_of=AS_OF, policy=EVER, **kwargs)  # type: ignore[arg-type]
    }


def test_the_ranker_takes_part_under_every_guardrail(shop: Store) -> None:
    built = model.get_model(shop, None, AS_OF)
    assert built.ranker is not None and built.ranker.months == 3, built.description
    assert built.description.startswith("learned ranker fused")
    lists = _lists(shop, k=6, per_category=2)
    assert len(lists) == 400
    for pid, recs in lists.items():
        bought = {code for _, code in built.people[pid].purchases}
        codes = [r.product_code for r in recs]
        assert len(codes) == 6 and not set(codes) & bought
        assert "P00" not in codes  # out of stock
        assert max(Counter(r.category for r in recs).values()) <= 2
        assert all(r.reason for r in recs)
    # one person alone gets the list the chunked run gave them
    for pid in list(lists)[::80]:
        alone = service.recommend(shop, pid, k=6, per_category=2, as_of=AS_OF, policy=EVER)
        assert alone == lists[pid]
    # the ranker moves lists: without it, today's ranking differs for some people
    today = {
        pid: [r.product_code for r in recs]
        for pid, recs in _lists_without_ranker(shop, built).items()
    }
    assert sum(today[p] != [r.product_code for r in lists[p]] for p in lists) > 40


def _lists_without_ranker(
    store: Store, built: model.Model
) -> dict[int, list[service.Recommendation]]:
    stock = inventory.snapshot(store, None, AS_OF)
    out = {}
    for pid, data in built.people.items():
        ranked = service._ranked(built, data, service.Scoring(), rank=False)
        out[pid] = service.pick(built, data, ranked, stock, 6, None, (), 2, EVER)
    return out


def _probe(built: model.Model) -> np.ndarray:
    """The ranker's probabilities on fixed candidates of the model's first 50 people."""
    assert built.ranker is not None
    people = sorted(built.people)[:50]
    batch = [(built.people[p], service.lists_of(built, built.people[p])) for p in people]
    _, _, x = ranker.features(built.as_of, built.ranker.catalogue, batch)
    return built.ranker.classifier.predict_proba(x)[:, 1]  # type: ignore[no-any-return]


def test_a_purchase_after_as_of_changes_nothing(shop: Store, tmp_path: Path) -> None:
    before = model.get_model(shop, None, AS_OF)
    lists = _lists(shop, k=5)
    probe = _probe(before)
    # more purchases of known customers, all at or after as_of
    later = _lines(9, 120, AS_OF + timedelta(days=200), prefix="late", start=AS_OF)
    assert min(str(line["ordered_at"]) for line in later) >= f"{AS_OF:%Y-%m-%d}"
    _orders(shop, tmp_path, later, "later")
    model.clear_cache()
    after = model.get_model(shop, None, AS_OF)
    assert after is not before and after.ranker is not None and before.ranker is not None
    assert (after.ranker.people, after.ranker.rows) == (before.ranker.people, before.ranker.rows)
    assert np.array_equal(_probe(after), probe)
    assert _lists(shop, k=5) == lists
    # a purchase inside the training months does change what it learns from
    earlier = _lines(11, 60, datetime(2024, 5, 20), prefix="early", who="N")
    _orders(shop, tmp_path, earlier, "earlier")
    model.clear_cache()
    changed = model.get_model(shop, None, AS_OF)
    assert changed.ranker is not None and changed.ranker.people > before.ranker.people


def test_the_same_data_give_the_same_lists(shop: Store) -> None:
    first = model.get_model(shop, None, AS_OF)
    lists = _lists(shop, k=8)
    model.clear_cache()
    inventory.clear_snapshots()
    again = model.get_model(shop, None, AS_OF)
    assert again is not first
    assert np.array_equal(_probe(again), _probe(first))
    assert _lists(shop, k=8) == lists
    # the products' order (hence the rows' and the negatives kept) does not hang on the order
    # the database returns the first sales in
    with shop.connect() as conn:
        sold = popular.first_sold(conn, AS_OF)
    backwards = dict(reversed(list(sold.items())))
    assert ranker.catalogue(first, backwards).codes == ranker.catalogue(first, sold).codes


def test_too_little_history_keeps_todays_ranking(store: Store, tmp_path: Path) -> None:
    model.clear_cache()
    _load(store, tmp_path, until=datetime(2024, 2, 10))
    early = datetime(2024, 2, 10)
    built = model.get_model(store, None, early)
    assert built.learned is not None  # learned signals, but one month at most before them
    assert built.ranker is None
    assert built.description.startswith("no learned ranker: ")
    assert "today's ranking stands" in built.description
    lists = {p: r for p, _, r in service.recommend_all(store, as_of=early, k=5, policy=EVER)}
    assert lists and all(len(r) == 5 for r in lists.values())


def test_many_at_once_get_what_each_gets_alone_with_the_ranker(shop: Store) -> None:
    from surmesure.decide.recommend.batch import pick_many

    built = model.get_model(shop, None, AS_OF)
    assert built.ranker is not None
    stock = inventory.snapshot(shop, None, AS_OF)
    ids = sorted(built.people)
    wishes = [(built.people[p], None, None) for p in ids]
    together = pick_many(built, stock, wishes, k=6, per_category=2)
    assert sum(items is not None for items in together) == len(ids)
    # a send's workers get the model without its people nor what was worked out of it
    handed = replace(built, people={}, memo={})
    for p, items in zip(ids, together, strict=True):
        alone = service.recommend_known(built, stock, built.people[p], k=6, per_category=2)
        assert items == alone, p
        if p % 7 == 0:
            assert (
                service.recommend_known(handed, stock, built.people[p], k=6, per_category=2)
                == alone
            )


def test_without_the_setting_no_ranker_is_trained(
    shop: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SURMESURE_RECOMMEND_RANKER")
    get_settings.cache_clear()
    model.clear_cache()
    built = model.get_model(shop, None, AS_OF)
    assert built.ranker is None
    assert "SURMESURE_RECOMMEND_RANKER" in built.description
    assert built.learned is not None  # the fused ranking stands
