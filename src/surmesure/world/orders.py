"""Orders of the demo world: who buys, when, where, what, and what comes back.

Each active customer buys as a Poisson process whose rate follows the retail calendar (drawn
by thinning at the busiest day's rate) and may lapse after each purchase (BG/NBD), so purchase
counts are heterogeneous and many customers buy once. A purchase happens online (the customer's
web appetite) or in a store (mostly the home store). Store tickets carry the loyalty card when
the customer shows it, else the customer id when the till looks them up, else nothing; walk-in
shoppers who are not customers add anonymous tickets. Baskets hold 1 to 6 lines drawn from the
favourite category, the complements of the previous line, or anywhere. Some lines come back
within a month as a return order (``<order id>-R``, negative quantities).

Everything is drawn as numbers first; text is made chunk by chunk while writing, so a world of
a million customers needs no more memory than its numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from surmesure.world import text
from surmesure.world.base import DAY, STORE_HOURS, WEB_HOURS, Calendar, Spec, time_of_day
from surmesure.world.catalog import CATEGORIES, CATEGORY_INDEX, Catalog, Stores
from surmesure.world.people import People, loyalty_cards

CHUNK_LINES = 400_000
WALK_IN_SHARE = 0.25


def purchase_times(spec: Spec, people: People, calendar: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """(customer index, seconds) of every purchase in the window, by thinning a Poisson
    process at the busiest day's rate and lapsing after each purchase."""
    rng = spec.rng("purchases")
    peak = float(calendar.demand.max())
    horizon = float(spec.days)
    start = np.maximum((people.joined - spec.start_ts) / DAY, 0.0)
    who_parts: list[np.ndarray] = []
    when_parts: list[np.ndarray] = []
    # customers who join during the window buy on the day they join
    joining = np.flatnonzero(people.joined >= spec.start_ts)
    who_parts.append(joining)
    when_parts.append(start[joining])
    active = np.flatnonzero(people.alive)
    active = active[~np.isin(active, joining) | (rng.random(len(active)) > people.lapse[active])]
    t = start[active]
    while len(active):
        t = t + rng.exponential(1.0 / (people.rate[active] * peak))
        inside = t < horizon
        active, t = active[inside], t[inside]
        day = t.astype(np.int64)
        bought = rng.random(len(active)) < calendar.demand[day] / peak
        who_parts.append(active[bought])
        when_parts.append(t[bought])
        stay = ~bought | (rng.random(len(active)) >= people.lapse[active])
        active, t = active[stay], t[stay]
    who = np.concatenate(who_parts)
    day = np.concatenate(when_parts).astype(np.int64)
    return who, spec.start_ts + day * DAY


@dataclass
class Orders:
    """Every order line of the window as numbers, sorted by time."""

    order: np.ndarray  # order number (shared by an order and its return)
    when: np.ndarray
    customer: np.ndarray  # -1 for walk-in shoppers
    ident: np.ndarray  # 0 none, 1 loyalty card, 2 customer id, 3 customer id + e-mail
    store: np.ndarray
    web: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    returned: np.ndarray
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def lines(self) -> int:
        return len(self.order)


def _categories(
    rng: np.random.Generator, favourite: np.ndarray, position: np.ndarray
) -> np.ndarray:
    """Category of each basket line (``position`` 0 first): the favourite, a complement of
    the previous line, or any category by its share of sales."""
    shares = np.array([c.share for c in CATEGORIES])
    shares = shares / shares.sum()
    complements = np.array(
        [[CATEGORY_INDEX[c.complements[i % len(c.complements)]] for i in range(2)]
         for c in CATEGORIES]
    )  # fmt: skip
    category = np.empty(len(position), np.int64)
    anywhere = rng.choice(len(CATEGORIES), size=len(position), p=shares)
    draw = rng.random(len(position))
    side = rng.integers(0, 2, size=len(position))
    for j in range(int(position.max()) + 1):
        at = np.flatnonzero(position == j)
        if j == 0:
            category[at] = np.where(draw[at] < 0.6, favourite[at], anywhere[at])
            continue
        previous = category[at - 1]
        category[at] = np.where(
            draw[at] < 0.35,
            complements[previous, side[at]],
            np.where(draw[at] < 0.7, favourite[at], anywhere[at]),
        )
    return category


def make_orders(
    spec: Spec,
    people: People,
    stores: Stores,
    catalog: Catalog,
    calendar: Calendar,
    card_holders: np.ndarray,
) -> Orders:
    rng = spec.rng("orders")
    who, day_ts = purchase_times(spec, people, calendar)
    web = rng.random(len(who)) < people.web_share[who]
    physical = stores.physical
    store = np.where(
        rng.random(len(who)) < 0.85, people.home_store[who], rng.integers(0, physical, len(who))
    )
    store = np.where(web, physical, store)
    shows_card = card_holders[who] & (rng.random(len(who)) < 0.8)
    looked_up = rng.random(len(who)) < 0.5
    ident = np.where(web, 3, np.where(shows_card, 1, np.where(looked_up, 2, 0)))
    # walk-in shoppers: anonymous tickets on busy days
    walk_ins = round(float(WALK_IN_SHARE * (~web).sum()))
    p_day = calendar.demand / calendar.demand.sum()
    walk_day = spec.start_ts + rng.choice(spec.days, size=walk_ins, p=p_day) * DAY
    who = np.concatenate([who, np.full(walk_ins, -1)])
    day_ts = np.concatenate([day_ts, walk_day])
    web = np.concatenate([web, np.zeros(walk_ins, bool)])
    store = np.concatenate([store, rng.integers(0, physical, walk_ins)])
    ident = np.concatenate([ident, np.zeros(walk_ins, np.int64)])
    when = day_ts + np.where(
        web,
        time_of_day(rng, len(web), WEB_HOURS),
        time_of_day(rng, len(web), STORE_HOURS),
    )
    sort = np.argsort(when, kind="stable")
    who, when, web, store, ident = who[sort], when[sort], web[sort], store[sort], ident[sort]
    n_orders = len(who)
    # basket lines
    size = 1 + np.minimum(rng.poisson(0.8, n_orders), 5)
    order = np.repeat(np.arange(n_orders), size)
    first_line = np.cumsum(size) - size
    position = np.arange(len(order)) - first_line[order]
    shares = np.array([c.share for c in CATEGORIES])
    favourite = np.where(
        who >= 0,
        people.favourite[np.maximum(who, 0)],
        rng.choice(len(CATEGORIES), size=n_orders, p=shares / shares.sum()),
    )
    category = _categories(rng, favourite[order], position)
    product = catalog.pick(rng, category)
    quantity = rng.choice(np.array([1, 2, 3]), size=len(order), p=[0.86, 0.1, 0.04])
    day = calendar.day_index(when[order], spec)
    discount = np.where(
        calendar.sales[day] & (rng.random(len(order)) < 0.5),
        0.7,
        np.where(calendar.black_friday[day] & (rng.random(len(order)) < 0.4), 0.8, 1.0),
    )
    price = np.round(catalog.price[product] * discount, 2)
    # returns: some lines come back 2 to 30 days later
    back = rng.random(len(order)) < np.where(web[order], 0.07, 0.025)
    back_when = when[order] + rng.integers(2 * DAY, 30 * DAY, size=len(order))
    back &= back_when < spec.end_ts
    r = np.flatnonzero(back)
    lines = Orders(
        order=np.concatenate([order, order[r]]),
        when=np.concatenate([when[order], back_when[r]]),
        customer=np.concatenate([who[order], who[order[r]]]),
        ident=np.concatenate([ident[order], ident[order[r]]]),
        store=np.concatenate([store[order], store[order[r]]]),
        web=np.concatenate([web[order], web[order[r]]]),
        product=np.concatenate([product, product[r]]),
        quantity=np.concatenate([quantity, -quantity[r]]),
        price=np.concatenate([price, price[r]]),
        returned=np.concatenate([np.zeros(len(order), bool), np.ones(len(r), bool)]),
    )
    # a return is one order per original order, dated by its first returned line
    first_back: dict[int, int] = {}
    for o, w in zip(order[r].tolist(), back_when[r].tolist(), strict=True):
        first_back.setdefault(o, w)
    is_ret = lines.returned
    lines.when[is_ret] = np.array([first_back[o] for o in lines.order[is_ret].tolist()], np.int64)
    sort = np.lexsort((lines.returned, lines.order, lines.when))
    for name in ("order", "when", "customer", "ident", "store", "web", "product", "quantity",
                 "price", "returned"):  # fmt: skip
        setattr(lines, name, getattr(lines, name)[sort])
    buyers = np.bincount(who[who >= 0], minlength=people.count)
    return_orders = len(first_back)
    lines.truth = {
        "orders": n_orders + return_orders,
        "order_lines": lines.lines,
        "returns": return_orders,
        "return_lines": len(r),
        "anonymous_orders": int((ident == 0).sum()) + len({o for o in first_back if ident[o] == 0}),
        "walk_in_orders": walk_ins,
        "web_orders": int(web.sum()),
        "buyers": int((buyers > 0).sum()),
        "repeat_buyers": int((buyers > 1).sum()),
    }
    return lines


def _account_email(people: People, customer: np.ndarray) -> pa.Array:
    """The address of the web account: the second address when the customer has one."""
    index = pa.array(customer)
    return text.where(
        people.has_alt_email[customer], people.alt_email.take(index), people.email.take(index)
    )


def order_chunks(
    orders: Orders, people: People, stores: Stores, catalog: Catalog
) -> Iterator[pa.Table]:
    """The order lines as tables of at most :data:`CHUNK_LINES` rows, in file order."""
    store_ids = pa.array(stores.ids, pa.string())
    for begin in range(0, orders.lines, CHUNK_LINES):
        s = slice(begin, begin + CHUNK_LINES)
        n = len(orders.order[s])
        customer = np.maximum(orders.customer[s], 0)
        ident = orders.ident[s]
        web = orders.web[s]
        returned = orders.returned[s]
        number = text.digits(orders.order[s] + 1, 9)
        order_id = text.join(text.where(web, "W", "T"), number)
        order_id = text.where(returned, text.join(order_id, "-R"), order_id)
        cid = people.customer_id.take(pa.array(customer))
        yield pa.table(
            {
                "order_id": order_id,
                "ordered_at": text.timestamps(orders.when[s]),
                "customer_id": text.null_where(ident < 2, cid),
                "loyalty_card": text.null_where(ident != 1, loyalty_cards(customer)),
                "email": text.null_where(ident != 3, _account_email(people, customer)),
                "product_code": catalog.codes.take(pa.array(orders.product[s])),
                "description": catalog.names.take(pa.array(orders.product[s])),
                "quantity": pa.array(orders.quantity[s], pa.int64()),
                "unit_price": pa.array(orders.price[s], pa.float64()),
                "store_id": store_ids.take(pa.array(orders.store[s])),
                "channel": text.where(web, "web", "store"),
                "country": pa.array(["FR"] * n, pa.string()),
                "currency": pa.array(["EUR"] * n, pa.string()),
                "is_return": pa.array(returned, pa.bool_()),
            }
        )
