"""An event's change carries the event's name, so the subscribers that want a few names (web
orders, journey entries) pass over the others without reading ``events`` back."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from surmesure.clock import utcnow
from surmesure.collect import purchases
from surmesure.collect.events import write_events
from surmesure.collect.segment import validate_messages
from surmesure.dispatch import outbox
from surmesure.dispatch.subscribers import Delivery
from surmesure.store import Store, schema

AT = datetime(2026, 3, 2, 9, 30)


def _collect(store: Store, raw: list[dict[str, object]]) -> list[outbox.Change]:
    accepted, refused = validate_messages(raw, region="FR", prefix="")
    assert not refused, refused
    with store.begin() as conn:
        write_events(store, conn, accepted, source="web", received_at=AT)
        return outbox.read(conn, 0, 100)


def _message(kind: str, message_id: str, **fields: object) -> dict[str, object]:
    return {
        "type": kind,
        "userId": "C1",
        "messageId": message_id,
        "timestamp": "2026-03-02T09:30:00Z",
        **fields,
    }


ORDER = _message(
    "track",
    "o-1",
    event="Order Completed",
    properties={"order_id": "W-1", "total": 10.0, "currency": "EUR"},
)


def test_a_tracked_event_change_names_its_event(store: Store) -> None:
    changes = _collect(
        store,
        [
            _message("track", "t-1", event="Product Viewed"),
            _message("page", "p-1", name="Home"),
            _message("identify", "i-1", traits={"first_name": "Ana"}),
        ],
    )
    named = {c.ref: (c.detail, c.name) for c in changes if c.kind == outbox.EVENT}
    assert named["t-1"] == ("track", "Product Viewed")
    assert named["p-1"] == ("page", "Home")
    assert named["i-1"] == ("identify", None)


def test_orders_are_read_back_only_from_changes_named_order_completed(store: Store) -> None:
    (change,) = _collect(store, [ORDER])
    assert change.name == "Order Completed"

    def orders(of: outbox.Change) -> int:
        with store.begin() as conn, store.statements() as sent:
            made = purchases.on_changes(Delivery(store, conn, [of], utcnow()))
            conn.rollback()
        return made if any("FROM events" in s for s in sent) else -1

    # the handler trusts the name: a change naming another event is not read back
    assert orders(change._replace(name="Product Viewed")) == -1
    assert orders(change) == 1
    # a change stored before names were kept names none: it is read back as before
    assert orders(change._replace(name=None)) == 1
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.orders)).scalar() == 0
