"""A world past the serving cache's bound, packed: every person and identifier is held in a
few hundred bytes each, decisions read nothing from the store and decide as the store would,
the cache's objects go back into the pack with their ledger, and changes reach packed
people."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import date, datetime
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from api_helpers import settings_for
from decide_world import DAY, NOW, add_person, merge_into, set_consent

from surmesure.api.app import create_app
from surmesure.decide import serving as serving_module
from surmesure.decide import serving_warm
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.packed import STALE as STALE_SHARE
from surmesure.decide.packed import (
    Identifiers,
    Names,
    Packed,
    pack,
    unpack,
    unpack_based,
    with_ledger,
)
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.domain.traits import Observation
from surmesure.protect import atrest, blind
from surmesure.protect.consent import Record
from surmesure.protect.crypto import Keyring
from surmesure.protect.marketing import Preference
from surmesure.store import Store, schema
from surmesure.unify.reader import PersonRead

LIBRARY = Library(EXAMPLES)
EMAIL = LIBRARY.for_placement("email_weekly")
PEOPLE = (1, 2, 3, 7, 8)  # gaps: spans with nobody, spans cut between two people
NAMES = {1: "Anna", 2: "Bruno", 3: "Chloé", 7: "Dmitri", 8: "Élodie"}


DAY_9: Any = date(2026, 3, 9)
DAY_8: Any = date(2026, 3, 8)


def test_a_read_packs_and_unpacks_to_itself() -> None:
    read = PersonRead(
        42,
        consents=[Record("marketing", "email", True, NOW - DAY, "c1")],
        observations=[
            Observation("first_name", "Zoë", "crm", NOW - 2 * DAY, 0.9),
            Observation("address", {"city": "Brest", "lines": ["1 rue", None]}, "shop", NOW, 0.7),
            Observation("children", 3, "survey", datetime(2026, 1, 2, 3, 4, 5, 678901), 1.0 / 3),
        ],
        segments=frozenset({"loyal_customers", "vip"}),
        metrics={
            # as_of as the store gives it: a date (a timestamp from the batch read)
            "clv": [("d1", NOW, DAY_9, 12.5), ("d0", NOW - DAY, DAY_8, 3)],
            "rfm_segment": [("d1", NOW, NOW - DAY, "champions")],
        },
        seen={"welcome": NOW - DAY, "promo": datetime(1969, 12, 31, 23, 59, 59, 1)},
        preferences=[
            Preference("pause", "all", "yes", NOW + 10 * DAY, NOW, "p1"),
            Preference("frequency", "email", "weekly", None, NOW - DAY, "p2"),
        ],
    )
    names = Names()
    text = pack(read, names)
    assert unpack(42, text, names) == read
    assert len(text) < len(repr(read)) / 3
    assert unpack(43, pack(PersonRead(43), names), names) == PersonRead(43)


def test_a_new_ledger_after_a_text_is_read_in_place_of_the_one_packed() -> None:
    read = PersonRead(
        5,
        observations=[Observation("first_name", "Zoë", "crm", NOW - DAY, 0.9)],
        seen={"welcome": NOW - 3 * DAY},
    )
    names = Names()
    text = pack(read, names)
    later = {"welcome": NOW - 3 * DAY, "promo": datetime(2026, 3, 1, 1, 2, 3, 4)}
    again = with_ledger(text, later, names)
    found, base = unpack_based(5, again, names)
    assert found == PersonRead(5, observations=read.observations, seen=later)
    assert base == text  # packed back from the text, not from the text and its old ledger
    assert unpack(5, with_ledger(base, {}, names), names).seen == {}
    assert unpack_based(5, text, names) == (read, text)


def test_identifiers_are_found_by_kind_and_value_alone() -> None:
    a, b = "ab" * 32, "cd" * 32
    found = Identifiers.of({("customer_id", a): 1, ("anonymous_id", a): 2, ("email", b): 3})
    assert found.holder(("customer_id", a)) == 1
    assert found.holder(("anonymous_id", a)) == 2
    assert found.holder(("email", b)) is None  # no kind decisions look people up by
    assert found.holder(("customer_id", b)) is None
    assert found.holder(("customer_id", "not hex")) is None
    assert found.holder(("customer_id", "ab")) is None
    joined = Identifiers.joined([found, Identifiers.of({("customer_id", b): 9})])
    assert (joined.holder(("customer_id", b)), joined.holder(("anonymous_id", a))) == (9, 2)
    zero, one = "ab" * 31 + "00", "ab" * 31 + "01"  # ending in a zero byte
    ends = Identifiers.of({("customer_id", zero): 4, ("customer_id", one): 5})
    assert (ends.holder(("customer_id", zero)), ends.holder(("customer_id", one))) == (4, 5)
    packed = Packed()
    packed.identifiers = joined
    packed.learnt[("customer_id", b)] = None  # taken from 9 since the pack was read
    assert packed.holder(("customer_id", b)) is None and packed.holder(("customer_id", a)) == 1


def test_spans_find_each_person_and_what_was_packed_since_wins() -> None:
    packed = Packed()

    def read(pid: int, name: str) -> PersonRead:
        return PersonRead(pid, observations=[Observation("first_name", name, "crm", NOW, 0.9)])

    def name(pid: int) -> Any:
        found = packed.get(pid)
        return None if found is None else found.observations[0].value

    packed.add_span(
        {1: pack(read(1, "Anna"), packed.names), 2: pack(read(2, "Bruno"), packed.names)}
    )
    packed.add_span({})  # a span of ids with nobody
    packed.add_span({5: pack(read(5, "Chloé"), packed.names)})
    packed.index()
    assert [name(p) for p in (1, 2, 3, 5)] == ["Anna", "Bruno", None, "Chloé"]
    packed.put(read(2, "Bruna"))  # changed since
    packed.put(read(4, "Dmitri"))  # new since
    packed.drop(1)  # merged into another since
    assert [name(p) for p in (1, 2, 4, 5)] == [None, "Bruna", "Dmitri", "Chloé"]
    assert list(packed) == [2, 4, 5] and packed.count() == 3

    class Meanwhile:  # another thread packs while the new index is made
        def __enter__(self) -> None:
            packed.put(read(5, "Chloë"))

        def __exit__(self, *exc: object) -> None:
            return None

    assert packed.compact(Meanwhile()) == 3
    assert list(packed.since) == [5]  # packed meanwhile: stays until the next compaction
    assert [name(p) for p in (1, 2, 4, 5)] == [None, "Bruna", "Dmitri", "Chloë"]
    assert packed.compact(Meanwhile()) == 1 and [name(5)] == ["Chloë"]


def test_compactions_write_again_the_spans_packed_over_so_each_person_is_held_once() -> None:
    packed, names = Packed(), dict[int, str]()
    rng = random.Random(3)

    def read(pid: int, name: str) -> PersonRead:
        return PersonRead(pid, observations=[Observation("first_name", name, "crm", NOW, 0.9)])

    for first in range(0, 200, 20):  # ten spans, as a server packs everyone at start
        names.update({p: f"n{p}" for p in range(first, first + 20)})
        span = range(first, first + 20)
        packed.add_span({p: pack(read(p, names[p]), packed.names) for p in span})
    packed.index()
    for turn in range(30):  # hours of decisions: people packed back with a new ledger
        for pid in rng.sample(range(220), 50):  # some new since the start
            names[pid] = f"n{pid}-{turn}"
            packed.put(read(pid, names[pid]))
        gone = rng.choice(sorted(names))
        packed.drop(gone)  # merged into another
        del names[gone]
        packed.compact(threading.Lock())
        live = sum(len(packed.text(p) or b"") for p in packed)
        held = sum(len(t) for t in packed._index[4])
        assert held <= live / (1 - STALE_SHARE)  # not every text each person ever had
    assert sorted(packed) == sorted(names)
    for pid in range(220):
        found = packed.get(pid)
        assert (found and found.observations[0].value) == names.get(pid)


def test_a_compaction_finds_everyone_as_an_index_sorted_whole_would() -> None:
    packed, texts = Packed(), dict[int, bytes]()
    rng = random.Random(11)
    for first in range(0, 3_000, 500):  # a world read in spans, with gaps
        span = {p: bytes([p % 251]) * (1 + p % 7) for p in range(first, first + 500, 3)}
        packed.add_span(span)
        texts.update(span)
    packed.index()
    for turn in range(40):
        for pid in rng.sample(range(3_200), 200):  # packed back, changed, new
            texts[pid] = f"{pid}-{turn}".encode()
            packed.since[pid] = texts[pid]
        for pid in rng.sample(sorted(texts), 5):  # merged into another, erased
            packed.since[pid] = None
            del texts[pid]
        packed.compact(threading.Lock())
        if turn % 10 == 9:  # a span read again after the start, as a rewarm would
            again = {p: b"again" for p in range(3_100, 3_200)}
            packed.add_span(again)
            packed.index()
            texts.update(again)
        ids = packed._index[0]
        assert bool(np.all(ids[1:] > ids[:-1]))  # each person once, in order
    whole = Packed()
    whole.add_span(texts)
    whole.index()
    assert {p: packed.text(p) for p in range(3_300)} == {p: whole.text(p) for p in range(3_300)}
    assert list(packed) == sorted(texts) and packed.count() == len(texts)


@pytest.fixture
def packed_serving(store: Store, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(serving_warm, "PACK_SPAN", 2)
    for pid in PEOPLE:
        add_person(
            store,
            pid,
            {"first_name": (NAMES[pid], "crm", 0.9, NOW - 2 * DAY)},
            identifiers={"customer_id": f"C{pid}"},
            segments=["loyal_customers"] if pid == 7 else [],
        )
    add_person(store, 9, identifiers={"customer_id": "C9"})  # merged into 2
    with store.begin() as conn:
        merge_into(conn, 9, 2)
    serving = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=2, packed_people=10)
    serving.ensure_started(LIBRARY.metrics())
    assert serving.warm_done.wait(10)
    yield serving
    serving.stop()


def _decide(store: Store, serving: Serving | None, customer: str) -> dict[str, Any]:
    request = DecideRequest("email_weekly", customer_id=customer)
    return decide(store, request, EMAIL, use_default_recommender=False, serving=serving)


def test_everyone_is_packed_and_decided_for_without_a_read(
    store: Store, packed_serving: Serving
) -> None:
    cache = packed_serving.view()
    assert cache.packed is not None and list(cache.packed) == list(PEOPLE)
    assert packed_serving.warmed == len(PEOPLE) and cache.complete
    customers = [f"C{pid}" for pid in (*PEOPLE, 9)] + ["C404"]
    expected = {c: _decide(store, None, c) for c in customers}  # from the store
    with store.statements() as sent:
        for _ in range(2):
            for customer in customers:
                found = _decide(store, packed_serving, customer)
                assert (found["person_id"], found["content"]) == (
                    expected[customer]["person_id"],
                    expected[customer]["content"],
                ), customer
    assert not [s for s in sent if "traits" in s or "identifiers" in s], sent
    assert expected["C9"]["person_id"] == 2 and expected["C404"]["person_id"] is None
    assert expected["C7"]["content"]["variant"] == "loyal"
    assert len(cache.reads) <= cache.limit


def test_the_decisions_of_anyone_packed_are_sealed_with_no_key_read(
    store: Store, packed_serving: Serving
) -> None:
    with store.connect() as conn:
        ring = atrest.keyring(conn)
    ring._keys.clear()  # the ring's bound, met by the world's other people
    packed_serving.flush()
    with store.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(schema.decisions)).scalar()
    with store.statements() as sent:
        for customer in ("C1", "C2", "C3"):
            assert _decide(store, packed_serving, customer)["person_id"] is not None
        packed_serving.flush()
    assert not [s for s in sent if "person_keys" in s], sent
    fresh = Keyring(store, store.settings.encryption_key)  # reads every key from the store
    with store.connect() as conn:
        rows = conn.execute(sa.select(schema.decisions.c.person_id, schema.decisions.c.sealed))
        people, sealed = zip(*rows, strict=True)
        opened = fresh.open_many(conn, list(people), list(sealed))
    assert len(people) == before + 3 and {1, 2, 3} <= set(people)
    assert all('"explanation"' in text for text in opened if text)
    assert None not in opened


def test_a_person_dropped_from_the_cache_is_packed_back_with_their_ledger(
    store: Store, packed_serving: Serving
) -> None:
    cache = packed_serving.view()
    assert cache.packed is not None
    _decide(store, packed_serving, "C1")
    held = cache.reads[1]
    assert held is not None
    shown = set(held.seen)
    assert shown  # the weekly e-mail's content, in the ledger at once
    before = cache.packed.get(1)
    assert before is not None and not before.seen  # not in the pack yet
    for customer in ("C2", "C3"):  # the cache holds 2: person 1 goes back into the pack
        _decide(store, packed_serving, customer)
    assert 1 not in cache.reads
    back = cache.packed.get(1)
    assert back is not None and shown <= set(back.seen)
    assert back == held  # the rest as unpacked


def test_someone_held_who_changed_is_packed_anew_when_dropped(
    store: Store, packed_serving: Serving
) -> None:
    cache = packed_serving.view()
    assert cache.packed is not None
    assert "Dmitri" in _decide(store, packed_serving, "C7")["content"]["body"]
    set_consent(store, 7, False, NOW)
    packed_serving.changed({7})  # read again while held: their consent, not only their ledger
    for customer in ("C1", "C2"):  # the cache holds 2: person 7 goes back into the pack
        _decide(store, packed_serving, customer)
    assert 7 not in cache.reads
    back = cache.packed.get(7)
    assert back is not None and [c.granted for c in back.consents] == [False] and back.seen
    assert "Dmitri" not in _decide(store, packed_serving, "C7")["content"]["body"]


def test_a_change_reaches_someone_packed_and_not_held(
    store: Store, packed_serving: Serving
) -> None:
    cache = packed_serving.view()
    assert cache.packed is not None
    assert "Dmitri" in _decide(store, packed_serving, "C7")["content"]["body"]
    for customer in ("C1", "C2"):
        _decide(store, packed_serving, customer)
    assert 7 not in cache.reads
    set_consent(store, 7, False, NOW)
    add_person(store, 11, identifiers={"customer_id": "C11"})
    with store.begin() as conn:  # a new identifier for 8, with no person of its own
        conn.execute(
            schema.identifiers.update()
            .where(schema.identifiers.c.person_id == 11)
            .values(person_id=8)
        )
    packed_serving.changed({7, 8})  # what the dispatcher tells
    assert 7 not in cache.reads and 8 not in cache.reads  # re-packed, not taken in
    refused = cache.packed.get(7)
    assert refused is not None and [c.granted for c in refused.consents] == [False]
    with store.statements() as sent:
        assert "Dmitri" not in _decide(store, packed_serving, "C7")["content"]["body"]
        assert _decide(store, packed_serving, "C11")["person_id"] == 8
    assert not [s for s in sent if "traits" in s or "identifiers" in s]
    key = ("customer_id", blind.index(store, "customer_id", "C11"))
    assert cache.packed.learnt[key] == 8


def test_the_pages_a_change_read_are_let_go_afterwards(
    store: Store, packed_serving: Serving
) -> None:
    before = packed_serving.releases
    set_consent(store, 7, False, NOW)
    packed_serving.changed({7})  # read again from the store: on DuckDB, its tables' pages
    # within RELEASE_EVERY of a release the start's reads made, on a busy machine
    deadline = time.monotonic() + serving_module.RELEASE_EVERY + 10
    while packed_serving.releases == before and time.monotonic() < deadline:
        time.sleep(0.02)  # read again by the serving thread, then let go
    assert packed_serving.releases == before + 1 and not packed_serving._pages_read
    refused = packed_serving.view().packed
    assert refused is not None
    found = refused.get(7)
    assert found is not None and [c.granted for c in found.consents] == [False]
    # the next change within RELEASE_EVERY (10 s) waits for its turn
    packed_serving.changed({8})
    time.sleep(0.2)  # ten turns of the serving thread
    assert packed_serving._pages_read and packed_serving.releases == before + 1


def test_a_derive_run_reads_the_packed_world_again(store: Store, packed_serving: Serving) -> None:
    built = packed_serving.warm_seconds
    before = packed_serving.view().packed
    packed_serving.metrics_changed()  # the dispatcher's news of a derive run
    deadline = time.monotonic() + 10
    while packed_serving.view().packed is before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert packed_serving.view().packed is not before and built > 0


def test_a_packed_read_counts_the_tables_once_not_for_each_span(
    store: Store, packed_serving: Serving
) -> None:
    """Everyone is read a span at a time (here 2 ids a span); the fingerprint and the first
    exposures are everyone's, read once: on PostgreSQL, counting the tables again for each
    span took most of the read of a million customers."""
    before = packed_serving.view().packed
    with store.statements() as sent:
        packed_serving.metrics_changed()  # the whole world read again
        deadline = time.monotonic() + 10
        while packed_serving.view().packed is before and time.monotonic() < deadline:
            time.sleep(0.02)
    assert packed_serving.view().packed is not before
    spans = [s for s in sent if "person_keys.node_id BETWEEN" in s]  # a span's keys
    assert len(spans) >= 4  # ids 1 to 9, two a span
    assert len([s for s in sent if "count(*) FROM traits" in s]) <= 1
    assert len([s for s in sent if "min(exposures.shown_at)" in s]) <= 1


def test_health_says_warming_until_everyone_is_read(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/health`` says whether decisions are served from memory yet (a load balancer waits
    for ``ready``); meanwhile decisions read the store."""
    add_person(store, 1, {"first_name": ("Anna", "crm", 0.9, NOW - DAY)}, identifiers={})
    held = threading.Event()
    whole = serving_warm.build_view

    def slow(*args: Any, **kwargs: Any) -> Any:
        assert held.wait(10)
        return whole(*args, **kwargs)

    monkeypatch.setattr(serving_warm, "build_view", slow)
    serving = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=1, packed_people=10)
    app = create_app(settings_for(store), store)
    app.state.store, app.state.serving = store, serving  # what the server's start sets

    async def health() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return str((await client.get("/health")).json()["decisions"])

    assert asyncio.run(health()) == "ready"  # not started: decisions read the store
    serving.start()
    try:
        assert asyncio.run(health()) == "warming"
        held.set()
        assert serving.warm_done.wait(10)
        assert asyncio.run(health()) == "ready"
    finally:
        serving.stop()


def test_a_change_no_writer_told_reaches_the_packed_world_by_the_safety_net(
    store: Store, packed_serving: Serving
) -> None:
    cache = packed_serving.view()
    before = cache.packed
    assert "Dmitri" in _decide(store, packed_serving, "C7")["content"]["body"]
    set_consent(store, 7, False, NOW)  # written without a change in the outbox
    assert packed_serving.refresh_if_changed() is True
    deadline = time.monotonic() + 10  # everyone read again by the serving thread
    while cache.packed is before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cache.packed is not before and cache.complete
    assert "Dmitri" not in _decide(store, packed_serving, "C7")["content"]["body"]
    # a whole read of a large world is not repeated every refresh_seconds
    packed_serving.warm_seconds = 100.0  # the fixture's refresh_seconds is 3,600
    assert packed_serving._check_every() == serving_module.PACKED_CHECK * 100.0
    packed_serving.warm_seconds = 0.01
    assert packed_serving._check_every() == packed_serving.refresh_seconds
