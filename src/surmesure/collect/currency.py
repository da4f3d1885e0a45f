"""One currency per store: orders in another are converted at import by a rate table, or refused.

The store's currency is that of the orders it already holds; an empty store takes the currency of
its first orders file (which must then hold one currency, or give rates for the others). A file's
lines in another currency are converted with ``rates`` (the mapping's ``rates:`` section or
``surmesure import orders FILE --rate GBP=1.17``): ``1 GBP = 1.17`` of the store's currency, so
``unit_price`` is multiplied by the rate and the line is stored in the store's currency. Without a
rate the whole file is refused, naming the currency and the setting, so that no total ever adds
pounds to euros. Lines without a currency are taken as written in the store's currency.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import InvalidInput
from surmesure.store import schema


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
