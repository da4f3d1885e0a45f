"""Orders sent as `Order Completed` events in another currency than the store's are converted
at collection with the rates of SURMESURE_RATES, keeping the amount and currency as sent; one in
a currency without a rate waits in the quarantine, its reason naming the setting, and is stored
by a replay once the rate is set. Over HTTP (in process), on both stores."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, serving, settings_for

from surmesure.collect import currency
from surmesure.collect.events import write_events
from surmesure.collect.replay import replay
from surmesure.collect.segment import validate_messages
from surmesure.config import Settings
from surmesure.dispatch import dispatcher
from surmesure.store import Store, schema

AUTH = (WRITE_KEY, "")
AT = datetime(2026, 3, 2, 10, 0)


def _order(message_id: str, order_id: str, total: float, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "userId": "C1",
        "event": "Order Completed",
        "properties": {"order_id": order_id, "total": total, "currency": code, **extra},
        "timestamp": "2026-03-02T09:30:00Z",
    }


def _orders(store: Store) -> dict[str, dict[str, Any]]:
    dispatcher.drain(store)
    with store.connect() as conn:
        rows = conn.execute(sa.select(schema.orders)).mappings().all()
    return {str(r["order_id"]): dict(r) for r in rows}


def _quarantine(store: Store) -> list[dict[str, Any]]:
    q = schema.quarantine
    with store.connect() as conn:
        query = sa.select(q.c.kind, q.c.field, q.c.reason, q.c.status, q.c.location)
        return [dict(r) for r in conn.execute(query).mappings()]


def test_an_order_in_another_currency_is_converted_or_kept_until_its_rate_is_set(
    store: Store,
) -> None:
    pounds = [{"product_id": "P1", "price": 10.0, "quantity": 2}]
    before = store.settings
    with serving(store, rates={"GBP": 1.25}) as (url, _), httpx.Client(base_url=url) as client:
        first = client.post("/v1/track", json=_order("m-1", "E-1", 10.0, "EUR"), auth=AUTH)
        assert first.status_code == 200 and first.json()["success"] is True
        _orders(store)  # the store now keeps euros
        batch = [
            _order("m-2", "G-1", 20.0, "gbp", products=pounds),
            _order("m-3", "U-1", 30.0, "USD"),
            {"type": "track", "messageId": "m-4", "userId": "C1", "event": "Viewed"},
        ]
        sent = client.post("/v1/batch", json={"batch": batch}, auth=AUTH)
        again = client.post("/v1/track", json=_order("m-3", "U-1", 30.0, "USD"), auth=AUTH)
    store.follow(before)
    assert sent.status_code == 200
    body = sent.json()
    assert body["success"] is False and body["accepted"] == 2
    (rejected,) = body["rejected"]
    assert rejected["index"] == 1 and rejected["field"] == "batch[1].properties.currency"
    assert currency.SETTING in rejected["reason"] and "USD" in rejected["reason"]
    assert again.status_code == 400  # stored nothing: the same order, still without a rate
    assert again.json()["error"]["field"] == "properties.currency"

    orders = _orders(store)
    assert set(orders) == {"E-1", "G-1"}
    g1 = orders["G-1"]
    assert (g1["total_amount"], g1["currency"]) == (pytest.approx(25.0), "EUR")
    assert (g1["original_amount"], g1["original_currency"]) == (pytest.approx(20.0), "GBP")
    assert orders["E-1"]["original_currency"] is None
    with store.connect() as conn:
        price = conn.execute(
            sa.select(schema.order_lines.c.unit_price).where(schema.order_lines.c.order_id == "G-1")
        ).scalar_one()
        assert currency.single_currency(conn) == "EUR"  # totals add euros only
        stored = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.events)
            .where(schema.events.c.message_id == "m-3")
        ).scalar_one()
    assert price == pytest.approx(12.5) and stored == 0
    (kept,) = _quarantine(store)  # sent twice, kept once
    assert (kept["kind"], kept["field"], kept["status"]) == (
        "events",
        "properties.currency",
        "open",
    )
    assert currency.SETTING in kept["reason"]

    still = replay(store, kind="events")  # no rate yet: it stays
    assert (still.replayed, still.still_open) == (0, 1)
    before = store.follow(settings_for(store, rates={"GBP": 1.25, "USD": 0.5}))
    try:
        done = replay(store, kind="events")
        orders = _orders(store)
    finally:
        store.follow(before)
    assert (done.considered, done.replayed, done.still_open) == (1, 1, 0)
    u1 = orders["U-1"]
    assert (u1["total_amount"], u1["currency"]) == (pytest.approx(15.0), "EUR")
    assert (u1["original_amount"], u1["original_currency"]) == (pytest.approx(30.0), "USD")
    assert _quarantine(store)[0]["status"] == "replayed"


def test_rates_setting_is_read_and_refused_by_name() -> None:
    assert Settings(rates="GBP=1.17, USD=0.92").rates == {"GBP": 1.17, "USD": 0.92}  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rates has 'pound=1' is not CUR=RATE"):
        Settings(rates="pound=1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CUR=RATE"):
        Settings(rates={"GBP": -1.0})


def test_a_first_order_still_on_its_way_sets_the_currency(store: Store) -> None:
    """Before the dispatcher writes the store's first order, its event already says which
    currency the store keeps: an order in another one without a rate is refused."""
    accepted, _ = validate_messages([_order("m-1", "E-1", 10.0, "EUR")], prefix="")
    with store.begin() as conn:
        write_events(store, conn, accepted, source="web", received_at=AT)
    dollars, _ = validate_messages([_order("m-2", "U-1", 5.0, "USD")], prefix="")
    with store.connect() as conn:
        assert currency.stored_currency(conn) is None  # no order written yet
        refused = currency.unconverted(conn, [a.message for a in dollars], {})
        assert currency.unconverted(conn, [a.message for a in dollars], {"USD": 0.5}) == {}
    assert refused["m-2"][0] == "USD" and "the store's currency is EUR" in refused["m-2"][1]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("GBP=abc", "RATE: a number"),
        ("GBP=-1", "RATE: a number"),
        ("GBP=0", "RATE: a number"),
        ("GBP=nan", "RATE: a number"),
        ("GBP=1e308", "RATE: a number from 1e-09 to 1e+09"),  # amounts would become inf
        ("GBP=1e-320", "RATE: a number"),  # and these 0
        ("gbp=1.17", "CUR: three capital letters"),
    ],
)
def test_a_rate_out_of_any_currency_range_is_refused(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"rates has '{text}' is not CUR=RATE ({says}")):
        Settings(rates=text)  # type: ignore[arg-type]
    assert Settings(rates="IRR=0.00002,VND=0.000035").rates["IRR"] == 0.00002  # type: ignore[arg-type]
