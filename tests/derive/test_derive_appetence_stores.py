"""Channel appetence, preferred store and affinities on a hand-made shop (both stores)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
import sqlalchemy as sa
from derive_more_data import AS_OF, load_activity, load_events, load_shop

from surmesure.derive.affinity import affinities
from surmesure.derive.appetence import CHANNELS, MAX_STRENGTH, appetence, fit_prior
from surmesure.derive.run import derive
from surmesure.derive.source import ibis_backend
from surmesure.derive.stores import preferred_stores
from surmesure.store import Store, schema

ACTIVITY = [
    # person 1: three e-mails, two opened (one also clicked): n 3, k 2
    ("a1", 1, "email", "sent", "E1", "2024-01-01 09:00"),
    ("a2", 1, "email", "sent", "E2", "2024-02-01 09:00"),
    ("a3", 1, "email", "sent", "E3", "2024-03-01 09:00"),
    ("a4", 1, "email", "opened", "E1", "2024-01-01 10:00"),
    ("a5", 1, "email", "clicked", "E1", "2024-01-01 10:01"),
    ("a6", 1, "email", "opened", "E2", "2024-02-02 10:00"),
    # person 2: ten e-mails, one opened: n 10, k 1
    *[(f"b{i}", 2, "email", "sent", f"E{i}", "2024-01-05 09:00") for i in range(1, 11)],
    ("b11", 2, "email", "opened", "E4", "2024-01-06 09:00"),
    # person 3: one e-mail sent and delivered (one message), never opened; a later one ignored
    ("c1", 3, "email", "sent", "E1", "2024-01-01 09:00"),
    ("c2", 3, "email", "delivered", "E1", "2024-01-01 09:01"),
    ("c3", 3, "email", "sent", "E9", "2024-04-10 09:00"),
    ("c4", 3, "email", "opened", "E9", "2024-04-10 10:00"),
    # person 4: an open without a send is no exposure
    ("d1", 4, "email", "opened", "E5", "2024-01-01 10:00"),
    # sms: person 1 one text clicked, person 2 two texts (no campaign) none answered
    ("s1", 1, "sms", "sent", "T1", "2024-01-01 09:00"),
    ("s2", 1, "sms", "clicked", "T1", "2024-01-01 09:30"),
    ("s3", 2, "sms", "sent", None, "2024-01-01 09:00"),
    ("s4", 2, "sms", "sent", None, "2024-02-01 09:00"),
    # not identified: ignored
    ("x1", 6, "email", "sent", "E1", "2024-01-01 09:00"),
    ("x2", 6, "email", "opened", "E1", "2024-01-01 10:00"),
]
EVENTS = [
    # person 1: two web days, an action on one: n 2, k 1
    ("m1", 1, "page", "2024-03-01 10:00"),
    ("m2", 1, "track", "2024-03-01 10:05"),
    ("m3", 1, "page", "2024-03-02 10:00"),
    # person 2: one day of reading only: n 1, k 0; person 3: a screen and an action: n 1, k 1
    ("m4", 2, "page", "2024-03-03 10:00"),
    ("m5", 3, "screen", "2024-03-04 10:00"),
    ("m6", 3, "track", "2024-03-04 10:01"),
    ("m7", 3, "identify", "2024-03-05 10:00"),  # not a visit
    ("m8", None, "page", "2024-03-05 10:00"),  # anonymous
]
# person -> channel -> (n, k), by hand from the rows above
COUNTS = {
    1: {"email": (3, 2), "sms": (1, 1), "web": (2, 1)},
    2: {"email": (10, 1), "sms": (2, 0), "web": (1, 0)},
    3: {"email": (1, 0), "web": (1, 1)},
}


def _prior(pairs: list[tuple[int, int]]) -> tuple[float, float]:
    """The method-of-moments Beta prior written out with plain Python arithmetic."""
    rates = [k / n for n, k in pairs]
    m = sum(rates) / len(rates)
    var = sum((r - m) ** 2 for r in rates) / len(rates)
    noise = m * (1 - m) * sum(1 / n for n, _ in pairs) / len(pairs)
    strength = MAX_STRENGTH if var - noise <= 0 else m * (1 - m) / (var - noise) - 1
    strength = min(max(strength, 1.0), MAX_STRENGTH)
    return m * strength, (1 - m) * strength


def test_appetence_is_the_closed_form_posterior_mean(store: Store) -> None:
    load_shop(store)
    load_activity(store, ACTIVITY)
    load_events(store, EVENTS)
    with ibis_backend(store) as backend:
        table, priors = appetence(backend, AS_OF)
    rows = {r["person_id"]: r for r in table.to_pylist()}
    assert set(rows) == {1, 2, 3}
    fitted = {p.channel: p for p in priors}
    for channel in CHANNELS:
        pairs = [c[channel] for c in COUNTS.values() if channel in c]
        if not pairs:
            assert fitted[channel].people == 0
            assert all(r[f"appetence_{channel}"] is None for r in rows.values())
            continue
        a, b = _prior(pairs)
        assert (fitted[channel].a, fitted[channel].b) == (pytest.approx(a), pytest.approx(b))
        assert fitted[channel].people == len(pairs)
        for person, counts in COUNTS.items():
            got = rows[person][f"appetence_{channel}"]
            if channel not in counts:
                assert got is None
                continue
            n, k = counts[channel]
            assert got == pytest.approx((a + k) / (a + b + n), rel=1e-12)
    for person, row in rows.items():
        exposed = {c: row[f"appetence_{c}"] for c in COUNTS[person]}
        assert row["best_channel"] == max(exposed, key=lambda c: exposed[c])


def test_smoothing_ranks_by_evidence_not_by_raw_rate() -> None:
    # a population of 0.1 rates; one person 1 of 2, another 30 of 100: the raw rate ranks the
    # first higher (0.5 > 0.3), the posterior puts the one with evidence first
    rng = np.random.default_rng(3)
    n = rng.integers(5, 40, 2000)
    k = rng.binomial(n, rng.beta(2.0, 18.0, 2000))
    prior = fit_prior("email", np.append(n, [2, 100]), np.append(k, [1, 30]))
    few = (prior.a + 1) / (prior.a + prior.b + 2)
    many = (prior.a + 30) / (prior.a + prior.b + 100)
    assert many > few
    # the method of moments recovers the Beta(2, 18) that generated the data
    assert prior.a / (prior.a + prior.b) == pytest.approx(0.1, abs=0.01)
    assert prior.a + prior.b == pytest.approx(20.0, rel=0.25)


def test_no_spread_beyond_noise_gives_everyone_the_population_rate() -> None:
    prior = fit_prior("sms", np.array([10, 10, 10, 10]), np.array([5, 5, 5, 5]))
    assert prior.a + prior.b == MAX_STRENGTH and prior.mean_rate == 0.5


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def test_preferred_store_and_distance_by_hand(store: Store) -> None:
    load_shop(store)
    with ibis_backend(store) as backend:
        table = preferred_stores(backend, AS_OF).to_pyarrow()
    rows = {r.pop("person_id"): r for r in table.to_pylist()}
    paris_lyon = _haversine((48.8566, 2.3522), (45.7640, 4.8357))
    assert 390 < paris_lyon < 393  # the known road-free distance, about 392 km
    # 1: two purchases in S1 (the return does not count) against one in S2; home S2 (the more
    #    reliable trait); 2: the online order does not count, S2 bought, no home store;
    # 3: no order, home S1; 4: S3 has no coordinates; 5: only a return, home trait too late
    assert set(rows) == {1, 2, 3, 4}
    assert rows[1]["preferred_store_id"] == "S1"
    assert rows[1]["preferred_store_basis"] == "orders"
    assert rows[1]["preferred_store_km"] == pytest.approx(paris_lyon, rel=1e-9)
    assert rows[2] == {
        "preferred_store_id": "S2",
        "preferred_store_basis": "orders",
        "preferred_store_km": None,
    }
    assert rows[3] == {
        "preferred_store_id": "S1",
        "preferred_store_basis": "home_store",
        "preferred_store_km": 0.0,
    }
    assert rows[4]["preferred_store_id"] == "S3" and rows[4]["preferred_store_km"] is None


def test_category_and_product_affinities_by_hand(store: Store) -> None:
    load_shop(store)
    with ibis_backend(store) as backend:
        table = affinities(backend, AS_OF).to_pyarrow()
    rows = {r.pop("person_id"): r for r in table.to_pylist()}
    # 1: shoes 50, bags 30 + 40 - 20 = 50 (tie: by name), hats 10, socks 5; fees left out;
    #    products P1 50 and P2 50 (tie: by code)
    # 2: socks 12 (P5 has no category, the later order is after as_of); P5 100 is the product
    # 4: shoes 20; 5: only a return, no row; 6: not identified
    assert set(rows) == {1, 2, 4}
    assert rows[1] == {
        "top_category_1": "bags",
        "top_category_2": "shoes",
        "top_category_3": "hats",
        "top_category_share": pytest.approx(50 / 115),
        "top_product_code": "P1",
    }
    assert rows[2] == {
        "top_category_1": "socks",
        "top_category_2": None,
        "top_category_3": None,
        "top_category_share": pytest.approx(1.0),
        "top_product_code": "P5",
    }
    assert rows[4]["top_category_1"] == "shoes" and rows[4]["top_product_code"] == "P1"


def test_derive_stores_the_new_columns(store: Store) -> None:
    load_shop(store)
    load_activity(store, ACTIVITY)
    load_events(store, EVENTS)
    result = derive(store, as_of=AS_OF, now=datetime(2024, 4, 1, 6, 0))
    assert {p.channel: p.people for p in result.channels} == {
        "email": 3,
        "sms": 2,
        "phone": 0,
        "paper": 0,
        "web": 3,
    }
    with store.connect() as conn:
        rows = {r.person_id: r for r in conn.execute(sa.select(schema.derived_metrics)).all()}
    assert set(rows) == {1, 2, 3, 4, 5}
    with ibis_backend(store) as backend:
        wide, _ = appetence(backend, AS_OF)
        places = preferred_stores(backend, AS_OF).to_pyarrow()
    for r in wide.to_pylist():
        stored = rows[r["person_id"]]
        assert stored.best_channel == r["best_channel"]
        assert stored.appetence_email == r["appetence_email"]
        assert stored.appetence_web == r["appetence_web"]
    assert rows[4].best_channel is None and rows[5].appetence_email is None
    for r in places.to_pylist():
        assert rows[r["person_id"]].preferred_store_id == r["preferred_store_id"]
    assert rows[5].preferred_store_id is None
    assert (rows[1].top_category_1, rows[1].top_product_code) == ("bags", "P1")
    assert rows[3].top_category_1 is None
