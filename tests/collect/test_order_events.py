"""Segment's e-commerce `Order Completed` events become orders with their lines, once per order
id, so web purchases count like imported ones: sent over HTTP by the official client and by
hand, on a real server, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from api_helpers import WRITE_KEY, serving
from segment.analytics import Client

from surmesure.collect.ecommerce import fault, order_id_of
from surmesure.dispatch import dispatcher
from surmesure.protect import blind
from surmesure.segment import repository
from surmesure.segment.definitions import parse
from surmesure.store import Store, schema
from surmesure.unify.profile import find_person

AUTH = (WRITE_KEY, "")
AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SHOES = {"name": "shoe_buyers", "where": {"purchase": {"category": "shoes", "within_days": 3650}}}


def _orders(store: Store) -> dict[str, dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(schema.orders)).mappings().all()
    return {str(r["order_id"]): dict(r) for r in rows}


def _lines(store: Store) -> list[tuple[Any, ...]]:
    ol = schema.order_lines
    query = sa.select(
        ol.c.order_id, ol.c.line_no, ol.c.product_code, ol.c.quantity, ol.c.unit_price, ol.c.amount
    ).order_by(ol.c.order_id, ol.c.line_no)
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def _order(message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "userId": "C9",
        "event": "Order Completed",
        "properties": properties,
        "timestamp": "2026-03-02T09:30:00Z",
    }


def test_order_completed_becomes_one_order_with_its_lines(store: Store) -> None:
    repository.save(store, parse(SHOES), datetime(2026, 1, 1))
    products = [
        {"product_id": "P1", "name": "Sneaker", "category": "shoes", "price": 19.95, "quantity": 2},
        {"sku": "S2", "name": "Socks", "price": 20},
    ]
    with serving(store) as (url, _):
        errors: list[Any] = []
        client = Client(WRITE_KEY, host=url, on_error=lambda e, batch: errors.append(e))
        client.identify(user_id="C1", traits={"email": "c1@example.org"}, timestamp=AT)
        client.track(
            user_id="C1",
            event="Order Completed",
            properties={
                "order_id": "W-1",
                "total": 59.9,
                "revenue": 50.0,
                "currency": "eur",
                "products": products,
            },
            timestamp=AT,
        )
        # the same order sent again by another message: still one order
        client.track(
            user_id="C1",
            event="Order Completed",
            properties={"order_id": "W-1", "total": 1000.0},
            timestamp=AT,
        )
        client.track(user_id="C1", event="Order Completed", properties={"revenue": 12.5})
        client.track(user_id="C1", event="Product Viewed", properties={"order_id": "not-one"})
        client.flush()
        client.shutdown()
        # a message sent twice (an SDK retry) is stored once, and so is its order
        twice = [
            httpx.post(f"{url}/v1/track", json=_order("m-2", order_id=77), auth=AUTH)
            for _ in range(2)
        ]
    assert errors == [] and all(r.status_code == 200 for r in twice)
    dispatcher.drain(store)  # the purchase's own change reaches the segments

    orders = _orders(store)
    with store.connect() as conn:
        c1 = find_person(conn, "customer_id:C1").person_id
        c9 = find_person(conn, "customer_id:C9").person_id
        events = {
            str(r[0]): r[1]
            for r in conn.execute(sa.select(schema.events.c.message_id, schema.events.c.event))
        }
    assert len(orders) == 3
    w1 = orders["W-1"]
    assert (w1["person_id"], w1["total_amount"], w1["currency"]) == (c1, 59.9, "EUR")
    assert (w1["channel"], w1["is_return"], w1["source"]) == ("web", False, "web")
    assert w1["ordered_at"] == AT.replace(tzinfo=None)
    assert w1["customer_ref"] == blind.index(store, blind.USER_ID_KIND, "C1")
    assert orders["77"]["person_id"] == c9
    (other,) = [o for k, o in orders.items() if k not in ("W-1", "77")]
    assert other["total_amount"] == 12.5 and other["person_id"] == c1
    assert events[other["order_id"]] == "Order Completed"  # its messageId stands in
    assert _lines(store) == [
        ("W-1", 1, "P1", 2, 19.95, 39.9),
        ("W-1", 2, "S2", 1, 20.0, 20.0),
    ]
    with store.connect() as conn:
        members = conn.execute(
            sa.select(schema.segment_members.c.person_id).where(
                schema.segment_members.c.segment == "shoe_buyers"
            )
        ).all()
        category = conn.execute(
            sa.select(schema.products.c.category).where(schema.products.c.product_code == "P1")
        ).scalar_one()
    assert category == "shoes"
    assert [r[0] for r in members] == [c1]  # a web purchase moves people like an imported one


def test_malformed_order_properties_are_refused_by_name(store: Store) -> None:
    with serving(store) as (url, _):
        bad_total = httpx.post(f"{url}/v1/track", json=_order("b-1", total="lots"), auth=AUTH)
        bad_line = httpx.post(
            f"{url}/v1/track",
            json=_order("b-2", order_id="W-9", products=[{"sku": "A"}, {"price": 3}]),
            auth=AUTH,
        )
        bad_currency = httpx.post(
            f"{url}/v1/track", json=_order("b-3", order_id="W-8", currency="euro"), auth=AUTH
        )
    assert bad_total.status_code == 400
    assert bad_total.json()["error"]["field"] == "properties.total"
    assert bad_line.json()["error"]["field"] == "properties.products[1].product_id"
    assert bad_currency.json()["error"]["field"] == "properties.currency"
    assert _orders(store) == {}
    with store.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(schema.quarantine)).scalar()
    assert kept == 3  # nothing lost: each waits in the quarantine with its reason


def test_properties_rules() -> None:
    assert fault({"order_id": "x" * 65})[0] == "properties.order_id"  # type: ignore[index]
    assert fault({"products": [{"product_id": "P", "quantity": 0}]}) == (
        "properties.products[0].quantity",
        "must be a whole number of at least 1",
    )
    assert fault({"revenue": True})[0] == "properties.revenue"  # type: ignore[index]
    assert fault(None) is None and fault({"total": 3}) is None
    assert order_id_of({}, "m" * 64) == "m" * 64
    long = order_id_of({}, "m" * 65)
    assert long.startswith("message-") and len(long) <= 64 and long == order_id_of({}, "m" * 65)
