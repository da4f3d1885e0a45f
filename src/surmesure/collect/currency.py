"""One currency per store: orders in another are converted at import by a rate table, or refused.

The store's currency is that of the orders it already holds; an empty store takes the currency of
its first orders file (which must then hold one currency, or give rates for the others). A file's
lines in another currency are converted with ``rates`` (the mapping's ``rates:`` section or
``surmesure import orders FILE --rate GBP=1.17``): ``1 GBP = 1.17`` of the store's currency, so
``unit_price`` is multiplied by the rate and the line is stored in the store's currency. Without a
rate the whole file is refused, naming the currency and the setting, so that no total ever adds
pounds to euros. Lines without a currency are taken as written in the store's currency.

Orders collected as Segment ``Order Completed`` events follow the same rule with the rates of
the setting ``SURMESURE_RATES`` (``GBP=1.17,USD=0.92``): :func:`unconverted` is checked when the
event is collected, in the transaction that stores it, and an event whose currency has no rate
goes to the quarantine with a reason naming the setting (replayed once it is set:
``surmesure quarantine replay --kind events``); :func:`convert_purchase` converts the order the
event becomes, keeping the amount and currency as sent (``original_amount``,
``original_currency``). An empty store takes the currency of its first order without a rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.collect.ecommerce import ORDER_COMPLETED, Purchase
from surmesure.errors import InvalidInput
from surmesure.store import schema
from surmesure.unify.profile import decode_json

SETTING = "SURMESURE_RATES"
"""The setting that holds the rates of orders collected as events."""


def stored_currency(conn: Connection) -> str | None:
    """The currency of the stored orders (one, by the rule above), None for a store without."""
    query = (
        sa.select(schema.orders.c.currency).where(schema.orders.c.currency.is_not(None)).limit(1)
    )
    return conn.execute(query).scalar_one_or_none()


def stored_currencies(conn: Connection, most: int = 3) -> list[str]:
    """Up to ``most`` distinct currencies of the stored orders, sorted (one in a sound store)."""
    column = schema.orders.c.currency
    query = sa.select(column).where(column.is_not(None)).distinct().limit(most)
    return sorted(str(c) for c in conn.execute(query).scalars())


def single_currency(conn: Connection) -> str | None:
    """The store's currency for totals; several (orders written before this rule, or events in
    another currency) refuse, as a total would add them."""
    found = stored_currencies(conn)
    if len(found) > 1:
        raise InvalidInput(
            f"The stored orders are in {' and '.join(found)}: a total would add them.",
            field="currency",
            hint="re-import the orders of the other currencies with `--rate CUR=RATE` into a "
            "new store, or keep one store per currency",
        )
    return found[0] if found else None


def file_currencies(lines: pa.Table) -> list[str]:
    if "currency" not in lines.column_names:
        return []
    return sorted(c for c in pc.unique(lines.column("currency")).to_pylist() if c is not None)


def _refuse(store: str | None, missing: list[str]) -> InvalidInput:
    """The refusal of a file holding ``missing`` currencies that no rate converts."""
    first = missing[-1]
    if store:
        said = f"orders in {', '.join(missing)}, but the store's currency is {store}"
        into = store
    else:
        said = f"orders in {' and '.join(missing)} without rates, and the store has no orders yet"
        into = "the one left without a rate (the store's currency)"
    return InvalidInput(
        f"The file holds {said}: a store keeps one currency, so that no total adds two.",
        field="rates",
        hint=f"give a rate into {into}: `--rate {first}=RATE` (or `rates: {{{first}: RATE}}` in "
        f"the mapping), or import the file into another store",
    )


def convert(
    lines: pa.Table, store: str | None, rates: Mapping[str, float]
) -> tuple[pa.Table, str | None]:
    """``lines`` in the store's currency, and that currency (``store``, else the file's)."""
    found = file_currencies(lines)
    if store is None:
        unrated = [c for c in found if c not in rates]
        if len(unrated) > 1:
            raise _refuse(None, unrated)
        if not unrated and found:
            raise InvalidInput(
                f"Every currency of the file ({', '.join(found)}) has a rate, and the store "
                f"has no orders yet to say which currency the rates convert into.",
                field="rates",
                hint="import the orders of the store's own currency first, without a rate for it",
            )
        store = unrated[0] if unrated else None
    other = [c for c in found if c != store]
    missing = [c for c in other if c not in rates]
    if missing:
        raise _refuse(store, missing)
    if not other:
        return lines, store
    currency = lines.column("currency")
    rate = pa.array([rates.get(c, 1.0) if c else 1.0 for c in currency.to_pylist()], pa.float64())
    price = pc.multiply(lines.column("unit_price").cast(pa.float64()), rate)
    converted = pc.if_else(pc.is_null(currency), currency, pa.scalar(store, pa.string()))
    lines = lines.set_column(
        lines.column_names.index("unit_price"),
        "unit_price",
        price.cast(lines.schema.field("unit_price").type),
    )
    return (
        lines.set_column(lines.column_names.index("currency"), "currency", converted),
        store,
    )


def event_currency(message: Any) -> str | None:
    """The currency of an ``Order Completed`` track message (upper case), else ``None``."""
    if message.type != "track" or message.event != ORDER_COMPLETED:
        return None
    found = (message.properties or {}).get("currency")
    return None if found is None else str(found).upper()


def unconverted(
    conn: Connection, messages: Sequence[Any], rates: Mapping[str, float]
) -> dict[str, tuple[str, str]]:
    """By ``messageId``: the currency and the reason of each ``Order Completed`` of ``messages``
    (Segment messages) that no rate converts into the store's currency."""
    found = [(m.message_id, c) for m in messages if (c := event_currency(m)) is not None]
    if not found:
        return {}
    store = stored_currency(conn) or _pending_currency(conn)
    out: dict[str, tuple[str, str]] = {}
    for message_id, currency in found:
        if store is None and currency in rates:
            out[message_id] = (
                currency,
                f"properties.currency: the order is in {currency}, which {SETTING} converts, "
                "but the store holds no order yet to say into which currency; send an order "
                "in the store's own currency first, then replay the quarantine",
            )
        elif store is None:
            store = currency  # the first order without a rate sets the store's currency
        elif currency != store and currency not in rates:
            out[message_id] = (
                currency,
                f"properties.currency: the order is in {currency} but the store's currency is "
                f"{store}, and {SETTING} has no rate for {currency}; set one (e.g. "
                f"{SETTING}={currency}=RATE, one {currency} in {store}), then replay the "
                "quarantine",
            )
    return out


def _pending_currency(conn: Connection) -> str | None:
    """The currency of an ``Order Completed`` already stored whose order the dispatcher has not
    written yet (a store's first orders arrive as events a moment before they are orders)."""
    e = schema.events
    query = (
        sa.select(e.c.properties)
        .where(e.c.event == ORDER_COMPLETED, e.c.properties.is_not(None))
        .order_by(e.c.received_at)
        .limit(PENDING)
    )
    for (stored,) in conn.execute(query):
        properties = decode_json(stored)
        found = properties.get("currency") if isinstance(properties, dict) else None
        if isinstance(found, str):
            return found.upper()
    return None


PENDING = 100
"""Stored ``Order Completed`` events read for the currency of a store without orders yet."""


def convert_purchase(
    purchase: Purchase, store: str | None, rates: Mapping[str, float]
) -> tuple[Purchase, float | None, str | None] | None:
    """The purchase in the store's currency, with its amount and currency as sent when they
    were converted (else ``None``, ``None``); ``None`` when no rate converts it."""
    if purchase.currency is None or store is None or purchase.currency == store:
        return purchase, None, None
    rate = rates.get(purchase.currency)
    if rate is None:
        return None
    lines = tuple(replace(line, unit_price=line.unit_price * rate) for line in purchase.lines)
    converted = replace(purchase, total=purchase.total * rate, currency=store, lines=lines)
    return converted, purchase.total, purchase.currency
