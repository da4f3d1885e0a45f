"""Writers outside collect tell the serving cache too: a derive run's new metrics and an
unmerge reach a server's cache within a second, with its whole-store safety net out of the way
and no whole read of the store; an unmerge re-evaluates both people's segments."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from decide_world import DAY, NOW, add_person

from derive.derive_data import AS_OF, CUSTOMERS, TINY, load_orders
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.decide import serving as serving_module
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.derive.run import derive
from surmesure.dispatch.background import Background
from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment import membership, repository
from surmesure.store import Store, schema
from surmesure.unify.unmerge import unmerge

LYON = SegmentDefinition.model_validate(
    {"name": "lyon", "where": {"trait": {"name": "city", "op": "eq", "value": "Lyon"}}}
)
LIBRARY = Library(EXAMPLES)
EMAIL = LIBRARY.for_placement("email_weekly")
DERIVED_AT = datetime(2024, 4, 1, 6, 0)  # the derive run's clock, the day after AS_OF


def _server(store: Store, cache_people: int, metrics: tuple[str, ...] = ()) -> Serving:
    """A serving cache started as ``surmesure serve`` starts it (read whole when everyone
    fits), its safety net out of the way."""
    serving = Serving(
        store, metrics=metrics, refresh_seconds=3_600, flush_ms=20, cache_people=cache_people
    )
    serving.ensure_started(metrics)
    deadline = time.monotonic() + 10
    while cache_people >= 10 and not serving.view().complete and time.monotonic() < deadline:
        time.sleep(0.02)
    return serving


@pytest.fixture
def dispatcher(store: Store) -> Iterator[Background]:
    """The server's dispatcher thread."""
    running = Background(store, get_settings(), period=0.2, gap=0.0)
    running.start()
    yield running
    running.stop()


def _within_a_second(holds: Callable[[], bool]) -> float:
    started = time.monotonic()
    while not holds():
        assert time.monotonic() - started < 1.0, "the change did not reach the cache within 1 s"
        time.sleep(0.01)
    return time.monotonic() - started


def _segment(serving: Serving, person_id: int) -> object:
    read = serving.view().read(person_id, (), DERIVED_AT)
    return read.latest_metrics(DERIVED_AT).get("rfm_segment")


def test_a_derive_run_reaches_the_cache_without_the_safety_net(
    store: Store, dispatcher: Background, monkeypatch: pytest.MonkeyPatch
) -> None:
    # many people held: their metrics are read in one pass (a few: by id, as the next test)
    monkeypatch.setattr(serving_module, "METRICS_BATCH", 2)
    load_orders(store, CUSTOMERS, TINY)
    serving = _server(store, 10, ("rfm_segment",))
    try:
        assert _segment(serving, 3) is None and _segment(serving, 2) is None  # not derived yet
        cache = serving.view()
        loads = cache.loads
        derive(store, as_of=AS_OF, now=DERIVED_AT)
        dispatcher.kick()
        _within_a_second(lambda: _segment(serving, 2) == "At risk")
        assert _segment(serving, 3) == "Loyal"
        # one statement re-read the metrics of those held; nobody was read whole again
        assert cache.loads == loads + 1 and serving.reloads == 0
        assert serving.view() is cache and cache.complete
    finally:
        serving.stop()


def test_workers_sharing_redis_hear_of_a_derive_run_delivered_to_another(
    duckdb_store: Store,
) -> None:
    store = duckdb_store
    load_orders(store, CUSTOMERS, TINY)
    told, other = (
        Serving(
            store, metrics=("rfm_segment",), refresh_seconds=3_600, flush_ms=20,
            cache_people=2, shared_url="redis://127.0.0.1:6379/0",  # a few held: read by id
        )
        for _ in range(2)
    )  # fmt: skip
    for worker in (told, other):
        worker.start()
    try:
        assert other._unlisten is not None
        other._unlisten()  # the dispatcher delivers each change to one worker only: not this one
        assert _segment(told, 3) is None and _segment(other, 3) is None
        derive(store, as_of=AS_OF, now=DERIVED_AT)
        told.metrics_changed()  # what the dispatcher of the first worker hears
        assert _segment(told, 3) == "Loyal"
        _within_a_second(lambda: _segment(other, 3) == "Loyal")
        assert told.reloads == other.reloads == 0
    finally:
        told.stop()
        other.stop()


def test_workers_sharing_redis_know_what_the_others_showed_and_read_nothing_again(
    duckdb_store: Store,
) -> None:
    """Each worker's decision log tells the others the exposures it wrote: they enter the
    ledgers held there (frequency and repeat rules count them), and the others' exposures in
    the store are no untold change for the safety net (which would read everyone again)."""
    store = duckdb_store
    load_orders(store, CUSTOMERS, TINY)
    told, other = (
        Serving(
            store, refresh_seconds=3_600, flush_ms=20, cache_people=10,
            shared_url="redis://127.0.0.1:6379/0",
        )
        for _ in range(2)
    )  # fmt: skip
    for worker in (told, other):
        worker.start()
    try:
        for worker in (told, other):
            _within_a_second(lambda w=worker: w.view().complete)  # type: ignore[misc]
            assert worker.refresh_if_changed() is False
        request = DecideRequest("email_weekly", customer_id="C2")
        shown = decide(store, request, EMAIL, use_default_recommender=False, serving=told)
        content = shown["content"]["content_id"]
        pid = shown["person_id"]

        def seen(worker: Serving) -> dict[str, datetime]:
            return worker.view().read(pid, [content], utcnow() + DAY).seen

        assert content in seen(told)
        _within_a_second(lambda: content in seen(other))
        assert seen(other)[content] == seen(told)[content]
        assert other.refresh_if_changed() is False and other.reloads == 0
    finally:
        told.stop()
        other.stop()


def _merged(store: Store) -> None:
    """Anna (customer C1) and a visitor who said he was Bob, of Lyon, merged into her (merge
    1)."""
    add_person(store, 1, {"first_name": ("Anna", "crm", 0.95, NOW - 2 * DAY)})
    add_person(
        store,
        9,
        {"first_name": ("Bob", "web", 0.8, NOW - 3 * DAY), "city": ("Lyon", "web", 0.8, NOW)},
    )
    with store.begin() as conn:
        for node, kind, value in ((1, "customer_id", "C1"), (9, "anonymous_id", "visitor-9")):
            conn.execute(
                schema.identifiers.insert().values(
                    kind=kind, value=blind.index(store, kind, value), person_id=1, node_id=node,
                    source="crm", first_seen_at=NOW - DAY,
                )
            )  # fmt: skip
        conn.execute(schema.people.update().where(schema.people.c.person_id == 9).values(
            merged_into=1
        ))  # fmt: skip
        conn.execute(schema.traits.update().where(schema.traits.c.node_id == 9).values(
            person_id=1
        ))  # fmt: skip
        conn.execute(
            schema.merges.insert().values(
                merge_id=1, survivor_id=1, absorbed_id=9,
                evidence={"anonymous_id": "visitor-9"}, merged_at=NOW - DAY,
            )
        )  # fmt: skip


def _visitor(store: Store, serving: Serving) -> tuple[int | None, str]:
    request = DecideRequest("email_weekly", anonymous_id="visitor-9")
    found = decide(store, request, EMAIL, use_default_recommender=False, serving=serving)
    return found["person_id"], found["content"]["body"]


@pytest.mark.parametrize("cache_people", [10, 2], ids=["whole", "bounded"])
def test_an_unmerge_reaches_the_cache_without_the_safety_net(
    store: Store, dispatcher: Background, cache_people: int
) -> None:
    _merged(store)
    repository.save(store, LYON, NOW)
    membership.refresh(store, None, utcnow())
    assert _members(store, "lyon") == [1]
    serving = _server(store, cache_people)
    try:
        person, body = _visitor(store, serving)
        assert person == 1 and body.startswith("Bonjour Anna")
        assert serving.view().person_id(9, []) == 1
        unmerge(store, "customer_id:C1", 1)
        dispatcher.kick()
        _within_a_second(lambda: _visitor(store, serving)[0] == 9)
        assert _visitor(store, serving)[1].startswith("Bonjour Bob")
        assert serving.view().person_id(9, []) == 9 and serving.view().person_id(1, []) == 1
        assert serving.reloads == 0
        _within_a_second(lambda: _members(store, "lyon") == [9])  # real-time membership
    finally:
        serving.stop()


def _members(store: Store, segment: str) -> list[int]:
    m = schema.segment_members
    with store.connect() as conn:
        query = sa.select(m.c.person_id).where(m.c.segment == segment).order_by(m.c.person_id)
        return [int(p) for p in conn.execute(query).scalars()]
