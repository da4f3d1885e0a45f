"""Many people at once, as the serving cache reads them: one statement for a batch of people
(the holders of the identifiers a decision names found first, by the index of the identifiers'
values), with every row a decision reads of each, decoded into the
:class:`~surmesure.unify.reader.PersonRead` that :func:`~surmesure.unify.reader.read_person`
gives of one person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import LOOKUP_KINDS
from surmesure.domain.segments import METRICS
from surmesure.store import schema
from surmesure.store.among import ids_of
from surmesure.unify.reader import (
    DECISION_PURPOSES,
    ROW_TYPES,
    PersonRead,
    collect_read,
    opened_rows,
    record_branches,
)

BOUND_IDS = 16
"""Most ids :func:`read_people` binds in each branch rather than reading them from a
subquery."""


@dataclass
class PeopleRead:
    """What :func:`read_people` found: each root person's rows (every time, with the whole
    exposure ledger of the person in ``seen``), the lookup identifiers each holds, and the
    people merged into them."""

    reads: dict[int, PersonRead]
    identifiers: dict[tuple[str, str], int]
    absorbed: dict[int, int]  # an absorbed person id -> the root it was merged into


def read_people(
    conn: Connection,
    person_ids: Sequence[int],
    *,
    keys: Sequence[tuple[str, str]] = (),
    metrics: frozenset[str] = frozenset(),
    named: Sequence[int] = (),
) -> PeopleRead:
    """A batch read: the root people among ``person_ids`` and those holding one of ``keys``
    (``(kind, blind index)``, found first by a statement of their own), with every consent,
    preference, trait observation (sealed ones opened in one batch), segment membership,
    ``metrics`` row and exposure they have (no time bound: the caller filters at decision
    time), in one statement; of the people ``named``, their identifiers and merges alone
    (those merged into them, and their own merge, if any: one named and absent from
    ``absorbed`` is merged into nobody)."""
    wanted = set(person_ids) | set(_holders(conn, keys))
    told = set(named)
    params: dict[str, Any] = {"pids": sorted(wanted), "named": sorted(told)}
    bound = len(wanted | told) <= BOUND_IDS
    if bound:
        params["either"] = sorted(wanted | told)
    metrics_read = tuple(sorted(set(metrics) & set(METRICS)))
    statement = _batch_statement(metrics_read, bound, whole=bool(wanted))
    rows = [r for r in conn.execute(statement, params).all() if _kept(r)]
    opened = opened_rows(conn, rows)
    parts: dict[int, list[Any]] = {}
    identifiers: dict[tuple[str, str], int] = {}
    absorbed: dict[int, int] = {}
    roots: list[int] = []
    for position, row in enumerate(rows):
        tag, pid = row[0], int(row[9])
        if tag == "who":  # a root asked for; with its merge: one named, merged into another
            if row[7] is None:
                if pid in wanted:
                    roots.append(pid)
            elif pid in told:
                absorbed[pid] = int(row[7])
        elif tag == "ident":
            identifiers[(str(row[2]), str(row[1]))] = pid
        elif tag == "absorbed":
            absorbed[int(row[7])] = pid
        else:
            parts.setdefault(pid, []).append(position)
    reads = {}
    for pid in roots:
        mine = [rows[k] for k in parts.get(pid, ())]
        found = {n: opened[k] for n, k in enumerate(parts.get(pid, ())) if k in opened}
        reads[pid] = collect_read([("who", *[None] * 6, pid, None), *mine], _shift(found))
    return PeopleRead(reads, identifiers, absorbed)


def _holders(conn: Connection, keys: Sequence[tuple[str, str]]) -> list[int]:
    """The people holding one of ``keys``: the blind index names its kind, so the values
    alone find them (the index of ``value``; a filter on more than it would scan the table
    on DuckDB)."""
    if not keys:
        return []
    ident = schema.identifiers
    wanted = set(keys)
    found = conn.execute(
        sa.select(ident.c.kind, ident.c.value, ident.c.person_id).where(
            ident.c.value.in_(sorted({value for _, value in keys}))
        )
    ).all()
    return [int(pid) for kind, value, pid in found if (kind, value) in wanted]


def _kept(row: Any) -> bool:
    """Whether a row of the batch statement is kept: the statement filters on the person
    alone (see :func:`_batch_statement`), the kinds and purposes a decision reads are kept
    here."""
    tag = row[0]
    if tag == "ident":
        return row[2] in LOOKUP_KINDS
    if tag == "consent":
        return row[2] in DECISION_PURPOSES
    return True


def _shift(opened: dict[int, Any]) -> dict[int, Any]:
    """Positions after the ``who`` row :func:`read_people` puts first."""
    return {k + 1: v for k, v in opened.items()}


@lru_cache(maxsize=64)
def _batch_statement(metrics: tuple[str, ...], bound: bool, *, whole: bool) -> Any:
    """The statement of one shape of :func:`read_people`, built once; without ``whole``
    (nobody is read whole), its branches of identifiers and merges alone.

    A few people (a miss, a change told): their ids are bound in every branch, and each
    branch filters on its person column alone, which DuckDB answers from that column's index
    (a subquery's values, or a second condition beside them, make it scan the whole table:
    some 100 ms a branch for a 1,000,000-customer world). Past a few ids, a subquery costs
    less than thousands of bound values in every branch, and the ids are bound as two lists
    (:func:`~surmesure.store.among.ids_of`): a parameter each made a change told of 1,000
    people cost 40 ms of CPU on DuckDB, 10 ms as lists.

    A change told of people the serving cache does not hold (most of those a round of
    collection names) reads no row of theirs but their identifiers and merges: the other
    branches cost the statement a third of its time for nothing."""
    types = {**ROW_TYPES, "p1": sa.BigInteger()}
    p, ident, e = schema.people, schema.identifiers, schema.exposures

    def row(tag: str, pid: Any, **given: Any) -> list[Any]:
        out = [sa.literal(tag, types["tag"]).label("tag")]
        for name, kind in types.items():
            if name == "tag":
                continue
            value = pid if name == "p1" else given.get(name)
            cell = sa.cast(sa.null(), kind) if value is None else sa.cast(value, kind)
            out.append(cell.label(name))
        return out

    if bound:
        who: Any = sa.bindparam("pids", expanding=True)
        either: Any = sa.bindparam("either", expanding=True)
        people = [
            sa.select(*row("who", p.c.person_id, i1=p.c.merged_into)).where(
                p.c.person_id.in_(either)
            ),
            sa.select(*row("ident", ident.c.person_id, k1=ident.c.value, k2=ident.c.kind)).where(
                ident.c.person_id.in_(either)
            ),
            sa.select(*row("absorbed", p.c.merged_into, i1=p.c.person_id)).where(
                p.c.merged_into.in_(either)
            ),
        ]
    else:
        told = ids_of("named")
        named = p.c.person_id.in_(ids_of("pids"))
        cte = sa.select(p.c.person_id).where(named, p.c.merged_into.is_(None)).cte("who")
        who = sa.select(cte.c.person_id)
        people = [
            sa.select(*row("who", cte.c.person_id)),
            sa.select(*row("ident", ident.c.person_id, k1=ident.c.value, k2=ident.c.kind)).where(
                sa.or_(ident.c.person_id.in_(who), ident.c.person_id.in_(told)),
                ident.c.kind.in_(LOOKUP_KINDS),
            ),
            sa.select(*row("absorbed", p.c.merged_into, i1=p.c.person_id)).where(
                sa.or_(
                    p.c.merged_into.in_(who),
                    p.c.merged_into.in_(told),
                    sa.and_(p.c.person_id.in_(told), p.c.merged_into.is_not(None)),
                )
            ),
        ]
    if not whole:
        return sa.union_all(*people)
    branches: list[Any] = [
        *people,
        *record_branches(row, lambda person: person.in_(who), metrics, purposes=not bound),
        sa.select(*row("seen", e.c.person_id, k1=e.c.content_id, t1=sa.func.max(e.c.shown_at)))
        .where(e.c.person_id.in_(who))
        .group_by(e.c.person_id, e.c.content_id),
    ]
    return sa.union_all(*branches)
