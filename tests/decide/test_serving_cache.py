"""The serving cache: people changed through the dispatcher reach the next decision within a
second without a whole read of the store; a person past the cache's bound is read again in one
statement; an erasure or a withdrawn consent takes effect at once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from decide_world import DAY, NOW, add_person, merge_into, set_consent

from surmesure.clock import utcnow
from surmesure.collect import sink
from surmesure.config import get_settings
from surmesure.decide import serving_warm
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.decide.serving_cache import Miss, held_only
from surmesure.dispatch import outbox
from surmesure.dispatch.background import Background
from surmesure.protect import blind
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema
from surmesure.unify.people_read import read_people

LIBRARY = Library(EXAMPLES)
EMAIL = LIBRARY.for_placement("email_weekly")
ANNA = {"first_name": ("Anna", "crm", 0.9, NOW - 2 * DAY)}


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts whole reads of the store (``build_view``) made while the test runs."""
    made: list[int] = []
    whole = serving_warm.build_view

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return whole(*args, **kwargs)

    monkeypatch.setattr(serving_warm, "build_view", counted)
    return made


@pytest.fixture(params=["held", "packed"])
def served(store: Store, request: pytest.FixtureRequest) -> Iterator[tuple[Serving, Background]]:
    """A started serving cache (its whole-store safety net out of the way) and the server's
    dispatcher, as ``surmesure serve`` runs them: holding 2 of the 3 people, the others read
    on a miss (``held``), or holding 1 and everyone packed at start (``packed``)."""
    for pid in (1, 2, 3):
        add_person(store, pid, ANNA, identifiers={"customer_id": f"C{pid}"})
    if request.param == "packed":
        serving = Serving(
            store, refresh_seconds=3_600, flush_ms=20, cache_people=1, packed_people=100
        )
    else:
        serving = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=2)
    dispatcher = Background(store, get_settings(), period=0.2, gap=0.0)
    serving.start()
    assert serving.warm_done.wait(10)
    assert (serving.view().packed is not None) == (request.param == "packed")
    dispatcher.start()
    try:
        yield serving, dispatcher
    finally:
        dispatcher.stop()
        serving.stop()


def _decide(store: Store, serving: Serving, customer: str) -> dict[str, Any]:
    request = DecideRequest("email_weekly", customer_id=customer)
    return decide(store, request, EMAIL, use_default_recommender=False, serving=serving)


def _within_a_second(
    store: Store, serving: Serving, customer: str, holds: Callable[[dict[str, Any]], bool]
) -> float:
    """Seconds until a decision for ``customer`` ``holds`` (fails past one second)."""
    started = time.monotonic()
    while True:
        result = _decide(store, serving, customer)
        waited = time.monotonic() - started
        if holds(result):
            return waited
        assert waited < 1.0, f"the change did not reach the decision within 1 s: {result}"
        time.sleep(0.01)


def _notify(store: Store, conn: sa.Connection, kind: str, person_id: int) -> None:
    outbox.append(store, conn, kind, [person_id], at=utcnow())


def test_a_trait_change_reaches_the_next_decision_without_a_whole_read(
    store: Store, served: tuple[Serving, Background], builds: list[int]
) -> None:
    serving, dispatcher = served
    assert _decide(store, serving, "C1")["content"]["body"].startswith("Bonjour Anna")
    with store.begin() as conn:  # what collect does: the trait and the change, together
        sink.write_traits(
            store,
            conn,
            record_keys=["1:first_name:crm:new"],
            person_ids=[1],
            node_ids=[1],
            traits=[{"first_name": "Annette"}],
            sources=["crm"],
            observed_at=[utcnow()],
            reliabilities=[0.95],
        )
        _notify(store, conn, outbox.EVENT, 1)
    dispatcher.kick()
    _within_a_second(
        store, serving, "C1", lambda r: r["content"]["body"].startswith("Bonjour Annette")
    )
    assert builds == [] and serving.reloads == 0


def test_a_withdrawn_consent_takes_effect_at_once(
    store: Store, served: tuple[Serving, Background], builds: list[int]
) -> None:
    serving, dispatcher = served
    assert "Anna" in _decide(store, serving, "C2")["content"]["body"]
    with store.begin() as conn:
        conn.execute(
            schema.consents.insert().values(
                consent_id=uuid.uuid4().hex, person_id=2, node_id=2, purpose="personalization",
                channel="any", granted=False, recorded_at=utcnow(), source="web",
            )
        )  # fmt: skip
        _notify(store, conn, outbox.CONSENT, 2)
    dispatcher.kick()
    _within_a_second(store, serving, "C2", lambda r: "Anna" not in r["content"]["body"])
    after = _decide(store, serving, "C2")["explanation"]["content"]["fields"]
    assert {f["reason"] for f in after} == {"opted_out"}
    assert builds == [] and serving.reloads == 0


def test_a_purchase_reaches_the_next_decision(
    store: Store, served: tuple[Serving, Background], builds: list[int]
) -> None:
    serving, dispatcher = served
    assert _decide(store, serving, "C3")["content"]["variant"] != "loyal"
    with store.begin() as conn:  # the purchase's effect the decision reads: a segment
        conn.execute(
            schema.segment_members.insert().values(
                segment="loyal_customers", person_id=3, entered_at=utcnow()
            )
        )
        _notify(store, conn, outbox.ORDER, 3)
    dispatcher.kick()
    _within_a_second(store, serving, "C3", lambda r: r["content"]["variant"] == "loyal")
    assert builds == [] and serving.reloads == 0


def test_an_erasure_takes_effect_at_once(
    store: Store, served: tuple[Serving, Background], builds: list[int]
) -> None:
    serving, dispatcher = served
    assert _decide(store, serving, "C1")["person_id"] == 1
    erase_person(store, "1", confirmed=True)
    dispatcher.kick()
    _within_a_second(store, serving, "C1", lambda r: r["person_id"] is None)
    assert serving.view().person_id(1, []) is None
    assert builds == []


@pytest.mark.parametrize("served", ["held"], indirect=True)
def test_a_person_past_the_bound_is_read_again_in_one_statement(
    store: Store, served: tuple[Serving, Background]
) -> None:
    serving, _ = served
    for customer in ("C1", "C2", "C3"):  # the cache keeps 2 people: C1 is dropped
        assert _decide(store, serving, customer)["person_id"] == int(customer[1:])
    cache = serving.view()
    assert list(cache.reads) == [2, 3] and len(cache.reads) <= cache.limit
    loads = cache.loads
    with store.statements() as sent:
        again = _decide(store, serving, "C1")
    assert again["content"]["body"].startswith("Bonjour Anna") and again["person_id"] == 1
    assert cache.loads == loads + 1
    # one statement read the person (the writer thread's inserts and key reads aside)
    assert len([s for s in sent if "FROM traits" in s]) == 1
    assert list(cache.reads) == [3, 1]
    loads = cache.loads
    hit = _decide(store, serving, "C1")  # now a hit: nothing read
    assert hit["content"] == again["content"] and cache.loads == loads


def test_a_miss_reads_each_table_by_its_person_column_alone(store: Store) -> None:
    """A few people are read with their ids bound and no other condition in any branch, so
    that DuckDB probes each table's index of people rather than scan the table (some 100 ms a
    branch at 1,000,000 customers); the read is what a decision needs all the same: the
    marketing and personalization consents, the identifiers it names people by, the merges."""
    add_person(store, 1, ANNA, identifiers={"customer_id": "C1", "email": "anna@example.com"})
    set_consent(store, 1, False, NOW - DAY)
    set_consent(store, 1, True, NOW - DAY, purpose="analytics")
    with store.begin() as conn:
        conn.execute(
            schema.people.insert().values(
                person_id=3, merged_into=1, created_at=NOW - DAY, updated_at=NOW - DAY
            )
        )
    key = ("customer_id", blind.index(store, "customer_id", "C1"))
    with store.connect() as conn, store.statements() as sent:
        found = read_people(conn, [], keys=[key], named=[3])
    assert list(found.reads) == [1]
    assert [(c.purpose, c.granted) for c in found.reads[1].consents] == [("personalization", False)]
    assert [o.value for o in found.reads[1].observations] == ["Anna"]
    assert found.identifiers == {key: 1}  # the e-mail is no kind a decision names people by
    assert found.absorbed == {3: 1}
    (statement,) = [s for s in sent if "FROM traits" in s]
    assert not [w for w in (" AND ", " OR ", "(SELECT") if w in statement]


def test_a_change_told_of_people_not_held_reads_their_identifiers_and_merges_alone(
    store: Store,
) -> None:
    """A round of collection tells the cache of many people it does not hold: of them, the
    identifiers and merges alone are read, in a statement whose text does not grow with their
    number (their ids bound as one list); people read whole past a few ids are read as on a
    miss."""
    for pid in range(1, 31):
        add_person(store, pid, ANNA, identifiers={"customer_id": f"C{pid}"})
    with store.begin() as conn:
        conn.execute(
            schema.people.insert().values(
                person_id=31, merged_into=1, created_at=NOW - DAY, updated_at=NOW - DAY
            )
        )
    keys = {
        ("customer_id", blind.index(store, "customer_id", f"C{pid}")): pid for pid in range(1, 31)
    }
    with store.connect() as conn, store.statements() as sent:
        told = read_people(conn, [], named=list(range(1, 32)))
        fewer = read_people(conn, [], named=list(range(1, 21)))
        whole = read_people(conn, list(range(1, 21)), named=list(range(1, 32)))
    assert told.reads == {} and told.identifiers == keys and told.absorbed == {31: 1}
    assert fewer.reads == {} and len(fewer.identifiers) == 20 and fewer.absorbed == {31: 1}
    assert sent[0] == sent[1] and "FROM traits" not in sent[0]
    assert sorted(whole.reads) == list(range(1, 21)) and whole.absorbed == {31: 1}
    assert {o.value for r in whole.reads.values() for o in r.observations} == {"Anna"}


def test_misses_asked_during_a_read_are_read_together_after_it(store: Store) -> None:
    for pid in range(1, 6):
        add_person(store, pid, ANNA, identifiers={"customer_id": f"C{pid}"})
    serving = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=4)  # no warm-up
    serving.ensure_started(LIBRARY.metrics())
    try:
        cache = serving.view()
        loads = cache.loads
        found: dict[str, dict[str, Any]] = {}

        def ask(customer: str) -> None:
            found[customer] = _decide(store, serving, customer)

        asked = [threading.Thread(target=ask, args=(f"C{pid}",)) for pid in range(1, 5)]
        with serving._load_lock:  # a read in flight: the misses meanwhile wait for it
            for thread in asked:
                thread.start()
            deadline = time.monotonic() + 10
            while len(serving._asks) < len(asked) and time.monotonic() < deadline:
                time.sleep(0.01)
        for thread in asked:
            thread.join(timeout=10)
        assert cache.loads == loads + 1  # one statement for the four
        assert {c: d["person_id"] for c, d in found.items()} == {f"C{p}": p for p in range(1, 5)}
        assert all(d["content"]["body"].startswith("Bonjour Anna") for d in found.values())
    finally:
        serving.stop()


@pytest.mark.parametrize("served", ["held"], indirect=True)
def test_a_decision_held_to_memory_asks_for_a_read_rather_than_read(
    store: Store, served: tuple[Serving, Background]
) -> None:
    serving, _ = served
    for customer in ("C1", "nobody"):
        with held_only(), pytest.raises(Miss):  # not held yet: the event loop would wait
            _decide(store, serving, customer)
        loads = serving.view().loads
        expected = _decide(store, serving, customer)  # off the loop: read, then held
        assert serving.view().loads == loads + 1
        with held_only():
            again = _decide(store, serving, customer)
        assert serving.view().loads == loads + 1
        assert (again["person_id"], again["content"]) == (
            expected["person_id"],
            expected["content"],
        )
    assert expected["person_id"] is None and again["content"]["body"].startswith("Bonjour,")


def test_changes_outside_the_dispatcher_reach_the_cache_by_the_safety_net(store: Store) -> None:
    add_person(store, 1, ANNA, identifiers={"customer_id": "C1"})
    serving = Serving(store, refresh_seconds=3_600, flush_ms=5)
    serving.start()
    try:
        assert "Anna" in _decide(store, serving, "C1")["content"]["body"]
        assert serving.refresh_if_changed() is False  # its own exposures are no change
        set_consent(store, 1, False, NOW)  # written without a change in the outbox
        assert "Anna" in _decide(store, serving, "C1")["content"]["body"]  # not known yet
        assert serving.refresh_if_changed() is True
        assert "Anna" not in _decide(store, serving, "C1")["content"]["body"]
        assert serving.reloads == 1
    finally:
        serving.stop()


@pytest.fixture
def served_whole(store: Store) -> Iterator[tuple[Serving, Background]]:
    """As :func:`served`, with room for everyone: the cache read whole at start (complete)."""
    for pid in (1, 2, 3):
        add_person(store, pid, ANNA, identifiers={"customer_id": f"C{pid}"})
    serving = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=10)
    dispatcher = Background(store, get_settings(), period=0.2, gap=0.0)
    serving.ensure_started(LIBRARY.metrics())
    dispatcher.start()
    deadline = time.monotonic() + 10
    while not serving.view().complete and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield serving, dispatcher
    finally:
        dispatcher.stop()
        serving.stop()


def test_a_new_identifier_and_a_merge_reach_the_cache(
    store: Store, served: tuple[Serving, Background], builds: list[int]
) -> None:
    _a_new_identifier_and_a_merge(store, *served)
    assert builds == [] and serving_loads_only(served[0])


def test_a_new_identifier_and_a_merge_reach_a_cache_that_holds_everyone(
    store: Store, served_whole: tuple[Serving, Background], builds: list[int]
) -> None:
    serving, _ = served_whole
    assert serving.view().complete
    unknown = DecideRequest("email_weekly", customer_id="C404")
    with store.statements() as sent:
        found = decide(store, unknown, EMAIL, use_default_recommender=False, serving=serving)
    assert found["person_id"] is None and not [s for s in sent if "identifiers" in s]
    _a_new_identifier_and_a_merge(store, *served_whole)
    assert builds == [] and serving_loads_only(serving)


def serving_loads_only(serving: Serving) -> bool:
    """No whole reload by the safety net."""
    return serving.reloads == 0


def _a_new_identifier_and_a_merge(store: Store, serving: Serving, dispatcher: Background) -> None:
    visitor = DecideRequest("home_banner", anonymous_id="visitor-9")
    banner = LIBRARY.for_placement("home_banner")
    first = decide(store, visitor, banner, use_default_recommender=False, serving=serving)
    assert first["person_id"] is None  # nobody yet: remembered as nobody
    assert _decide(store, serving, "C3")["person_id"] == 3
    add_person(store, 9, identifiers={"anonymous_id": "visitor-9"})
    with store.begin() as conn:  # the visitor identified, then 3 merged into 9
        merge_into(conn, 3, 9)
        _notify(store, conn, outbox.EVENT, 9)
    dispatcher.kick()
    started = time.monotonic()
    while True:
        found = decide(store, visitor, banner, use_default_recommender=False, serving=serving)
        if found["person_id"] == 9:
            break
        assert time.monotonic() - started < 1.0, "the new identifier never reached the cache"
        time.sleep(0.01)
    _within_a_second(store, serving, "C3", lambda r: r["person_id"] == 9)
    assert serving.view().person_id(3, []) == 9


def test_workers_sharing_redis_hear_of_changes_delivered_to_another(store: Store) -> None:
    add_person(store, 1, ANNA, identifiers={"customer_id": "C1"})
    redis_url = "redis://127.0.0.1:6379/0"
    told, other = (
        Serving(store, refresh_seconds=3_600, flush_ms=20, shared_url=redis_url) for _ in range(2)
    )
    told.start()
    other.start()
    try:
        assert other._unlisten is not None
        other._unlisten()  # the dispatcher delivers each change to one worker only: not this one
        for worker in (told, other):
            assert "Anna" in _decide(store, worker, "C1")["content"]["body"]
        set_consent(store, 1, False, utcnow())
        told.changed({1})  # what the dispatcher of the first worker hears
        assert "Anna" not in _decide(store, told, "C1")["content"]["body"]
        started = time.monotonic()
        while "Anna" in _decide(store, other, "C1")["content"]["body"]:
            assert time.monotonic() - started < 1.0, "the other worker never heard of it"
            time.sleep(0.01)
        assert told.reloads == other.reloads == 0
    finally:
        told.stop()
        other.stop()


def test_a_world_that_fits_is_read_whole_at_start_and_decided_without_a_read(
    store: Store,
) -> None:
    for pid in (1, 2, 3):
        add_person(store, pid, ANNA, identifiers={"customer_id": f"C{pid}"})
    serving = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=10)
    serving.ensure_started(LIBRARY.metrics())  # as the server starts it
    try:
        deadline = time.monotonic() + 10
        while serving.warmed == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert serving.warmed == 3
        with store.statements() as sent:
            for customer in ("C1", "C2", "C3"):
                assert _decide(store, serving, customer)["content"]["body"].startswith("Bonjour")
        assert not [s for s in sent if "traits" in s], sent  # nobody read on a miss
    finally:
        serving.stop()
