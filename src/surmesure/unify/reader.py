"""One way to read a person: everything a decision or a segment needs of them, read in one
statement (:class:`PersonReader`: from the store, :class:`SqlPersonReader`, or from a cache of
people, the serving cache of :mod:`surmesure.decide.serving`).

One ``UNION ALL`` query, each branch tagged, finds the person (by an identifier, or by the id
given) and returns their marketing and personalization consents, their topic, frequency and
pause records, trait observations (sealed ones opened in one batch,
:mod:`surmesure.protect.atrest`, with the data keys the process keeps: the statement reads no
key, a key not kept is read by its node's primary key), segment memberships, the derived
metrics asked for and the exposure ledger of the given contents (:func:`read_person`); many
people at once, for the serving cache, with every exposure of each
(:func:`surmesure.unify.people_read.read_people`).
Decisions and campaign audiences (:mod:`surmesure.decide.audience`) and the snapshots segments
are evaluated on (:mod:`surmesure.segment.snapshot`) all read a person this way; the ledger's
rules are those of :func:`surmesure.decide.exposure.ledger`, so a decision from the store and
one from the serving cache make the same picks. Unify comes before every stage that reads a
person, and imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import normalize
from surmesure.domain.segments import METRICS, as_number
from surmesure.domain.traits import Observation
from surmesure.protect import atrest, blind
from surmesure.protect.consent import Record
from surmesure.protect.marketing import Preference
from surmesure.store import backends, schema
from surmesure.unify.profile import root_of

OPT_OUT_PURPOSE = "personalization"
#: the consent purposes a person read carries the records of
DECISION_PURPOSES = ("marketing", OPT_OUT_PURPOSE)

ROW_TYPES: dict[str, Any] = {
    "tag": sa.String(16),
    "k1": sa.String(320),
    "k2": sa.String(64),
    "k3": sa.Text(),
    "t1": sa.DateTime(),
    "t2": sa.DateTime(),
    "n1": sa.Float(precision=53),
    "i1": sa.BigInteger(),
    "b1": sa.LargeBinary(),
}


def _row(tag: str, **given: Any) -> list[Any]:
    out = [sa.literal(tag, ROW_TYPES["tag"]).label("tag")]
    for name, kind in ROW_TYPES.items():
        if name == "tag":
            continue
        value = given.get(name)
        cell = sa.cast(sa.null(), kind) if value is None else sa.cast(value, kind)
        out.append(cell.label(name))
    return out


@dataclass(frozen=True)
class PersonRead:
    """The raw rows of one person; ``person_id`` ``None`` when nobody is known."""

    person_id: int | None
    consents: list[Record] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    segments: frozenset[str] = frozenset()
    metrics: dict[str, list[tuple[str, datetime, datetime, Any]]] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)
    shown_before: set[str] = field(default_factory=set)
    preferences: list[Preference] = field(default_factory=list)

    def as_of(self, now: datetime, seen: dict[str, datetime], before: set[str]) -> PersonRead:
        """This read as a decision at ``now`` sees it (consents, preferences and observations
        recorded by then), with the exposures given."""
        return replace(
            self,
            consents=[c for c in self.consents if c.recorded_at <= now],
            preferences=[p for p in self.preferences if p.recorded_at <= now],
            observations=[o for o in self.observations if o.observed_at <= now],
            seen=seen,
            shown_before=before,
        )

    def latest_metrics_at(self, now: datetime) -> dict[str, tuple[Any, datetime]]:
        """Each metric's value in the latest derived row of ``now``'s day or before, with
        when that row was computed (as :func:`surmesure.decide.metrics.read_latest`)."""
        out: dict[str, tuple[Any, datetime]] = {}
        today = now.date()
        for name, rows in self.metrics.items():
            if len(rows) == 1:  # one derive run (a batch read keeps only the latest)
                if _day(rows[0][2]) <= today:
                    out[name] = (rows[0][3], rows[0][1])
                continue
            known = [r for r in rows if _day(r[2]) <= today]
            if known:
                latest = max(known, key=lambda r: (_day(r[2]), r[1]))
                out[name] = (latest[3], latest[1])
        return out

    def latest_metrics(self, now: datetime) -> dict[str, Any]:
        """The derived row with the latest ``as_of`` on or before ``now``'s day (then the
        latest computed), as segments read metrics."""
        out: dict[str, Any] = {}
        today = now.date()
        for name, rows in self.metrics.items():
            known = [r for r in rows if _day(r[2]) <= today]
            if known:
                value = max(known, key=lambda r: (_day(r[2]), r[1]))[3]
                if value is not None:
                    out[name] = value
        return out


class PersonReader(Protocol):
    """One way to read a person, whoever holds them (see the module)."""

    def person(
        self,
        person_id: int | None,
        keys: Sequence[tuple[str, str]],
        content_ids: Sequence[str],
        now: datetime,
    ) -> PersonRead:
        """The person ``person_id`` names (following its merges), or else the first of ``keys``
        (``(kind, blind index)``, :func:`identifier_keys`) that someone holds, as known at
        ``now`` (naive UTC): their rows, the ledger of ``content_ids`` among them. Nobody: a
        read whose ``person_id`` is ``None``, with ``shown_before`` still filled."""
        ...

    def read_many(
        self, person_ids: Sequence[int], now: datetime, traits: Collection[str] | None = None
    ) -> dict[int, PersonRead]:
        """A read of each of ``person_ids`` (as given, merges not followed) at ``now``, as a
        send's templates read them: without preferences nor ledger, and of the traits only
        those named in ``traits`` (``None``: all)."""
        ...


class HeldReader:
    """A :class:`PersonReader` over people held in memory: it finds the person
    (:meth:`person_id`), then reads what it holds of them (:meth:`read`)."""

    def person_id(self, person_id: int | None, keys: Sequence[tuple[str, str]]) -> int | None:
        raise NotImplementedError

    def read(self, person_id: int | None, content_ids: Iterable[str], now: datetime) -> PersonRead:
        raise NotImplementedError

    def person(
        self,
        person_id: int | None,
        keys: Sequence[tuple[str, str]],
        content_ids: Sequence[str],
        now: datetime,
    ) -> PersonRead:
        return self.read(self.person_id(person_id, keys), content_ids, now)

    def read_many(
        self, person_ids: Sequence[int], now: datetime, traits: Collection[str] | None = None
    ) -> dict[int, PersonRead]:
        out = {}
        for p in sorted(set(person_ids)):
            read = self.read(p, (), now)
            if read.person_id is None:
                read = PersonRead(p)
            kept = [o for o in read.observations if traits is None or o.name in traits]
            out[p] = PersonRead(p, read.consents, kept, read.segments, read.metrics)
        return out


@dataclass(frozen=True)
class SqlPersonReader:
    """A :class:`PersonReader` on the store, inside the caller's transaction ``conn``: one
    statement (:func:`read_person`; two when a person id must follow its merges), with the
    derived ``metrics`` columns given."""

    conn: Connection
    metrics: frozenset[str] = frozenset()

    def person(
        self,
        person_id: int | None,
        keys: Sequence[tuple[str, str]],
        content_ids: Sequence[str],
        now: datetime,
    ) -> PersonRead:
        root = root_of(self.conn, person_id) if person_id is not None else None
        return read_person(
            self.conn,
            person_id=root,
            keys=keys if person_id is None else (),
            now=now,
            metrics=self.metrics,
            content_ids=content_ids,
        )

    def read_many(
        self, person_ids: Sequence[int], now: datetime, traits: Collection[str] | None = None
    ) -> dict[int, PersonRead]:
        from surmesure.unify.batch import read_batch

        return read_batch(self.conn, person_ids, now, traits=traits, metrics=self.metrics)


def _day(value: Any) -> date:
    """A date read back from a union column: a date, or a timestamp at midnight."""
    return value.date() if isinstance(value, datetime) else value


def identifier_keys(
    anonymous_id: str | None, customer_id: str | None, region: str, index_key: bytes
) -> list[tuple[str, str]]:
    """The identifiers to look a person up by, in order of preference, as stored: ``(kind,
    blind index of the normalized value)`` under ``index_key`` (the store's)."""
    keys = []
    for kind, value in (("anonymous_id", anonymous_id), ("customer_id", customer_id)):
        if not value:
            continue
        try:
            keys.append((kind, blind.index_with(index_key, kind, normalize(kind, value, region))))
        except ValueError:
            continue
    return keys


def read_person(
    conn: Connection,
    *,
    person_id: int | None,
    keys: Sequence[tuple[str, str]],
    now: datetime,
    metrics: frozenset[str],
    content_ids: Sequence[str],
) -> PersonRead:
    """One statement (see the module). ``person_id`` is a root already resolved, else
    ``keys`` find the person."""
    params: dict[str, Any] = {"now": now}
    if person_id is not None:
        params["pid"] = person_id
    else:
        for i, (kind, value) in enumerate(keys):
            params[f"kind{i}"], params[f"value{i}"] = kind, value
    wanted = sorted(set(content_ids))
    if wanted:
        params["content_ids"] = wanted
    columns = tuple(sorted(set(metrics) & set(METRICS)))
    inline = columns if len(columns) <= INLINE_METRICS else ()
    statement = _statement(
        person_id is not None,
        0 if person_id is not None else len(keys),
        inline,
        bool(wanted),
    )
    rows = conn.execute(statement, params).all()
    read = collect_read(rows, opened_rows(conn, rows))
    if columns and not inline and read.person_id is not None:
        found = read_metrics(conn, columns, [read.person_id])
        read = replace(read, metrics=found.get(read.person_id, {}))
    return read


INLINE_METRICS = 4
"""Most metrics :func:`read_person` reads in its statement (a branch each); more (a segment's
snapshot reads them all) are read by a second statement, one row a day of computation."""


def opened_rows(conn: Connection, rows: Sequence[Any]) -> dict[int, Any]:
    """The value of each sealed trait row, by position in ``rows`` (one batch)."""
    at = [k for k, row in enumerate(rows) if row[0] == "trait" and row[8] is not None]
    if not at:
        return {}
    values = atrest.open_json(conn, [rows[k][7] for k in at], [bytes(rows[k][8]) for k in at])
    return dict(zip(at, values, strict=True))


def record_branches(
    row: Callable[..., list[Any]],
    whose: Callable[[Any], Any],
    metrics: Sequence[str],
    *,
    now: Any = None,
    purposes: bool = True,
) -> list[Any]:
    """The branches every read of people shares: their marketing and personalization
    consents, trait observations, segment memberships, preference records and ``metrics``
    rows. ``row(tag, person_column, **cells)`` makes a branch's tagged columns and
    ``whose(person_column)`` its condition on the person; with ``now``, records made after it
    are left out; without ``purposes``, the consents of every purpose come back (the caller
    keeps those of :data:`DECISION_PURPOSES`: a condition beside the person's makes DuckDB
    scan the table rather than probe its index of people)."""
    c, t, m = schema.consents, schema.traits, schema.segment_members
    pr, d = schema.preferences, schema.derived_metrics

    def until(column: Any) -> list[Any]:
        return [] if now is None else [column <= now]

    branches: list[Any] = [
        sa.select(
            *row(
                "consent",
                c.c.person_id,
                k1=c.c.consent_id,
                k2=c.c.purpose,
                k3=c.c.channel,
                t1=c.c.recorded_at,
                n1=c.c.granted.cast(sa.Integer),
            )
        ).where(
            whose(c.c.person_id),
            *([c.c.purpose.in_(DECISION_PURPOSES)] if purposes else []),
            *until(c.c.recorded_at),
        ),
        sa.select(
            *row(
                "trait",
                t.c.person_id,
                k1=t.c.name,
                k2=t.c.source,
                k3=t.c.value,
                t1=t.c.observed_at,
                n1=t.c.reliability,
                i1=t.c.node_id,
                b1=t.c.sealed,
            )
        ).where(whose(t.c.person_id), *until(t.c.observed_at)),
        sa.select(*row("member", m.c.person_id, k1=m.c.segment)).where(whose(m.c.person_id)),
        sa.select(
            *row(
                "preference",
                pr.c.person_id,
                k1=pr.c.preference_id,
                k2=pr.c.kind + ":" + pr.c.name,  # the kind never holds ':'
                k3=pr.c.value,
                t1=pr.c.recorded_at,
                t2=pr.c.until,
            )
        ).where(whose(pr.c.person_id), *until(pr.c.recorded_at)),
    ]
    for name in metrics:
        value = {"n1": d.c[name]} if METRICS[name] == "number" else {"k3": d.c[name]}
        branches.append(
            sa.select(
                *row(
                    "metric",
                    d.c.person_id,
                    k1=sa.literal(name),
                    k2=d.c.computed_on,
                    t1=d.c.computed_at,
                    t2=d.c.as_of,
                    **value,
                )
            ).where(whose(d.c.person_id))
        )
    return branches


@lru_cache(maxsize=256)
def _statement(by_id: bool, key_count: int, metrics: tuple[str, ...], ledger: bool) -> Any:
    """The statement of one shape of :func:`read_person`, built once (its parameters bound
    at each call), so its compiled form is cached too."""
    now = sa.bindparam("now", type_=sa.DateTime())
    ident = schema.identifiers
    if by_id:
        who: Any = sa.bindparam("pid", type_=sa.BigInteger())
    elif key_count:
        found = [
            sa.select(ident.c.person_id)
            .where(
                ident.c.kind == sa.bindparam(f"kind{i}", type_=sa.String()),
                ident.c.value == sa.bindparam(f"value{i}", type_=sa.String()),
            )
            .limit(1)
            .scalar_subquery()
            for i in range(key_count)
        ]
        who = found[0] if len(found) == 1 else sa.func.coalesce(*found)
    else:  # nobody to find; the ledger is still read
        who = sa.cast(sa.null(), sa.BigInteger())
    cte = sa.select(who.label("person_id")).cte("who")
    # a person id given is bound as such in every branch: a constant the store filters on
    # first (DuckDB scans a whole table for a subquery's value)
    pid = who if by_id else sa.select(cte.c.person_id).scalar_subquery()
    branches: list[Any] = [
        sa.select(*_row("who", i1=cte.c.person_id)),
        *record_branches(
            lambda tag, _person, **cells: _row(tag, **cells),
            lambda person: person == pid,
            metrics,
            now=now,
        ),
    ]
    if ledger:
        e = schema.exposures
        branches.append(
            sa.select(
                *_row(
                    "ledger",
                    k1=e.c.content_id,
                    t1=sa.func.max(e.c.shown_at).filter(e.c.person_id == pid),
                    i1=sa.func.count().filter(e.c.shown_at < now),
                )
            )
            .where(
                e.c.content_id.in_(sa.bindparam("content_ids", expanding=True)),
                e.c.shown_at <= now,
            )
            .group_by(e.c.content_id)
        )
    return sa.union_all(*branches)


def collect_read(rows: Sequence[Any], opened: dict[int, Any]) -> PersonRead:
    person_id: int | None = None
    consents: list[Record] = []
    preferences: list[Preference] = []
    observations: list[Observation] = []
    segments: set[str] = set()
    metrics: dict[str, list[tuple[str, datetime, datetime, Any]]] = {}
    seen: dict[str, datetime] = {}
    before: set[str] = set()
    for position, (tag, k1, k2, k3, t1, t2, n1, i1, *_) in enumerate(rows):
        if tag == "who":
            person_id = None if i1 is None else int(i1)
        elif tag == "consent":
            consents.append(Record(str(k2), str(k3), bool(n1), t1, str(k1)))
        elif tag == "preference":
            kind, _, name = str(k2).partition(":")
            preferences.append(Preference(kind, name, str(k3), t2, t1, str(k1)))
        elif tag == "trait":
            if position in opened and opened[position] is None:
                continue  # shredded
            value = (
                opened[position] if position in opened else None if k3 is None else orjson.loads(k3)
            )
            observations.append(Observation(str(k1), value, str(k2), t1, float(n1)))
        elif tag == "member":
            segments.add(str(k1))
        elif tag == "metric":
            number = METRICS[str(k1)] == "number"
            value = k3 if not number else (None if n1 is None else as_number(n1))
            metrics.setdefault(str(k1), []).append((str(k2), t1, t2, value))
        elif tag == "seen":  # the whole ledger of a person (the serving cache's read)
            seen[str(k1)] = t1
        elif tag == "ledger":
            if t1 is not None:
                seen[str(k1)] = t1
            if i1:
                before.add(str(k1))
    if person_id is None:
        return PersonRead(None, seen=seen, shown_before=before)
    return PersonRead(
        person_id,
        consents,
        observations,
        frozenset(segments),
        metrics,
        seen,
        before,
        preferences,
    )


MetricRows = dict[str, list[tuple[str, datetime, datetime, Any]]]
"""A person's rows of each derived metric: ``(computed_on, computed_at, as_of, value)``."""


def read_metrics(
    conn: Connection,
    metrics: Iterable[str],
    person_ids: Sequence[int] | None = None,
    *,
    span: tuple[int, int] | None = None,
) -> dict[int, MetricRows]:
    """Every row of the derived ``metrics`` (of ``person_ids``, when given; of the person ids
    from the first of ``span`` to its last, when given; else everyone's, in one pass), by
    person, as :attr:`PersonRead.metrics` holds them."""
    names = sorted(m for m in metrics if m in METRICS)
    found: dict[int, MetricRows] = {}
    if not names or (person_ids is not None and not person_ids):
        return found
    d = schema.derived_metrics
    query = sa.select(
        d.c.person_id, d.c.computed_on, d.c.computed_at, d.c.as_of, *(d.c[n] for n in names)
    )
    if person_ids is not None:
        query = query.where(d.c.person_id.in_(sorted(set(person_ids))))
    if span is not None:
        query = query.where(d.c.person_id.between(*span))
    for row in fetch_rows(conn, query):
        per = found.setdefault(int(row[0]), {})
        for name, value in zip(names, row[4:], strict=True):
            if METRICS[name] == "number":
                value = None if value is None else as_number(value)
            per.setdefault(name, []).append((str(row[1]), row[2], row[3], value))
    return found


def fetch_rows(conn: Connection, query: Any) -> list[Any]:
    """All rows of ``query``; on DuckDB straight from the driver, which builds the tuples in
    its own code (per-row processing would dominate a build). The queries of the view bind
    only names and constants (``read_metrics``: ids), so they are compiled with their values
    inline."""
    return backends.of(conn).fetch_literal(conn, query)
