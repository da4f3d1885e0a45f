"""The learned ranker of the recommendations: fitted once, kept in the store and read back
with the same scores, trained on the months before ``as_of`` only, absent on too little
history, under every guardrail; whoever recommends (a server included) fits nothing.

The shop is fitted once per store for the module (the fit is the slow part)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from import_helpers import write_file

from conftest import fresh_postgres
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.decide.recommend import inventory, kept, learned, model, popular, ranker, service
from surmesure.decide.recommend.guardrails import Policy
from surmesure.decide.recommend.scoring import Scoring
from surmesure.store import Store, open_store, schema

AS_OF = datetime(2024, 6, 1)
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


def _load(store: Store, directory: Path) -> None:
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
    _orders(store, directory, _lines(5, 400, AS_OF), "orders")


def _orders(store: Store, directory: Path, lines: list[dict[str, object]], name: str) -> None:
    mapping = directory / "orders.yaml"
    mapping.write_text(MAPPING)
    import_file(store, "orders", write_file(directory, name, "csv", lines), mapping=mapping)


@dataclass(frozen=True)
class Shop:
    store: Store
    #: the model fitted in this process (the ranker trained) and the version it was kept as
    fitted: model.Model
    version: int
    folder: Path


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The settings as shipped (the ranker on), and no model held from another test."""
    monkeypatch.delenv("SURMESURE_RECOMMEND_RANKER", raising=False)
    get_settings.cache_clear()
    model.clear_cache()
    yield
    get_settings.cache_clear()
    model.clear_cache()


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    """The shop on each store, its model fitted once (with the ranker) and kept."""
    folder = tmp_path_factory.mktemp("ranker")
    with ExitStack() as stack:
        if request.param == "duckdb":
            url = f"duckdb:///{folder / 'store.duckdb'}"
        else:
            url = stack.enter_context(fresh_postgres("ranker_store"))
        store = open_store(url)
        stack.callback(store.dispose)
        _load(store, folder)
        get_settings.cache_clear()
        model.clear_cache()
        with store.connect() as conn:
            fitted = model.build(conn, AS_OF)
        version, _ = kept.keep(store, fitted)
        yield Shop(store, fitted, version, folder)


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the learned signals are fitted and the ranker trained from here on."""
    counts: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(f"{model.__name__}.fit", counting("fit", learned.fit))
    monkeypatch.setattr(f"{model.__name__}.train", counting("train", ranker.train))
    return counts


def _lists(store: Store, **kwargs: object) -> dict[int, list[service.Recommendation]]:
    return {
        pid: recs
        for pid, _, recs in service.recommend_all(store, as_of=AS_OF, policy=EVER, **kwargs)  # type: ignore[arg-type]
    }


def _probe(built: model.Model) -> np.ndarray:
    """The ranker's probabilities on the candidates of the model's first 50 people."""
    assert built.ranker is not None
    people = sorted(built.people)[:50]
    batch = [(built.people[p], service.lists_of(built, built.people[p])) for p in people]
    _, _, x = ranker.features(built.as_of, built.ranker.catalogue, batch)
    return built.ranker.classifier.predict_proba(x)[:, 1]


def test_the_kept_model_scores_as_the_fitted_one(shop: Shop, fits: Counter[str]) -> None:
    loaded = model.get_model(shop.store, None, AS_OF)
    assert loaded.kept == shop.version and loaded.ranker is not None
    assert loaded.description.startswith(f"kept model version {shop.version}, fitted on")
    assert "learned ranker fused with today's ranking" in loaded.description
    assert shop.fitted.ranker is not None and loaded.learned is not None
    assert loaded.ranker.months == shop.fitted.ranker.months == 3
    probe = _probe(loaded)
    assert probe.size > 1000 and np.unique(probe).size > 50
    assert np.array_equal(probe, _probe(shop.fitted))
    mine, theirs = loaded.ranker.catalogue, shop.fitted.ranker.catalogue
    assert mine.codes == theirs.codes and np.array_equal(mine.age_days, theirs.age_days)
    fitted_learned = shop.fitted.learned
    assert fitted_learned is not None
    assert (loaded.learned.similarity != fitted_learned.similarity).nnz == 0
    assert np.array_equal(loaded.learned.person_factors, fitted_learned.person_factors)
    # the same lists, many at once and one at a time
    from surmesure.decide.recommend.batch import pick_many

    stock = inventory.snapshot(shop.store, None, AS_OF)
    ids = sorted(loaded.people)[::9]
    wishes = [(loaded.people[p], None, None) for p in ids]
    together = pick_many(loaded, stock, wishes, k=6, per_category=2)
    assert together == pick_many(shop.fitted, stock, wishes, k=6, per_category=2)
    for p, items in zip(ids, together, strict=True):
        assert items is not None and len(items) == 6
        assert items == service.recommend_known(shop.fitted, stock, loaded.people[p], k=6,
                                                per_category=2)  # fmt: skip
    assert fits == Counter()  # read, not fitted


def test_one_person_is_scored_as_in_a_batch_of_the_products_counted(shop: Shop) -> None:
    """One person's probabilities of the products asked for are those :meth:`Ranker.scores`
    gives them among all their candidates, and the list the one-person path picks (the
    ranker asked of today's first ``KEEP`` only) is the list picked from every candidate's
    probability."""
    built = shop.fitted
    assert built.ranker is not None
    stock = inventory.snapshot(shop.store, None, AS_OF)
    checked = 0
    for p in sorted(built.people)[::5]:
        data = built.people[p]
        ranked = service._ranked(built, data, Scoring())
        if ranked.person is None:  # no learned signal for them: no ranker either
            continue
        assert ranked.person is data and ranked.learned is None
        lists = service.lists_of(built, data)
        everything = built.ranker.scores(built, [(data, lists)])[0]
        wanted = [*sorted(everything)[::3], "no such product"]
        got = built.ranker.scores_of(built, data, lists, wanted)
        assert got == {c: everything[c] for c in wanted if c in everything} and got
        plain = replace(
            ranked, person=None, learned=built.ranker.scores(built, [(data, ranked)])[0]
        )
        for k, per_category in ((4, 3), (10, 1)):
            mine = service.pick(built, data, ranked, stock, k, None, (), per_category, None)
            theirs = service.pick(built, data, plain, stock, k, None, (), per_category, None)
            assert mine == theirs and 0 < len(mine) <= k
        checked += 1
    assert checked > 20


def test_the_ranker_takes_part_under_every_guardrail(shop: Shop) -> None:
    lists = _lists(shop.store, k=6, per_category=2)
    built = model.get_model(shop.store, None, AS_OF)
    assert len(lists) == 400
    for pid, recs in lists.items():
        bought = {code for _, code in built.people[pid].purchases}
        codes = [r.product_code for r in recs]
        assert len(codes) == 6 and not set(codes) & bought
        assert "P00" not in codes  # out of stock
        assert max(Counter(r.category for r in recs).values()) <= 2
        assert all(r.reason for r in recs)
    for pid in list(lists)[::80]:  # one person alone gets the list the chunked run gave them
        alone = service.recommend(shop.store, pid, k=6, per_category=2, as_of=AS_OF, policy=EVER)
        assert alone == lists[pid]
    # the ranker moves lists: without it, today's ranking differs for some people
    stock = inventory.snapshot(shop.store, None, AS_OF)
    moved = 0
    for pid, data in built.people.items():
        ranked = service._ranked(built, data, Scoring(), rank=False)
        today = service.pick(built, data, ranked, stock, 6, None, (), 2, EVER)
        moved += [r.product_code for r in today] != [r.product_code for r in lists[pid]]
    assert moved > 40


def test_recommending_and_serving_fit_nothing(shop: Shop, fits: Counter[str]) -> None:
    from surmesure.decide.serving import Serving

    before = kept.reads[0]
    assert len(_lists(shop.store, k=5)) == 400
    with shop.store.connect() as conn:
        pid = min(model.get_model(shop.store, conn, AS_OF).people)
    assert len(service.recommend(shop.store, pid, k=5, as_of=AS_OF)) == 5
    Serving(shop.store)._warm()  # what a decision server builds at start and every 15 minutes
    now = model.get_model(shop.store, None, None)
    assert now.kept == shop.version and now.ranker is not None
    assert fits == Counter()
    assert kept.reads[0] == before + 1  # the payload is read once in the process


def test_without_a_kept_model_the_plain_ranking_stands_and_says_so(
    shop: Shop, fits: Counter[str]
) -> None:
    earlier = AS_OF - timedelta(days=10)  # nothing kept was fitted on data before it
    built = model.get_model(shop.store, None, earlier)
    assert built.kept is None and built.ranker is None and built.learned is not None
    assert built.description.startswith("no kept recommendation model fitted before")
    assert "surmesure recommend --fit" in built.description
    assert fits == Counter({"fit": 1})  # the signals, not the ranker
    lists = {p: r for p, _, r in service.recommend_all(shop.store, as_of=earlier, k=5, policy=EVER)}
    assert len(lists) == 400 and all(len(r) == 5 for r in lists.values())


def test_the_setting_turns_the_ranker_off(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURMESURE_RECOMMEND_RANKER", "0")
    get_settings.cache_clear()
    built = model.get_model(shop.store, None, AS_OF)
    assert built.kept == shop.version and built.ranker is None and built.learned is not None
    assert built.description.endswith("no learned ranker (SURMESURE_RECOMMEND_RANKER=0)")
    with shop.store.connect() as conn:
        assert model.build(conn, AS_OF).ranker is None  # nor is one trained


def test_a_newer_fit_is_taken_up_and_too_little_history_trains_none(shop: Shop) -> None:
    held = model.get_model(shop.store, None, None)
    assert held.kept == shop.version
    try:
        # too little history before February: learned signals but no ranker
        early, _ = kept.fit_and_keep(shop.store, datetime(2024, 2, 10))
        newer, figures = kept.keep(shop.store, replace(shop.fitted, ranker=None))
        assert figures["ranker"] is None and figures["data_until"] < AS_OF
        assert model.get_model(shop.store, None, None) is held  # until it is renewed
        renewed = model.get_model(shop.store, None, None, max_age=0.0)
        assert renewed.kept == newer and renewed.ranker is None
        # a past date sees the new version at once (the fingerprint counts them)
        assert model.get_model(shop.store, None, AS_OF).kept == newer
        first = model.get_model(shop.store, None, datetime(2024, 2, 20))
        assert first.kept == early and first.ranker is None and first.learned is not None
        assert "no learned ranker: " in first.description
        assert "today's ranking stands" in first.description
    finally:
        table = schema.recommendation_models
        with shop.store.begin() as conn:
            conn.execute(table.delete().where(table.c.version != shop.version))


def test_a_purchase_after_as_of_changes_nothing(shop: Shop) -> None:
    later = _lines(9, 120, AS_OF + timedelta(days=200), prefix="late", start=AS_OF)
    assert min(str(line["ordered_at"]) for line in later) >= f"{AS_OF:%Y-%m-%d}"
    _orders(shop.store, shop.folder, later, "later")
    try:
        with shop.store.connect() as conn:
            again = model.build(conn, AS_OF)
            sold = popular.first_sold(conn, AS_OF)
        assert again.ranker is not None and shop.fitted.ranker is not None
        assert (again.ranker.people, again.ranker.rows) == (
            shop.fitted.ranker.people, shop.fitted.ranker.rows,
        )  # fmt: skip
        assert np.array_equal(_probe(again), _probe(shop.fitted))
        # the products' order (hence the rows' and the negatives kept) does not hang on the
        # order the database returns the first sales in
        backwards = dict(reversed(list(sold.items())))
        assert ranker.catalogue(again, backwards).codes == ranker.catalogue(again, sold).codes
    finally:
        with shop.store.begin() as conn:
            gone = sa.select(schema.orders.c.order_id).where(schema.orders.c.order_id.like("late%"))
            conn.execute(schema.order_lines.delete().where(schema.order_lines.c.order_id.in_(gone)))
            conn.execute(schema.orders.delete().where(schema.orders.c.order_id.like("late%")))
            after = schema.orders.c.ordered_at >= AS_OF
            assert conn.execute(sa.select(sa.func.count()).where(after)).scalar() == 0


def test_workers_rank_everyone_as_one_process_does(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surmesure.decide.recommend import everyone

    alone = _lists(shop.store, k=5)
    monkeypatch.setattr(everyone, "CHUNK", 60)  # seven blocks, on two processes
    monkeypatch.setenv("SURMESURE_RECOMMEND_WORKERS", "2")
    get_settings.cache_clear()
    forked = []
    real = everyone.rank_block
    monkeypatch.setattr(everyone, "rank_block", lambda *a: forked.append(1) or real(*a))
    together = _lists(shop.store, k=5)
    assert forked == []  # every block was ranked in a worker (what they note stays there)
    assert list(together) == list(alone) and together == alone
    assert everyone.workers(400) == 1 and everyone.workers(everyone.PARALLEL_FROM) >= 1


def test_training_a_block_of_people_at_a_time_trains_the_same_ranker(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidates are made a block of people at a time (memory): a block of 7 people
    gives the ranker trained on everyone at once, row for row."""
    assert shop.fitted.ranker is not None and shop.fitted.ranker.people > 7
    monkeypatch.setattr(ranker, "TRAIN_BLOCK", 7)
    with shop.store.connect() as conn:
        again = model.build(conn, AS_OF)
    assert again.ranker is not None
    assert (again.ranker.people, again.ranker.rows) == (
        shop.fitted.ranker.people, shop.fitted.ranker.rows,
    )  # fmt: skip
    assert np.array_equal(_probe(again), _probe(shop.fitted))
