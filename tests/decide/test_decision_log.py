"""The decision log written behind: queued decisions are known before they are written, and
one flush writes them all."""

from __future__ import annotations

import gc
import threading
import time
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from decide_world import add_person

from surmesure.decide.decision_log import RECENT, DecisionLog, encoded
from surmesure.decide.serving import Serving
from surmesure.store import Store, schema

AT = datetime(2026, 3, 10, 17, 30)


def _decision(n: int, person_id: int | None) -> dict[str, object]:
    return encoded(
        {
            "decision_id": f"d{n}",
            "person_id": person_id,
            "placement": "home_banner",
            "context": {"device": "mobile"},
            "result": {"content": {"id": "spring"}},
            "explanation": {"person": "known"},
            "decided_at": AT,
        }
    )


def _exposure(n: int, person_id: int, content_id: str) -> dict[str, object]:
    return {"exposure_id": f"x{n}", "person_id": person_id, "node_id": None,
            "content_id": content_id, "channel": "web", "placement": "home_banner",
            "shown_at": AT, "expires_at": None}  # fmt: skip


def test_queued_then_written_in_one_flush(store: Store) -> None:
    add_person(store, 1, {})
    log = DecisionLog(store, threading.RLock())
    log.queue([_exposure(1, 1, "spring"), _exposure(2, 1, "sale")], _decision(1, 1))
    log.queue([], _decision(2, None))
    assert len(log) == 2
    assert log.shown() == [(1, ("spring", "sale"), AT)]
    assert log.shown({2}) == []
    assert log.flush() == 2
    assert len(log) == 0 and log.shown() == [] and log.written == 2
    with store.connect() as conn:
        decisions = conn.execute(
            sa.select(schema.decisions.c.decision_id, schema.decisions.c.sealed).order_by(
                schema.decisions.c.decision_id
            )
        ).all()
        shown = conn.execute(sa.select(sa.func.count()).select_from(schema.exposures)).scalar()
    assert [d for d, _ in decisions] == ["d1", "d2"]
    assert decisions[0][1] is not None and decisions[1][1] is None  # a person's is sealed
    assert shown == 2
    assert log.flush() == 0


def test_what_the_log_remembers_of_its_writes_leaves_the_collectors_walks(store: Store) -> None:
    """The exposures a flush wrote stay in memory for readers (some 30,000 at 1,000 decisions a
    second): kept as a few columns of texts, numbers and times a flush, which the collector
    stops tracking, rather than objects a decision that its passes, holding the interpreter,
    would walk. Read back, they are what was shown, a content's name however it is spelt."""
    add_person(store, 1, {})
    add_person(store, 2, {})
    log = DecisionLog(store, threading.RLock())
    odd = "odd\x1fname"  # the separator of the kept columns, in a name
    for n in range(50):
        log.queue([_exposure(n, 1, "spring"), _exposure(100 + n, 1, "sale")], _decision(n, 1))
    log.queue([_exposure(200, 2, odd)], _decision(200, 2))
    log.flush()
    for _ in range(3):  # a level of tuples within tuples a pass
        gc.collect()
    assert sum(gc.is_tracked(flushed) for flushed in log._recent) == 0
    remembered = log.shown_since(0)
    assert remembered == [(1, ("spring", "sale"), AT)] * 50 + [(2, (odd,), AT)]
    assert log.shown_since(0, {2}) == [(2, (odd,), AT)]


class HeldWrite(DecisionLog):
    """The real log, whose write waits until the test lets it go (a slow store)."""

    def __init__(self, store: Store, lock: threading.RLock) -> None:
        super().__init__(store, lock)
        self.writing = threading.Event()
        self.go = threading.Event()

    def _write(self, batch: list[Any]) -> None:
        self.writing.set()
        assert self.go.wait(30)
        super()._write(batch)


def test_a_reader_waits_for_no_write_and_sees_what_is_being_written(store: Store) -> None:
    add_person(store, 1, {}, identifiers={"customer_id": "C1"})
    serving = Serving(store)
    cache = serving.view()
    held = serving.log = HeldWrite(store, serving._flush_lock)
    held.queue([_exposure(1, 1, "spring")], _decision(1, 1))
    writer = threading.Thread(target=serving.flush)
    writer.start()
    try:
        assert held.writing.wait(30)
        since = held.generation
        assert held.shown() == [(1, ("spring",), AT)]  # being written: still known
        started = time.monotonic()
        read = cache.read(cache.person_id(1, []), ["spring"], AT)  # a miss: read from the store
        assert time.monotonic() - started < 10  # did not wait for the write
        assert read.seen == {"spring": AT}
    finally:
        held.go.set()
        writer.join(30)
    assert held.shown() == [] and held.shown_since(since) == [(1, ("spring",), AT)]
    assert held.shown_since(held.generation) == []
    for n in range(RECENT):  # past what the log keeps: a reader that old reads again
        held.queue([], _decision(100 + n, None))
        held.flush()
    assert held.shown_since(since) is None
