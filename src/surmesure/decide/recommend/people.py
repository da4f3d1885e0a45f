"""What recommendations need to know about people, read as of a date: what they bought,
their home store (trait ``home_store_id``, resolved by reliability and recency) and their RFM
segment. One person at a time for a live call, everyone at once for a batch."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import overload

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.engine import Connection

from surmesure.decide.recommend import popular
from surmesure.decide.recommend.learned import Counts, IdRows
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


class People(Mapping[int, PersonData]):
    """Everyone's :class:`PersonData` held in arrays, a person's read made when asked for.

    A million people with a dozen purchases each would be some 12 million tuples and times as
    Python objects (2 GB, and as many objects for the collector to walk); here they are a few
    arrays: the sorted person ids, where each person's purchases start, the purchases' times
    (microseconds since 1970, naive UTC) and product numbers, home store and segment numbers.
    A person's purchases come in order of time, then product code."""

    __slots__ = (
        "at", "code", "codes", "home", "ids", "places", "rows", "segment", "segments", "starts",
    )  # fmt: skip

    def __init__(
        self,
        ids: NDArray[np.int64],
        starts: NDArray[np.int64],
        at: NDArray[np.int64],
        code: NDArray[np.int32],
        codes: tuple[str, ...],
        home: NDArray[np.int32],
        places: tuple[str, ...],
        segment: NDArray[np.int32],
        segments: tuple[str, ...],
    ) -> None:
        self.ids, self.starts, self.at, self.code, self.codes = ids, starts, at, code, codes
        self.home, self.places, self.segment, self.segments = home, places, segment, segments

        self.rows = IdRows(ids)

    def __getitem__(self, person_id: int) -> PersonData:
        return self.at_row(self.rows[person_id])

    def __contains__(self, person_id: object) -> bool:
        return person_id in self.rows

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids.tolist())

    def __len__(self) -> int:
        return len(self.ids)

    def at_row(self, row: int) -> PersonData:
        """The person at ``row`` of :attr:`ids`."""
        start, end = int(self.starts[row]), int(self.starts[row + 1])
        codes = self.codes
        purchases = tuple(
            zip(
                self.at[start:end].astype("datetime64[us]").tolist(),
                [codes[k] for k in self.code[start:end].tolist()],
                strict=True,
            )
        )
        home, segment = int(self.home[row]), int(self.segment[row])
        return PersonData(
            int(self.ids[row]),
            purchases,
            None if home < 0 else self.places[home],
            None if segment < 0 else self.segments[segment],
        )

    def chosen(self, person_ids: Collection[int] | None = None) -> Rows:
        """The people of ``person_ids`` (default: everyone) this mapping holds, in the order of
        their ids, as a sequence whose reads are made when asked for."""
        if person_ids is None:
            return Rows(self, np.arange(len(self.ids)))
        wanted = np.fromiter(person_ids, np.int64, len(person_ids))
        return Rows(self, np.flatnonzero(np.isin(self.ids, wanted)))

    def owners(self) -> np.ndarray:
        """The row of :attr:`ids` each purchase belongs to."""
        return np.repeat(np.arange(len(self.ids), dtype=np.int64), np.diff(self.starts))

    def counts(self) -> Counts:
        """How many times each person bought each product, a product counting once per order
        time: what :func:`~surmesure.decide.recommend.learned.fit` fits on."""
        owner = self.owners()
        # a person's purchases are sorted by time then product: the same product at the same
        # time comes next to itself
        fresh = np.ones(len(owner), dtype=np.bool_)
        fresh[1:] = (
            (owner[1:] != owner[:-1]) | (self.at[1:] != self.at[:-1])
            | (self.code[1:] != self.code[:-1])
        )  # fmt: skip
        used = np.unique(self.code[fresh])
        names = sorted(range(len(used)), key=lambda i: self.codes[int(used[i])])
        column_of = np.zeros(len(self.codes), dtype=np.int64)
        column_of[used[names]] = np.arange(len(names))
        width = max(len(names), 1)
        pairs, count = np.unique(
            owner[fresh] * width + column_of[self.code[fresh]], return_counts=True
        )
        rows, row = np.unique(pairs // width, return_inverse=True)
        return Counts(
            self.ids[rows],
            tuple(self.codes[int(used[i])] for i in names),
            row.astype(np.int64),
            pairs % width,
            count.astype(np.float32),
        )

    @property
    def bytes(self) -> int:
        """What the arrays hold, in bytes (the names' tuples aside)."""
        arrays = (self.ids, self.starts, self.at, self.code, self.home, self.segment)
        return sum(a.nbytes for a in arrays)


class Rows(Sequence[PersonData]):
    """Some rows of a :class:`People`, each person's read made when asked for (a slice gives
    a list: a block of people read at once)."""

    __slots__ = ("people", "rows")

    def __init__(self, people: People, rows: NDArray[np.int64]) -> None:
        self.people, self.rows = people, rows

    @property
    def ids(self) -> list[int]:
        """The person ids, in order."""
        return list(self.people.ids[self.rows].tolist())

    @overload
    def __getitem__(self, index: int) -> PersonData: ...
    @overload
    def __getitem__(self, index: slice) -> list[PersonData]: ...
    def __getitem__(self, index: int | slice) -> PersonData | list[PersonData]:
        if isinstance(index, slice):
            return [self.people.at_row(r) for r in self.rows[index].tolist()]
        return self.people.at_row(int(self.rows[index]))

    def __len__(self) -> int:
        return len(self.rows)


def chosen(
    people: Mapping[int, PersonData], person_ids: Collection[int] | None = None
) -> tuple[list[int], Sequence[PersonData]]:
    """The ids and reads of the people of ``person_ids`` (default: everyone) ``people`` holds,
    by id; from a :class:`People`, each read is made when asked for."""
    if isinstance(people, People):
        rows = people.chosen(person_ids)
        return rows.ids, rows
    ids = sorted(people if person_ids is None else set(person_ids) & people.keys())
    return ids, [people[p] for p in ids]


def everyone(conn: Connection, as_of: datetime) -> People:
    """Every person with an identifier, as of ``as_of``, by person id."""
    import pyarrow.compute as pc

    ids = np.unique(
        Store.of(conn).backend.fetch_ids(
            conn,
            "SELECT DISTINCT i.person_id FROM identifiers i "
            "JOIN people p ON p.person_id = i.person_id WHERE p.merged_into IS NULL",
        )
    )
    o, line = schema.orders, schema.order_lines
    query = (
        sa.select(o.c.person_id, o.c.ordered_at, line.c.product_code)
        .join_from(o, line, line.c.order_id == o.c.order_id)
        .where(
            sa.not_(o.c.is_return),
            sa.not_(line.c.is_fee),
            line.c.quantity > 0,
            o.c.ordered_at < as_of,
            o.c.person_id.is_not(None),
        )
        .order_by(o.c.person_id, o.c.ordered_at, line.c.product_code)
    )
    table = Store.of(conn).backend.fetch_arrow(conn, query)
    if table.num_rows:
        owner = np.asarray(table.column("person_id").to_numpy(), dtype=np.int64)
        at = table.column("ordered_at").cast("timestamp[us]").cast("int64").to_numpy()
        encoded = pc.dictionary_encode(table.column("product_code")).combine_chunks()
        code = np.asarray(encoded.indices.to_numpy(), dtype=np.int32)
        codes = tuple(str(c) for c in encoded.dictionary.to_pylist())
        kept = np.isin(owner, ids)
        owner, at, code = owner[kept], np.asarray(at[kept], dtype=np.int64), code[kept]
    else:
        owner = at = np.zeros(0, np.int64)
        code, codes = np.zeros(0, np.int32), ()
    del table
    starts = np.searchsorted(owner, ids, side="left").astype(np.int64)
    starts = np.append(starts, len(owner))
    home, places = _numbered(ids, home_stores(conn, as_of))
    segment, segments = _numbered(ids, popular.segments(conn, as_of))
    return People(ids, starts, at, code, codes, home, places, segment, segments)


def _numbered(
    ids: NDArray[np.int64], values: Mapping[int, str]
) -> tuple[NDArray[np.int32], tuple[str, ...]]:
    """Each id's value as a number into the returned names (-1: none)."""
    names = tuple(sorted(set(values.values())))
    number = {name: i for i, name in enumerate(names)}
    found = (number[values[p]] if p in values else -1 for p in ids.tolist())
    out = np.fromiter(found, np.int32, len(ids))
    return out, names


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
