"""The exposure ledger and block reuse, with a controllable clock; the decision context."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from decide_world import DAY, NOW, FakeRecommender, add_person, add_stores

from surmesure.decide.audience import load_audience
from surmesure.decide.content import Audience, Known
from surmesure.decide.context import build_context
from surmesure.decide.decisions import why
from surmesure.decide.exposure import Shown, pick_blocks, record_exposures
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.domain.templates import Block
from surmesure.protect.erase import erase_person
from surmesure.segment.evaluate import haversine_km
from surmesure.store import Store, schema


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def show(store: Store, person_id: int, content_ids: list[str], at: datetime) -> None:
    with store.begin() as conn:
        record_exposures(conn, person_id, [Shown(c) for c in content_ids], now=at, channel="email")


def picked(store: Store, person_id: int, blocks: list[Block], at: datetime, n: int) -> list:
    return [(p.block.content_id, p.reason) for p in pick_blocks(store, person_id, blocks, at, n)]


def test_unseen_blocks_first_then_not_again_within_n_days(store: Store) -> None:
    clock = Clock(NOW)
    for pid in (1, 2):
        add_person(store, pid)
    blocks = [
        Block(content_id="a", not_again_days=7),
        Block(content_id="b", not_again_days=7),
        Block(content_id="c"),
    ]
    first = picked(store, 1, blocks, clock.now, 2)
    assert first == [("a", "new"), ("b", "new")]
    show(store, 1, ["a", "b"], clock.now)
    # a day later: a and b are within their 7 days; c is new to person 1
    second = picked(store, 1, blocks, clock.advance(DAY), 2)
    assert second == [("c", "new")]
    show(store, 1, ["c"], clock.now)
    # c may repeat (no not_again_days) but a and b still may not
    assert picked(store, 1, blocks, clock.advance(DAY), 3) == [("c", "repeat")]
    # 7 days after a and b were shown they may come back, least recently seen first
    clock.now = NOW + timedelta(days=7)
    assert picked(store, 1, blocks, clock.now, 3) == [
        ("a", "repeat"),
        ("b", "repeat"),
        ("c", "repeat"),
    ]
    # person 2 missed a, b and c, shown to person 1 earlier: offered again while unexpired
    assert picked(store, 2, blocks, clock.now, 3) == [
        ("a", "missed"),
        ("b", "missed"),
        ("c", "missed"),
    ]


def test_missed_blocks_only_while_unexpired_and_when_reuse_is_allowed(store: Store) -> None:
    clock = Clock(NOW)
    for pid in (1, 2):
        add_person(store, pid)
    blocks = [
        Block(content_id="sale", expires_at=NOW + 3 * DAY),
        Block(content_id="flash", reuse_while_unexpired=False),
        Block(content_id="evergreen"),
    ]
    show(store, 1, ["sale", "flash", "evergreen"], clock.now)
    later = clock.advance(DAY)
    assert picked(store, 2, blocks, later, 5) == [("sale", "missed"), ("evergreen", "missed")]
    expired = clock.advance(2 * DAY)  # sale expires exactly now: no longer offered
    assert picked(store, 2, blocks, expired, 5) == [("evergreen", "missed")]
    # n caps the picks
    assert picked(store, 2, blocks, expired, 1) == [("evergreen", "missed")]


def test_exposures_of_other_people_do_not_count_as_seen(store: Store) -> None:
    for pid in (1, 2):
        add_person(store, pid)
    blocks = [Block(content_id="x", not_again_days=30)]
    show(store, 2, ["x"], NOW)
    assert picked(store, 1, blocks, NOW + DAY, 1) == [("x", "missed")]
    assert picked(store, 2, blocks, NOW + DAY, 1) == []


def test_nearest_store_by_coordinates_city_or_home_store(store: Store) -> None:
    stores = [
        ("LYO", "Lyon", "69001", 45.7640, 4.8357),
        ("PAR", "Paris", "75001", 48.8566, 2.3522),
        ("MRS", "Marseille", "13001", 43.2965, 5.3698),
    ]
    add_stores(store, stores)
    here = (45.19, 5.72)  # Grenoble: Lyon is nearest
    fresh = NOW - DAY
    add_person(
        store,
        1,
        {"latitude": (here[0], "crm", 0.9, fresh), "longitude": (here[1], "crm", 0.9, fresh)},
    )
    add_person(store, 2, {"city": ("paris", "crm", 0.9, fresh)})
    add_person(store, 3, {"home_store_id": ("MRS", "shop", 0.9, fresh)})
    add_person(store, 4, {"time_zone": ("America/New_York", "crm", 0.9, fresh)})
    with store.connect() as conn:
        ctx = [
            build_context(conn, load_audience(conn, pid, NOW, 730.0), NOW, {"device": "mobile"})
            for pid in (1, 2, 3, 4)
        ]
    expected = min(haversine_km(here, (lat, lon)) for _, _, _, lat, lon in stores)
    assert ctx[0]["nearest_store"]["store_id"] == "LYO"
    assert abs(ctx[0]["nearest_store"]["distance_km"] - expected) < 1e-3
    assert 90 < expected < 100  # Grenoble-Lyon, as the crow flies
    assert ctx[1]["nearest_store"] == {
        "store_id": "PAR",
        "name": "Store Paris",
        "city": "Paris",
        "distance_km": 0.0,
        "basis": "city",
    }
    assert ctx[2]["nearest_store"]["basis"] == "home_store"
    assert ctx[2]["nearest_store"]["distance_km"] is None
    assert ctx[3]["nearest_store"] is None
    # NOW is 17:30 UTC on 10 March 2026: 18:30 in Paris, 13:30 in New York (DST since 8 March)
    assert (ctx[0]["local_hour"], ctx[0]["part_of_day"], ctx[0]["season"]) == (
        18,
        "evening",
        "spring",
    )
    assert ctx[0]["time_zone"] == "Europe/Paris" and ctx[0]["device"] == "mobile"
    assert (ctx[3]["time_zone"], ctx[3]["local_hour"]) == ("America/New_York", 13)


def test_a_neutral_audience_has_no_personal_context(store: Store) -> None:
    add_stores(store, [("LYO", "Lyon", "69001", 45.7640, 4.8357)])
    traits = {"city": Known("Lyon", "crm", 0.9), "time_zone": Known("Asia/Tokyo", "crm", 0.9)}
    with store.connect() as conn:
        opted = build_context(conn, Audience(1, traits, opted_out=True), NOW)
        known = build_context(conn, Audience(1, traits), NOW)
    assert opted["nearest_store"] is None and opted["time_zone"] == "Europe/Paris"
    assert known["nearest_store"]["store_id"] == "LYO" and known["time_zone"] == "Asia/Tokyo"
    southern = datetime(2026, 7, 1, 12, 0)
    with store.connect() as conn:
        south = build_context(conn, Audience(1, {"latitude": Known(-33.9, "crm", 0.9)}), southern)
    assert south["season"] == "winter"


def test_decisions_and_exposures_are_erased_with_the_person(store: Store) -> None:
    add_person(store, 1, {"first_name": ("Marie", "crm", 0.9, NOW - DAY)})
    add_person(store, 2, {"first_name": ("Paul", "crm", 0.9, NOW - DAY)})
    banner = Library(EXAMPLES).for_placement("home_banner")
    for pid in (1, 2):
        decide(store, DecideRequest("home_banner", person_id=pid), banner, now=NOW,
               recommender=FakeRecommender())  # fmt: skip
    assert [d["explanation"]["content"]["variant"]["name"] for d in why(store, 1, now=NOW)] == [
        "evening"
    ]
    assert why(store, 1, now=NOW + timedelta(days=91)) == []  # outside the window
    erase_person(store, "1", confirmed=True)
    with store.connect() as conn:
        left = {
            t.name: sorted({r[0] for r in conn.execute(sa.select(t.c.person_id))})
            for t in (schema.exposures, schema.decisions)
        }
    assert left == {"exposures": [2], "decisions": [2]}
