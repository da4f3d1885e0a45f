"""The outbox and the in-process dispatcher: in order, from a cursor per subscriber, a failing
handler retried without holding anything back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dispatch_helpers import save_viewers, store_events, value

from surmesure.clock import utcnow
from surmesure.dispatch import dispatcher, gate, outbox, subscribers
from surmesure.dispatch.subscribers import Delivery
from surmesure.store import Store

NONE = {"orders_from_events": 0, "journeys": 0}  # no order here; no journey is published


@pytest.fixture
def seen() -> Iterator[list[int]]:
    """A subscriber ``seen`` that keeps the ids delivered to it."""
    ids: list[int] = []

    def keep(delivery: Delivery) -> int:
        ids.extend(c.change_id for c in delivery.changes)
        return len(delivery.changes)

    subscribers.register("seen", keep)
    yield ids
    subscribers.unregister("seen")


def test_each_new_event_is_one_change_and_a_retry_adds_none(store: Store) -> None:
    store_events(store, 3)
    again = store_events(store, 3)  # the same messageIds: an SDK retry
    assert again.duplicate == 3 and again.accepted == 0
    with store.connect() as conn:
        changes = outbox.read(conn, 0, 100)
    assert [(c.kind, c.detail) for c in changes] == [("event", "track")] * 3
    assert sorted(c.ref for c in changes) == ["m-0", "m-1", "m-2"]
    assert [c.change_id for c in changes] == sorted(c.change_id for c in changes)


def test_drain_delivers_each_change_once_in_order(store: Store, seen: list[int]) -> None:
    save_viewers(store)
    store_events(store, 4, prefix="a")
    first = dispatcher.drain(store)
    store_events(store, 2, prefix="b")
    second = dispatcher.drain(store)
    assert first == {**NONE, "segment_membership": 4, "people_changed": 4, "seen": 4}
    assert second == {**NONE, "segment_membership": 2, "people_changed": 2, "seen": 2}
    assert seen == list(range(1, 7))
    assert dispatcher.drain(store) == {
        **NONE,
        "segment_membership": 0,
        "people_changed": 0,
        "seen": 0,
    }
    assert value(store, "SELECT count(*) FROM segment_members") == 6
    assert dispatcher.cursors(store, ["seen"]) == {"seen": 6}


def test_a_failing_change_is_recorded_retried_and_holds_nothing_back(
    store: Store, seen: list[int]
) -> None:
    refused = {3}

    def fussy(delivery: Delivery) -> int:
        if any(c.change_id in refused for c in delivery.changes):
            raise ValueError("person@example.com is not welcome")
        return len(delivery.changes)

    subscribers.register("fussy", fussy)
    try:
        store_events(store, 5)
        now = utcnow()
        assert dispatcher.drain(store, now=now)["fussy"] == 4
        assert seen == [1, 2, 3, 4, 5]  # the other subscriber was not held back
        assert dispatcher.cursors(store, ["fussy"]) == {"fussy": 5}
        [failure] = dispatcher.failures(store, "fussy")
        assert failure["change_id"] == 3 and failure["attempts"] == 1
        assert str(failure["error"]).startswith("builtins.ValueError at test_dispatcher.py:")
        assert "example.com" not in str(failure["error"])  # the message may be personal
        assert dispatcher.retrying(store, ["seen", "fussy"], now=now) == []
        assert dispatcher.drain(store, now=now)["fussy"] == 0  # not due yet
        later = now + timedelta(seconds=3)
        assert dispatcher.retrying(store, ["seen", "fussy"], now=later) == ["fussy"]
        assert dispatcher.drain(store, now=now + timedelta(seconds=3))["fussy"] == 0
        assert dispatcher.failures(store, "fussy")[0]["attempts"] == 2
        refused.clear()
        assert dispatcher.drain(store, now=now + timedelta(seconds=20))["fussy"] == 1
        assert dispatcher.failures(store, "fussy") == []
    finally:
        subscribers.unregister("fussy")


def test_a_change_that_always_fails_is_given_up(store: Store) -> None:
    def broken(delivery: Delivery) -> int:
        raise RuntimeError("down")

    subscribers.register("broken", broken)
    try:
        store_events(store, 1)
        now = utcnow()
        for minutes in range(dispatcher.MAX_ATTEMPTS + 2):
            dispatcher.drain(store, names=["broken"], now=now + timedelta(minutes=minutes))
        [failure] = dispatcher.failures(store, "broken")
        assert failure["attempts"] == dispatcher.MAX_ATTEMPTS
        assert failure["retry_at"] is None
    finally:
        subscribers.unregister("broken")


def test_a_change_still_being_written_is_never_skipped(store: Store, seen: list[int]) -> None:
    """Ids are taken in one order and committed in another: the reader waits for the
    writer that holds the lower id rather than move past it."""
    slow_started, slow_may_commit = threading.Event(), threading.Event()

    def slow() -> None:
        with store.begin() as conn:
            outbox.append(store, conn, outbox.EVENT, [7], at=utcnow(), details=["track"])
            slow_started.set()
            slow_may_commit.wait(10)

    writer = threading.Thread(target=slow)
    writer.start()
    assert slow_started.wait(10)
    with gate.settled(store, timeout=0.3) as conn:
        assert conn is None  # a writer holds an id: nothing can be read past it yet
    slow_may_commit.set()
    writer.join()
    store_events(store, 1)
    dispatcher.drain(store, names=["seen"])
    assert seen == [1, 2]


def test_changes_every_subscriber_has_are_pruned_but_failed_ones(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def picky(delivery: Delivery) -> int:
        if any(c.change_id == 2 for c in delivery.changes):
            raise ValueError("no")
        return 0

    monkeypatch.setattr(dispatcher, "PRUNE_EVERY", 1)
    subscribers.register("picky", picky)
    try:
        store_events(store, 3)
        dispatcher.drain(store)
        assert value(store, "SELECT count(*) FROM changes") == 1  # the failed one, kept
        assert [f["change_id"] for f in dispatcher.failures(store, "picky")] == [2]
    finally:
        subscribers.unregister("picky")


def test_a_round_moves_the_built_in_cursors_in_one_transaction(store: Store) -> None:
    save_viewers(store)
    store_events(store, 3)
    with store.statements() as sent:
        effects = dispatcher.drain(store)
    assert effects == {**NONE, "segment_membership": 3, "people_changed": 3}
    moves = [s for s in sent if s.lstrip().upper().startswith("UPDATE CHANGE_CURSORS")]
    assert len(moves) == 1
    names = list(subscribers.BUILT_IN)
    assert dispatcher.cursors(store, names) == dict.fromkeys(names, 3)


def test_a_built_in_handler_that_fails_leaves_the_others_delivered(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared transaction rolls back; each subscriber is then delivered alone, and the
    one change the failing handler refuses is kept for its retries."""

    def refuses_two(delivery: Delivery) -> int:
        if any(c.change_id == 2 for c in delivery.changes):
            raise ValueError("person@example.com")
        return 0

    subscribers.handler("journeys")
    monkeypatch.setitem(subscribers._loaded, "journeys", refuses_two)
    save_viewers(store)
    store_events(store, 3)
    effects = dispatcher.drain(store)
    assert effects["segment_membership"] == 3 and effects["people_changed"] == 3
    assert value(store, "SELECT count(*) FROM segment_members") == 3
    assert value(store, "SELECT count(*) FROM segment_changes") == 3  # once, not twice
    assert [f["change_id"] for f in dispatcher.failures(store, "journeys")] == [2]
    assert dispatcher.cursors(store, list(subscribers.BUILT_IN))["journeys"] == 3
