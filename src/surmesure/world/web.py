"""Web browsing of the demo world, as Segment-spec messages (one JSON object per line).

Visitors browse from devices, each with its own ``anonymousId``: customers from zero to two
devices, plus devices of visitors who never become known. A session is a few ``page`` calls
and, often, ``track`` calls (Product Viewed, Product Added); a customer who logs in sends an
``identify`` call that ties the device's anonymousId to the customer id (``userId``) and
e-mail (``traits.email``). The shop's server signs the logged-in customer's id
(``integrations.surmesure.userHash``, with :data:`IDENTITY_SECRET`), as a shop that uses
identity verification does: the web is a low-trust source, and only a verified ``userId`` links
a device to a customer (:mod:`surmesure.unify.trust`). Every message has a unique
``messageId`` and an ISO 8601 UTC ``timestamp``. Devices never identified stay anonymous.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from surmesure.unify.trust import sign
from surmesure.world import text
from surmesure.world.base import DAY, WEB_HOURS, Calendar, Spec, time_of_day
from surmesure.world.catalog import CATEGORIES, Catalog
from surmesure.world.people import People

SHOP_URL = "https://www.exemple-boutique.fr"
CHUNK_EVENTS = 100_000
PAGES = (
    ("Accueil", "/"),
    ("Nouveautés", "/nouveautes"),
    ("Magasins", "/magasins"),
    ("Panier", "/panier"),
    *((c.name, f"/{c.code}") for c in CATEGORIES),
)
CONTEXT = '"context":{"library":{"name":"analytics.js","version":"5.2.0"},"locale":"fr-FR"}'
PAGE, VIEWED, ADDED, IDENTIFY = 0, 1, 2, 3
IDENTITY_SECRET = "demo-identity-secret"
"""The demo shop's identity-verification secret; ``surmesure demo`` imports its web events with
it (``SURMESURE_IDENTITY_SECRET`` for ``surmesure import events``)."""


@dataclass
class Web:
    """Every message as numbers, sorted by time."""

    kind: np.ndarray
    when_ms: np.ndarray
    device: np.ndarray
    detail: np.ndarray  # page index or product index
    customer: np.ndarray  # owner of the device, -1 for unknown visitors
    anonymous_ids: list[str]
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.kind)


def make_web(spec: Spec, people: People, catalog: Catalog, calendar: Calendar) -> Web:
    rng = spec.rng("web")
    n = people.count
    per_customer = rng.choice(3, size=n, p=[0.35, 0.45, 0.2])
    owner = np.concatenate([np.repeat(np.arange(n), per_customer), np.full(round(0.5 * n), -1)])
    devices = len(owner)
    known = np.flatnonzero(owner >= 0)
    unknown = np.flatnonzero(owner < 0)
    sessions = round(0.5 * n)
    device = np.where(
        rng.random(sessions) < 0.6,
        known[rng.integers(0, len(known), sessions)],
        unknown[rng.integers(0, len(unknown), sessions)],
    )
    p_day = calendar.demand / calendar.demand.sum()
    start = spec.start_ts + rng.choice(spec.days, size=sessions, p=p_day) * DAY
    start = (start + time_of_day(rng, sessions, WEB_HOURS)) * 1000
    pages = 1 + np.minimum(rng.poisson(1.0, sessions), 7)
    viewed = rng.random(sessions) < 0.55
    added = viewed & (rng.random(sessions) < 0.3)
    first_visit = np.zeros(sessions, bool)
    _, first = np.unique(device, return_index=True)
    first_visit[first] = True
    identify = (owner[device] >= 0) & (rng.random(sessions) < np.where(first_visit, 0.7, 0.2))
    # messages of a session: identify first (a login), pages, then product events
    count = identify + pages + viewed + added
    session = np.repeat(np.arange(sessions), count)
    step = np.arange(len(session)) - np.repeat(np.cumsum(count) - count, count)
    offset = step - identify[session]
    kind = np.where(
        step < identify[session],
        IDENTIFY,
        np.where(
            offset < pages[session],
            PAGE,
            np.where(offset == pages[session], VIEWED, ADDED),
        ),
    )
    gaps = rng.integers(3_000, 90_000, len(session))
    cum = np.cumsum(gaps)
    base = np.repeat(cum[np.cumsum(count) - count] - gaps[np.cumsum(count) - count], count)
    when_ms = start[session] + cum - base
    product = catalog.pick(rng, people.favourite[np.maximum(owner[device], 0)][session])
    product = np.where(kind == ADDED, np.roll(product, 1), product)
    detail = np.where(kind == PAGE, rng.integers(0, len(PAGES), len(session)), product)
    inside = when_ms < spec.end_ts * 1000
    order = np.argsort(when_ms[inside], kind="stable")
    kind, when_ms, detail = kind[inside][order], when_ms[inside][order], detail[inside][order]
    dev = device[session][inside][order]
    identified = np.unique(dev[kind == IDENTIFY])
    used = np.unique(dev)
    web = Web(kind, when_ms, dev, detail, owner[dev], text.hex_ids(rng, devices))
    web.truth = {
        "messages": len(kind),
        "devices": len(used),
        "identified_devices": len(identified),
        "anonymous_devices": len(used) - len(identified),
        "by_type": {
            "page": int((kind == PAGE).sum()),
            "track": int(((kind == VIEWED) | (kind == ADDED)).sum()),
            "identify": int((kind == IDENTIFY).sum()),
        },
    }
    return web


def _json_text(values: pa.Array) -> pa.Array:
    return text.join('"', values, '"')


def message_lines(spec: Spec, web: Web, people: People, catalog: Catalog) -> Iterator[pa.Array]:
    """The messages as JSON text lines (each ending with a newline), in chunks, in time
    order."""
    rng = spec.rng("web-ids")
    anonymous = pa.array(web.anonymous_ids, pa.string())
    page_names = [name for name, _ in PAGES]
    page_paths = [path for _, path in PAGES]
    categories = pa.array([c.code for c in CATEGORIES], pa.string())
    prices = pa.array(catalog.price, pa.float64()).cast(pa.string())
    hashes = pa.array(
        [sign(IDENTITY_SECRET, c) for c in people.customer_id.to_pylist()], pa.string()
    )
    for begin in range(0, web.count, CHUNK_EVENTS):
        s = slice(begin, begin + CHUNK_EVENTS)
        kind, detail = web.kind[s], web.detail[s]
        m = len(kind)
        head = text.join(
            '{"messageId":"',
            pa.array(text.hex_ids(rng, m), pa.string()),
            '","anonymousId":"',
            anonymous.take(pa.array(web.device[s])),
            '","timestamp":"',
            text.iso_utc(web.when_ms[s]),
            '",',
            CONTEXT,
            ",",
        )
        page = np.minimum(detail, len(PAGES) - 1)
        page_json = text.join(
            '"type":"page","name":"',
            text.words(page_names, page),
            '","properties":{"path":"',
            text.words(page_paths, page),
            '","url":"',
            SHOP_URL,
            text.words(page_paths, page),
            '"}}',
        )
        product = pa.array(np.where(kind == PAGE, 0, detail))
        track_json = text.join(
            '"type":"track","event":"',
            text.where(kind == ADDED, "Product Added", "Product Viewed"),
            '","properties":{"product_id":"',
            catalog.codes.take(product),
            '","name":"',
            catalog.names.take(product),
            '","category":"',
            categories.take(pa.array(catalog.category)).take(product),
            '","price":',
            prices.take(product),
            ',"currency":"EUR"}}',
        )
        customer = np.maximum(web.customer[s], 0)
        email = people.email.take(pa.array(customer))
        traits = pc.if_else(email.is_valid(), text.join('{"email":"', email, '"}'), pa.scalar("{}"))
        identify_json = text.join(
            '"type":"identify","userId":"',
            people.customer_id.take(pa.array(customer)),
            '","integrations":{"surmesure":{"userHash":"',
            hashes.take(pa.array(customer)),
            '"}},"traits":',
            traits,
            "}",
        )
        body = pc.choose(
            pa.array(np.where(kind == PAGE, 0, np.where(kind == IDENTIFY, 2, 1)), pa.int8()),
            page_json,
            track_json,
            identify_json,
        )
        yield text.join(head, body, "\n")
