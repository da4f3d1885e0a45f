"""The serving cache shared through Redis (the real server, DB 5): two workers of one store share
the people either read, sealed; a change delivered to one reaches the other's next decision
within a second and leaves no stale entry behind; an erasure takes the person's entries out,
and Redis never holds a trait in the clear."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from decide_world import DAY, NOW, add_person

from surmesure.clock import utcnow
from surmesure.collect import sink
from surmesure.config import get_settings
from surmesure.decide import shared_cache
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.dispatch import outbox, shared_entries
from surmesure.dispatch.background import Background
from surmesure.protect import blind
from surmesure.protect.erase import erase_person
from surmesure.store import Store
from surmesure.unify.people_read import read_people
from surmesure.unify.reader import identifier_keys

REDIS_URL = "redis://127.0.0.1:6379/5"
LIBRARY = Library(EXAMPLES)
EMAIL = LIBRARY.for_placement("email_weekly")
EMAIL_ADDRESS = "anna.lindqvist@example.org"
PERSON = {
    "first_name": ("Anna", "crm", 0.9, NOW - 2 * DAY),
    "email": (EMAIL_ADDRESS, "crm", 0.9, NOW - 2 * DAY),
}


def _raw(store: Store) -> dict[bytes, bytes]:
    """Every key of the store's entries in Redis, with its value."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = list(client.scan_iter(match=shared_entries.prefix(store.url) + "*"))
        return {n: client.get(n) or b"" for n in names}
    finally:
        client.close()


def _empty(store: Store) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for name in client.scan_iter(match=shared_entries.prefix(store.url) + "*"):
            client.delete(name)
    finally:
        client.close()


@pytest.fixture
def workers(store: Store) -> Iterator[tuple[Serving, Serving, Background]]:
    """Two API workers of one store sharing Redis; the dispatcher delivers each change to the
    first alone."""
    _empty(store)  # the PostgreSQL test database, and so its prefix, outlives a test
    for pid in (1, 2, 3):
        add_person(store, pid, PERSON, identifiers={"customer_id": f"CUSTOMER-{pid:04d}"})
    told, other = (
        Serving(
            store,
            refresh_seconds=3_600,
            flush_ms=20,
            cache_people=2,  # fewer than the people: nobody is read whole at start
            shared_url=REDIS_URL,
            shared_ttl=60,
        )
        for _ in range(2)
    )
    dispatcher = Background(store, get_settings(), period=0.2, gap=0.0)
    told.start()
    other.start()
    assert other._unlisten is not None
    other._unlisten()  # each change is delivered to one worker: not this one
    dispatcher.start()
    try:
        yield told, other, dispatcher
    finally:
        dispatcher.stop()
        told.stop()
        other.stop()
        _empty(store)


def _decide(store: Store, serving: Serving, customer: str) -> dict[str, Any]:
    request = DecideRequest("email_weekly", customer_id=customer)
    return decide(store, request, EMAIL, use_default_recommender=False, serving=serving)


def _read(serving: Serving, customer: str) -> None:
    """What a decision's miss reads, without the decision (whose exposures, once written,
    take the entry out again)."""
    settings = get_settings()
    keys = identifier_keys(None, customer, settings.default_country, blind.index_key(settings))
    assert serving.view(LIBRARY.metrics()).person_id(None, keys) is not None


def test_workers_share_the_people_either_read(
    store: Store, workers: tuple[Serving, Serving, Background]
) -> None:
    told, other, _ = workers
    _read(told, "CUSTOMER-0001")
    assert told.shared is not None and told.shared.misses == 1
    told._flush_shared()  # as its serving thread does within ``flush_ms``
    with store.statements() as sent:
        assert _decide(store, other, "CUSTOMER-0001")["content"]["body"].startswith("Bonjour Anna")
    assert not [s for s in sent if "traits.sealed" in s], sent  # from Redis, not the store
    assert other.shared is not None and other.shared.hits == 1
    # the same decision as from the store
    alone = _decide(store, Serving(store), "CUSTOMER-0001")
    assert alone["content"] == _decide(store, other, "CUSTOMER-0001")["content"]
    # decisions leave the entry in place; the exposures they wrote join its ledger
    other._flush_shared()
    metrics = frozenset(LIBRARY.metrics())
    with store.connect() as conn:
        stored = read_people(conn, [1], metrics=metrics, named=[1]).reads[1].seen
    assert len(stored) >= 1
    shared = shared_cache.connect(REDIS_URL, store, 60)
    try:
        found, statements = shared_cache.read_through(shared, [1], [], metrics)
    finally:
        shared.close()
    assert statements == 0 and found.reads[1].seen == stored


def test_a_change_reaches_the_other_worker_within_a_second_and_no_stale_entry_stays(
    store: Store, workers: tuple[Serving, Serving, Background]
) -> None:
    told, other, dispatcher = workers
    for worker in (told, other):
        assert _decide(store, worker, "CUSTOMER-0002")["content"]["body"].startswith("Bonjour Anna")
    _read(told, "CUSTOMER-0003")
    told._flush_shared()
    with store.begin() as conn:  # what collect does: the trait and the change, together
        sink.write_traits(
            store,
            conn,
            record_keys=["2:first_name:crm:new", "3:first_name:crm:new"],
            person_ids=[2, 3],
            node_ids=[2, 3],
            traits=[{"first_name": "Annette"}, {"first_name": "Annette"}],
            sources=["crm", "crm"],
            observed_at=[utcnow(), utcnow()],
            reliabilities=[0.95, 0.95],
        )
        outbox.append(store, conn, outbox.EVENT, [2, 3], at=utcnow())
    dispatcher.kick()
    started = time.monotonic()
    while not _decide(store, other, "CUSTOMER-0002")["content"]["body"].startswith(
        "Bonjour Annette"
    ):
        assert time.monotonic() - started < 1.0, "the other worker never heard of it"
        time.sleep(0.01)
    # a worker that never held C3 reads the change, not the entry read before it
    third = Serving(store, refresh_seconds=3_600, shared_url=REDIS_URL, shared_ttl=60)
    third.start()
    try:
        assert _decide(store, third, "CUSTOMER-0003")["content"]["body"].startswith(
            "Bonjour Annette"
        )
    finally:
        third.stop()


def test_an_erased_person_leaves_nothing_in_redis_and_nothing_there_is_plain(
    store: Store,
    workers: tuple[Serving, Serving, Background],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told, other, _ = workers
    for customer in ("CUSTOMER-0001", "CUSTOMER-0002"):
        _read(told, customer)
    told._flush_shared()
    held = _raw(store)
    entries = [n for n in held if b":e:" in n]
    assert len(entries) == 2 and len([n for n in held if b":i:" in n]) == 2
    for value in held.values():
        for plain in (
            b"Anna",
            EMAIL_ADDRESS.encode(),
            b"CUSTOMER-0001",
            b"CUSTOMER-0002",
            b"first_name",
        ):
            assert plain not in value
    monkeypatch.setenv("SURMESURE_SERVING_CACHE_URL", REDIS_URL)
    get_settings.cache_clear()
    try:
        erased = erase_person(store, "customer_id:CUSTOMER-0001", confirmed=True)
    finally:
        get_settings.cache_clear()
    assert erased.shared_entries == 2  # the entry and the identifier
    left = _raw(store)
    prefix = shared_entries.prefix(store.url).encode()
    assert prefix + b"e:1" not in left and prefix + b"e:2" in left
    assert not [n for n in left if b":i:" in n and left[n] == b"1"]
    assert _decide(store, other, "CUSTOMER-0001")["person_id"] is None


def test_a_read_made_before_a_change_is_not_written_back_after_it(store: Store) -> None:
    _empty(store)
    add_person(store, 1, PERSON, identifiers={"customer_id": "CUSTOMER-0001"})
    shared = shared_cache.connect(REDIS_URL, store, 60)
    metrics = frozenset(LIBRARY.metrics())
    try:
        asked = shared.get([1], [], metrics)  # a worker misses...
        assert asked.person_ids == [1]
        with store.connect() as conn:  # ...reads the store...
            before = read_people(conn, [1], metrics=metrics, named=[1])
        with store.connect() as conn:  # ...while a change commits and is told
            shared_entries.invalidate(shared.entries, conn, [1])
        assert shared.put(asked, before, metrics) == 0
        assert _raw(store).keys() == {
            f"{shared_entries.prefix(store.url)}{k}".encode()
            for k in ("v:1", "w:customer_id:" + _index("CUSTOMER-0001"))
        }
        # read after the change: written, then found by the next worker
        found, statements = shared_cache.read_through(shared, [1], [], metrics)
        assert statements == 1 and found.reads[1].person_id == 1
        again, statements = shared_cache.read_through(shared, [1], [], metrics)
        assert statements == 0 and again.reads[1] == found.reads[1]
        # a derive run: every entry of the generation before is stale
        shared_cache.new_generation(shared)
        assert shared.get([1], [], metrics).person_ids == [1]
    finally:
        shared.close()
        _empty(store)


def _index(customer: str) -> str:
    settings = get_settings()
    return identifier_keys(None, customer, settings.default_country, blind.index_key(settings))[0][
        1
    ]


def test_an_erasure_stands_when_redis_is_unreachable(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_person(store, 1, PERSON, identifiers={"customer_id": "CUSTOMER-0001"})
    monkeypatch.setenv("SURMESURE_SERVING_CACHE_URL", "redis://127.0.0.1:18499/5")  # nobody
    get_settings.cache_clear()
    try:
        erased = erase_person(store, "customer_id:CUSTOMER-0001", confirmed=True)
    finally:
        get_settings.cache_clear()
    assert erased.shared_entries == 0 and erased.keys_destroyed == 1
    assert _decide(store, Serving(store), "CUSTOMER-0001")["person_id"] is None
