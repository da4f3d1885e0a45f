"""Association figures and every guardrail, on DuckDB and PostgreSQL, in a hand-made shop."""

from __future__ import annotations

from datetime import date, datetime
from itertools import permutations
from pathlib import Path

import pytest
import sqlalchemy as sa
from reco_world import AS_OF, PRODUCTS, baskets, load_world, person_id

from surmesure.decide.recommend import association, model, service
from surmesure.decide.recommend.guardrails import Policy
from surmesure.errors import InvalidInput, NotFound
from surmesure.store import Store, schema


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Store:
    model.clear_cache()
    load_world(store, tmp_path)
    return store


def codes(store: Store, customer: str | None, **kwargs: object) -> list[str]:
    pid = None if customer is None else person_id(store, customer)
    recs = service.recommend(store, pid, as_of=AS_OF, **kwargs)  # type: ignore[arg-type]
    return [r.product_code for r in recs]


def test_association_figures_match_the_hand_computation(shop: Store) -> None:
    with shop.connect() as conn:
        rules = association.mine_rules(conn, AS_OF)
    # by hand: 7 baskets; A in 4, B in 4, C in 2; A+B in 3 baskets, A+C in 2
    assert rules.baskets == 7
    assert rules.item_baskets == {"A": 4, "B": 4, "C": 2, "D": 2, "E": 2, "F": 1, "G": 1, "H": 1}
    found = {
        (r.antecedent, r.consequent): (r.pair_baskets, r.support, r.confidence, r.lift)
        for rs in rules.by_antecedent.values()
        for r in rs
    }
    hand = {
        ("A", "B"): (3, 3 / 7, 3 / 4, 1.3125),
        ("B", "A"): (3, 3 / 7, 3 / 4, 1.3125),
        ("A", "C"): (2, 2 / 7, 2 / 4, 1.75),
        ("C", "A"): (2, 2 / 7, 2 / 2, 1.75),
    }
    assert set(found) == set(hand)
    for key, figures in hand.items():
        assert found[key] == pytest.approx(figures), key
    # the same figures from the world's own basket list, counted independently
    shop_baskets = baskets()
    n = len(shop_baskets)
    for (a, c), (pair, support, confidence, lift) in found.items():
        both = sum(1 for b in shop_baskets if {a, c} <= b)
        count_a = sum(1 for b in shop_baskets if a in b)
        count_c = sum(1 for b in shop_baskets if c in b)
        assert (pair, support, confidence) == pytest.approx((both, both / n, both / count_a))
        assert lift == pytest.approx((both / count_a) / (count_c / n))
    pairs = {
        (a, c)
        for a, c in permutations(PRODUCTS, 2)
        if sum(1 for b in shop_baskets if {a, c} <= b) >= 2
    }
    assert set(found) == pairs


def test_stock_at_the_home_store(shop: Store) -> None:
    c1 = codes(shop, "C1")  # home S1: F in stock there, E and D out of stock there
    assert "F" in c1 and "E" not in c1 and "D" not in c1
    c2 = codes(shop, "C2")  # home S2: E in stock there, F only at S1
    assert "E" in c2 and "F" not in c2


def test_store_asked_for_replaces_the_home_store(shop: Store) -> None:
    c1 = codes(shop, "C1", store_id="S2")
    assert "E" in c1 and "F" not in c1


def test_online_stock_only_without_a_home_store(shop: Store) -> None:
    c3 = codes(shop, "C3")
    assert "G" in c3  # 2 online
    assert "E" not in c3 and "F" not in c3  # none online


def test_no_stock_data_does_not_filter(shop: Store) -> None:
    # H has no stock row dated before AS_OF; A, B, C have none at all
    assert codes(shop, None) == ["A", "B", "C", "G", "H"]
    # now, H's later row (0 online) is known and takes it out
    now = [r.product_code for r in service.recommend(shop, None)]
    assert "H" not in now and "G" in now


def test_already_bought_is_excluded_within_the_window(shop: Store) -> None:
    c1 = person_id(shop, "C1")  # bought A, B, C on 2024-05-01
    recs = [r.product_code for r in service.recommend(shop, c1, as_of=AS_OF)]
    assert not {"A", "B", "C"} & set(recs)
    short = Policy(bought_window_days=10)  # the purchase is 31 days old
    again = [r.product_code for r in service.recommend(shop, c1, as_of=AS_OF, policy=short)]
    assert {"A", "B", "C"} <= set(again)


def test_consumables_may_be_bought_again(shop: Store) -> None:
    c1 = person_id(shop, "C1")
    policy = Policy(consumable_categories=frozenset({"grocery"}))
    recs = {r.product_code: r for r in service.recommend(shop, c1, as_of=AS_OF, policy=policy)}
    assert "B" in recs and "A" not in recs and "C" not in recs
    assert recs["B"].reason == "bought with Mug"


def test_orders_after_as_of_do_not_count(shop: Store) -> None:
    # C4 buys G on 2024-07-01: recommendable at AS_OF, already bought now
    assert "G" in codes(shop, "C4")
    ever = Policy(bought_window_days=None)
    now = [r.product_code for r in service.recommend(shop, person_id(shop, "C4"), policy=ever)]
    assert "G" not in now


def test_excluded_categories(shop: Store) -> None:
    everyone = [codes(shop, c, exclude_categories=["decor"]) for c in ("C1", "C2", "C3", None)]
    assert all(PRODUCTS[p][1] != "decor" for recs in everyone for p in recs)
    assert any(PRODUCTS[p][1] == "decor" for p in codes(shop, "C2"))


def test_per_category_cap(shop: Store) -> None:
    uncapped = codes(shop, None)
    assert sum(PRODUCTS[p][1] == "kitchen" for p in uncapped) == 3
    capped = codes(shop, None, per_category=1)
    assert capped == ["A", "B", "G"]  # first kitchen, grocery and decor items in order
    two = codes(shop, None, k=2)
    assert two == ["A", "B"]


def test_reasons(shop: Store) -> None:
    c3 = {r.product_code: r for r in service.recommend(shop, person_id(shop, "C3"), as_of=AS_OF)}
    assert c3["B"].reason == "bought with Mug"  # rule A -> B, C3 bought A
    assert c3["G"].reason == "popular"
    assert (c3["B"].name, c3["B"].category, c3["B"].price) == ("Tea", "grocery", 4.0)
    scores = [r.score for r in c3.values()]
    assert scores == sorted(scores, reverse=True)


def test_popular_in_segment(shop: Store) -> None:
    c3, c5, c6 = (person_id(shop, c) for c in ("C3", "C5", "C6"))
    d = schema.derived_metrics
    with shop.begin() as conn:
        conn.execute(
            d.insert(),
            [
                {
                    "person_id": pid,
                    "computed_on": date(2024, 5, 31),
                    "computed_at": datetime(2024, 5, 31),
                    "as_of": date(2024, 5, 31),
                    "rfm_segment": "champions",
                    "horizon_days": 365,
                    "discount_rate": 0.0,
                    "window_days": 365,
                }
                for pid in (c3, c5, c6)
            ],
        )
    recs = {r.product_code: r.reason for r in service.recommend(shop, c3, as_of=AS_OF)}
    # segment buyers: C5 bought E, F; C6 bought G, H, E. Only G and H are in stock online.
    assert recs["G"] == recs["H"] == "popular in your segment"
    assert recs["B"] == "bought with Mug"
    anonymous = service.recommend(shop, None, as_of=AS_OF)
    assert {r.reason for r in anonymous} == {"popular"}


def test_bad_calls(shop: Store) -> None:
    with pytest.raises(NotFound) as missing:
        service.recommend(shop, 999_999, as_of=AS_OF)
    assert missing.value.field == "person_id"
    with pytest.raises(InvalidInput) as bad:
        service.recommend(shop, None, k=0)
    assert bad.value.field == "k"


def test_caller_connection_and_cached_model(shop: Store) -> None:
    with shop.connect() as conn:
        first = service.recommend(shop, None, as_of=AS_OF, conn=conn)
        again = service.recommend(shop, None, as_of=AS_OF, conn=conn)
        assert first == again
        conn.execute(sa.text("SELECT 1"))
    # a new order before AS_OF changes the fingerprint: the model is rebuilt
    with shop.begin() as conn:
        conn.execute(
            schema.orders.insert().values(
                order_id="o10",
                ordered_at=datetime(2024, 5, 30),
                is_return=False,
                total_amount=1.0,
                source="test",
            )
        )
        conn.execute(
            schema.order_lines.insert(),
            [
                {
                    "order_id": "o10",
                    "line_no": i,
                    "product_code": "H",
                    "quantity": 1,
                    "unit_price": 1.0,
                    "amount": 1.0,
                    "is_fee": False,
                }
                for i in (1,)
            ],
        )
    with shop.connect() as conn:
        rebuilt = model.get_model(shop, conn, AS_OF)
    assert rebuilt.rules.baskets == 8


def test_stock_snapshot_is_kept_until_the_stock_changes(shop: Store) -> None:
    from surmesure.decide.recommend import inventory

    inventory.clear_snapshots()
    first = inventory.snapshot(shop, None, None, max_age=0.0)
    first.memo["worked out"] = True  # what decisions derive from it lives as long as it
    same = inventory.snapshot(shop, None, None, max_age=0.0)  # checked, unchanged: kept
    assert same is first and same.memo["worked out"]
    with shop.begin() as conn:
        conn.execute(schema.stock.update().values(quantity=schema.stock.c.quantity + 1))
    changed = inventory.snapshot(shop, None, None, max_age=0.0)
    assert changed is not first and "worked out" not in changed.memo
    assert any(
        changed.quantities[code][where] == first.quantities[code][where] + 1
        for code in first.quantities
        for where in first.quantities[code]
    )
    inventory.clear_snapshots()
