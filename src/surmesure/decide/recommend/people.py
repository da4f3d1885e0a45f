"""What recommendations need to know about people, read as of a date: what they bought,
their home store (trait ``home_store_id``, resolved by reliability and recency) and their RFM
segment. One person at a time for a live call, everyone at once for a batch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.recommend import popular
from surmesure.domain.traits import Observation, resolve
from surmesure.protect import blind
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json

HOME_STORE = "home_store_id"

PURCHASES_SQL = """
SELECT o.person_id, o.ordered_at, l.product_code
FROM orders o JOIN order_lines l ON l.order_id = o.order_id
WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 AND o.ordered_at < :as_of
  AND o.person_id {person}
"""


@dataclass(frozen=True)
class PersonData:
    """A person's purchases ``(ordered_at, product_code)``, home store and RFM segment."""

    person_id: int
    purchases: tuple[tuple[datetime, str], ...]
    home_store: str | None
    segment: str | None


def person(conn: Connection, person_id: int, as_of: datetime) -> PersonData:
    """One person as of ``as_of`` (nothing at or after it counts)."""
    rows = conn.execute(
        sa.text(PURCHASES_SQL.format(person="= :person_id")),
        {"as_of": as_of, "person_id": person_id},
    )
    purchases = tuple((at, str(code)) for _, at, code in rows)
    return PersonData(
        person_id,
        purchases,
        home_stores(conn, as_of, person_id).get(person_id),
        popular.segment_of(conn, person_id, as_of),
    )


def everyone(conn: Connection, as_of: datetime) -> dict[int, PersonData]:
    """Every person with an identifier, as of ``as_of``, by person id."""
    ident = schema.identifiers
    people = schema.people
    ids = sorted(
        int(r[0])
        for r in conn.execute(
            sa.select(ident.c.person_id)
            .distinct()
            .join(people, people.c.person_id == ident.c.person_id)
            .where(people.c.merged_into.is_(None))
        )
    )
    purchases: dict[int, list[tuple[datetime, str]]] = {}
    rows = conn.execute(
        sa.text(PURCHASES_SQL.format(person="IS NOT NULL")), {"as_of": as_of}
    ).fetchall()  # at once: row by row, the fetching costs more than the rest
    for pid, at, code in rows:
        purchases.setdefault(int(pid), []).append((at, str(code)))
    homes = home_stores(conn, as_of)
    segments = popular.segments(conn, as_of)
    return {
        pid: PersonData(pid, tuple(purchases.get(pid, ())), homes.get(pid), segments.get(pid))
        for pid in ids
    }


def customer_ids(store: Store, conn: Connection) -> Mapping[int, str]:
    """The (smallest) ``customer_id`` identifier of each person who has one, opened from its
    sealed value (one batch)."""
    ident = schema.identifiers
    rows = conn.execute(
        sa.select(ident.c.person_id, ident.c.node_id, ident.c.sealed).where(
            ident.c.kind == "customer_id"
        )
    ).fetchall()
    values = blind.ring(store).open_many(
        conn,
        [int(r.node_id) for r in rows],
        [None if r.sealed is None else bytes(r.sealed) for r in rows],
    )
    out: dict[int, str] = {}
    for row, value in zip(rows, values, strict=True):
        pid = int(row.person_id)
        if value is not None and (pid not in out or value < out[pid]):
            out[pid] = value
    return out


def home_stores(conn: Connection, as_of: datetime, person_id: int | None = None) -> dict[int, str]:
    """The resolved ``home_store_id`` trait at ``as_of`` (observations before it only)."""
    t = schema.traits
    query = sa.select(t.c.person_id, t.c.value, t.c.source, t.c.observed_at, t.c.reliability).where(
        t.c.name == HOME_STORE, t.c.observed_at < as_of, t.c.person_id.is_not(None)
    )
    if person_id is not None:
        query = query.where(t.c.person_id == person_id)
    observations: dict[int, list[Observation]] = {}
    for pid, value, source, observed_at, reliability in conn.execute(query):
        observations.setdefault(int(pid), []).append(
            Observation(HOME_STORE, decode_json(value), source, observed_at, float(reliability))
        )
    out: dict[int, str] = {}
    half_life = Store.of(conn).settings.trait_half_life_days
    for pid, obs in observations.items():
        home = home_store_of(obs, as_of, half_life)
        if home is not None:
            out[pid] = home
    return out


def home_store_of(
    observations: Iterable[Observation], as_of: datetime, half_life_days: float
) -> str | None:
    """The resolved ``home_store_id`` among one person's observations (any trait; those at
    or after ``as_of`` do not count), reliability halving every ``half_life_days``."""
    wanted = [o for o in observations if o.name == HOME_STORE and o.observed_at < as_of]
    resolved = resolve(wanted, as_of, half_life_days).get(HOME_STORE)
    return None if resolved is None or resolved.value is None else str(resolved.value)
