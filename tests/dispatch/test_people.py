"""The ``people_changed`` notification: a cache hears who changed, once the change is
committed, and a listener that fails stops nothing."""

from __future__ import annotations

import sqlalchemy as sa
from dispatch_helpers import store_events

from surmesure.clock import utcnow
from surmesure.dispatch import dispatcher, outbox, people
from surmesure.store import Store, schema


def test_a_listener_hears_who_changed_after_the_commit(store: Store) -> None:
    heard: list[tuple[frozenset[int], int]] = []

    def cache(changed: frozenset[int]) -> None:
        with store.connect() as conn:  # another connection: it sees only what is committed
            c = schema.change_cursors.c
            position = conn.execute(
                sa.select(c.position).where(c.subscriber == "people_changed")
            ).scalar_one()
        heard.append((changed, int(position)))

    def broken(changed: frozenset[int]) -> None:
        raise RuntimeError("a cache that fails")

    stop_broken = people.listen(broken)
    stop = people.listen(cache)
    try:
        store_events(store, 3)
        assert dispatcher.drain(store)["people_changed"] == 3
        store_events(store, 3)  # the same messages: nothing new, nobody to tell
        dispatcher.drain(store)
    finally:
        stop()
        stop_broken()
    with store.connect() as conn:
        everyone = frozenset(conn.execute(sa.select(schema.people.c.person_id)).scalars())
    assert heard == [(everyone, 3)]
    assert len(everyone) == 3


def test_an_orders_listener_hears_the_buyers_alone(store: Store) -> None:
    changed: list[frozenset[int]] = []
    bought: list[frozenset[int]] = []
    stop = people.listen(changed.append, orders=bought.append)
    try:
        with store.begin() as conn:
            outbox.append(store, conn, outbox.EVENT, [1, 2], at=utcnow())
            outbox.append(store, conn, outbox.ORDER, [2, 3], at=utcnow())
        dispatcher.drain(store)
        with store.begin() as conn:  # no order: no news for the orders listener
            outbox.append(store, conn, outbox.CONSENT, [4], at=utcnow())
        dispatcher.drain(store)
    finally:
        stop()
    assert changed == [frozenset({1, 2, 3}), frozenset({4})]
    assert bought == [frozenset({2, 3})]


def test_the_people_looked_for_new_identities_are_bound_as_one_list(store: Store) -> None:
    """A round names thousands of people; the statement that looks for those with a new
    identity is the same text whatever their number (one list bound, not a parameter each,
    which cost DuckDB 200 ms for 5,000), and finds the same people."""
    before = utcnow()
    store_events(store, 40)
    with store.connect() as conn:
        everyone = sorted(
            int(p) for p in conn.execute(sa.select(schema.people.c.person_id)).scalars()
        )
        with store.statements() as sent:
            few = people._renamed(conn, everyone[:2], before)
            many = people._renamed(conn, everyone, before)
            later = people._renamed(conn, everyone, utcnow())
    assert few == set(everyone[:2]) and many == set(everyone) and later == set()
    assert len(sent) == 3 and sent[0] == sent[1]
