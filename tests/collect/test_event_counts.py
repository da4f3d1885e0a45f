"""``event_counts`` agrees with a scan of ``events`` after collection, a merge, an unmerge, an
erasure and a retention run, and real-time membership read from it agrees with the batch
membership read from ``events`` (an event dated after ``now`` included), on DuckDB and
PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from surmesure.collect.events import write_events
from surmesure.collect.segment import validate_messages
from surmesure.domain.segments import SegmentDefinition
from surmesure.protect.erase import erase_person
from surmesure.protect.retention import run_retention
from surmesure.segment import membership, realtime, repository
from surmesure.store import Store, schema
from surmesure.unify.unmerge import unmerge

NOW = datetime(2026, 6, 1, 12, 0)


def _send(store: Store, messages: list[dict[str, Any]], source: str = "web") -> None:
    accepted, refused = validate_messages(messages)
    assert not refused, refused
    with store.begin() as conn:
        write_events(store, conn, accepted, source=source, received_at=NOW)


def _page(n: int, device: str, day: int, name: str | None = "Home") -> dict[str, Any]:
    message = {
        "type": "page",
        "messageId": f"{device}-p{n}",
        "anonymousId": device,
        "timestamp": f"2026-{day // 100:02d}-{day % 100:02d}T10:00:00Z",
    }
    return message | ({"name": name} if name is not None else {})


def _view(n: int, device: str, when: str = "2026-03-02T10:00:00Z") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": f"{device}-v{n}",
        "anonymousId": device,
        "timestamp": when,
    }


def _identify(n: int, device: str, user: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"{device}-i{n}",
        "anonymousId": device,
        "userId": user,
        "timestamp": "2026-03-03T10:00:00Z",
    }


def _stored(store: Store) -> set[tuple[Any, ...]]:
    c = schema.event_counts.c
    columns = (c.node_id, c.type, c.event, c.person_id, c.count, c.last_at)
    with store.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.select(*columns))}


def _scanned(store: Store) -> set[tuple[Any, ...]]:
    """The counts computed here from every stored event, independently of the module."""
    found: dict[tuple[int, str, str], list[Any]] = {}
    e = schema.events.c
    with store.connect() as conn:
        rows = conn.execute(sa.select(e.node_id, e.type, e.event, e.person_id, e.occurred_at))
        for node, kind, name, person, at in rows:
            if person is None:
                continue
            row = found.setdefault((node, kind, name or ""), [person, 0, at])
            assert row[0] == person  # a node's events all belong to one person
            row[1] += 1
            row[2] = max(row[2], at)
    return {(*key, *value) for key, value in found.items()}


def _agree(store: Store) -> set[tuple[Any, ...]]:
    stored = _stored(store)
    assert stored == _scanned(store)
    assert stored  # something to agree on
    return stored


def _person(store: Store, message_id: str) -> int:
    e = schema.events.c
    with store.connect() as conn:
        found = conn.execute(sa.select(e.person_id).where(e.message_id == message_id))
        return int(found.scalar_one())


def test_counts_follow_collection_merges_unmerges_erasures_and_retention(store: Store) -> None:
    _send(store, [_page(i, "dev-a", 301 + i) for i in range(4)] + [_view(1, "dev-a")])
    _send(store, [_page(9, "dev-a", 310, None), _page(1, "dev-b", 305)])
    _send(store, [_identify(1, "dev-b", "C1")], source="shop")
    _send(store, [_page(1, "dev-a", 301)])  # sent again: counted once
    stored = _agree(store)
    a, b = _person(store, "dev-a-p0"), _person(store, "dev-b-i1")
    assert (a, "page", "Home", a, 4, datetime(2026, 3, 4, 10)) in stored
    assert (a, "page", "", a, 1, datetime(2026, 3, 10, 10)) in stored

    # a trusted source says dev-a is C1's: one person holds both nodes' counts
    _send(store, [_identify(2, "dev-a", "C1")], source="shop")
    merged = _person(store, "dev-a-p0")
    assert merged == _person(store, "dev-b-i1")
    stored = _agree(store)
    assert {row[3] for row in stored} == {merged}
    assert {row[0] for row in stored} == {a, b}

    with store.connect() as conn:
        (merge,) = conn.execute(sa.select(schema.merges.c.merge_id)).scalars()
    unmerge(store, "customer_id:C1", merge)
    stored = _agree(store)
    assert {row[3] for row in stored} == {a, b}

    erase_person(store, str(a), confirmed=True)
    stored = _agree(store)
    assert {row[0] for row in stored} == {b}

    _send(store, [_page(2, "dev-b", 102), _page(3, "dev-b", 420)])
    run_retention(store, {"events": 100}, now=NOW)  # 2026-01-02 goes, 2026-03-05 stays
    stored = _agree(store)
    assert (b, "page", "Home", b, 2, datetime(2026, 4, 20, 10)) in stored


SEGMENTS = [
    {"name": "browsers", "where": {"event": {"type": "page", "min_count": 3}}},
    {"name": "viewers", "where": {"event": {"type": "track", "name": "Product Viewed"}}},
    {"name": "light", "where": {"event": {"type": "page", "min_count": 0, "max_count": 2}}},
    {"name": "home_twice", "where": {"event": {"name": "Home", "min_count": 2, "max_count": 4}}},
    {"name": "unviewed", "where": {"not": {"event": {"name": "Product Viewed"}}}},
    {"name": "unnamed", "where": {"event": {"type": "page", "name": ""}}},
    {"name": "recent", "where": {"event": {"type": "page", "within_days": 90}}},
]
"""Conditions the counts answer (counts, bounds, negation) and those that read events (a name
``''``, a window)."""


def _realtime_agrees_with_batch(store: Store, now: datetime) -> dict[str, list[int]]:
    with store.connect() as conn:
        people = list(conn.execute(sa.select(schema.event_counts.c.person_id).distinct()).scalars())
    with store.begin() as conn:
        happened = [(int(p), kind) for p in people for kind in ("page", "track")]
        realtime.on_events(store, conn, happened, now)
    found: dict[str, list[int]] = {}
    m = schema.segment_members.c
    with store.connect() as conn:
        catalog = repository.catalog(conn)
        for name, definition in catalog.items():
            batch = membership.members(conn, store, definition, now, catalog)
            held = conn.execute(
                sa.select(m.person_id).where(m.segment == name).order_by(m.person_id)
            ).scalars()
            assert [int(p) for p in held] == batch, name
            found[name] = batch
    return found


def test_real_time_membership_from_the_counts_agrees_with_a_scan_of_events(store: Store) -> None:
    for document in SEGMENTS:
        repository.save(store, SegmentDefinition.model_validate(document), datetime(2026, 1, 1))
    ahead = "2026-09-01T10:00:00Z"  # after NOW: not counted until then
    _send(
        store,
        [_page(i, "dev-a", 301 + i) for i in range(3)]
        + [_page(8, "dev-a", 521, None)]  # unnamed: not a page named ''
        + [_page(i, "dev-b", 301 + i) for i in range(2)]
        + [_page(9, "dev-b", 520, ""), _view(1, "dev-b")]
        + [_page(i, "dev-c", 301 + i) for i in range(2)]
        + [_page(3, "dev-c", 901), _view(1, "dev-c", ahead)],
    )
    a, b, c = (_person(store, f"dev-{x}-p0") for x in "abc")
    found = _realtime_agrees_with_batch(store, NOW)
    assert found["browsers"] == [a, b]  # dev-c's third page is dated ahead
    assert found["viewers"] == [b]
    assert found["light"] == [c]
    assert found["home_twice"] == [a, b, c]
    assert found["unviewed"] == [a, c]
    assert found["unnamed"] == [b]
    assert found["recent"] == [a, b]
    later = datetime(2026, 9, 2)
    found = _realtime_agrees_with_batch(store, later)
    assert found["browsers"] == [a, b, c] and found["viewers"] == [b, c]
    assert found["recent"] == [c]
    # the real-time round reads the counts, not the events: without them, nobody browsed
    with store.begin() as conn:
        conn.execute(schema.event_counts.delete())
        changed = realtime.on_events(store, conn, [(a, "page")], later)
    assert ("browsers", a, "exited") in {(x.segment, x.person_id, x.change) for x in changed}
