"""Many people at once, as the serving cache reads them: one statement for a batch of people
(and the holders of the identifiers a decision names), with every row a decision reads of each,
decoded into the :class:`~surmesure.unify.reader.PersonRead` that
:func:`~surmesure.unify.reader.read_person` gives of one person."""

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
from surmesure.unify.reader import (
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
    """One statement for a batch: the root people among ``person_ids`` and those holding one
    of ``keys`` (``(kind, blind index)``), with every consent, preference, trait observation
    (sealed ones opened in one batch), segment membership, ``metrics`` row and exposure they
    have (no time bound: the caller filters at decision time); of the people ``named``, their
    identifiers and merges alone (those merged into them, and their own merge, if any: one
    named and absent from ``absorbed`` is merged into nobody)."""
    params: dict[str, Any] = {"pids": sorted(set(person_ids)), "named": sorted(set(named))}
    for i, (kind, value) in enumerate(keys):
        params[f"kind{i}"], params[f"value{i}"] = kind, value
    bound = not keys and len(params["pids"]) <= BOUND_IDS
    statement = _batch_statement(len(keys), tuple(sorted(set(metrics) & set(METRICS))), bound)
    rows = conn.execute(statement, params).all()
    opened = opened_rows(conn, rows)
    parts: dict[int, list[Any]] = {}
    identifiers: dict[tuple[str, str], int] = {}
    absorbed: dict[int, int] = {}
    roots: list[int] = []
    for position, row in enumerate(rows):
        tag, pid = row[0], int(row[9])
        if tag == "who":
            roots.append(pid)
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


def _shift(opened: dict[int, Any]) -> dict[int, Any]:
    """Positions after the ``who`` row :func:`read_people` puts first."""
    return {k + 1: v for k, v in opened.items()}


@lru_cache(maxsize=64)
def _batch_statement(key_count: int, metrics: tuple[str, ...], bound: bool) -> Any:
    """The statement of one shape of :func:`read_people`, built once."""
    types = {**ROW_TYPES, "p1": sa.BigInteger()}
    p, ident = schema.people, schema.identifiers
    named: Any = p.c.person_id.in_(sa.bindparam("pids", expanding=True))
    if key_count:
        holders = sa.select(ident.c.person_id).where(
            sa.or_(
                *(
                    sa.and_(
                        ident.c.kind == sa.bindparam(f"kind{i}", type_=sa.String()),
                        ident.c.value == sa.bindparam(f"value{i}", type_=sa.String()),
                    )
                    for i in range(key_count)
                )
            )
        )
        named = sa.or_(named, p.c.person_id.in_(holders))
    cte = sa.select(p.c.person_id).where(named, p.c.merged_into.is_(None)).cte("who")
    # a few ids asked (a miss), no identifier to look up: the ids are bound in every branch,
    # constants the store filters on first (DuckDB scans a whole table for a subquery's
    # values: 75 ms against 25 for one person of the demo world); an absorbed id among them
    # holds no rows (they follow their merge), so only roots' rows come back. Past a few ids
    # the subquery costs less than thousands of bound values in every branch.
    who: Any = sa.bindparam("pids", expanding=True) if bound else sa.select(cte.c.person_id)
    told: Any = sa.bindparam("named", expanding=True)

    def row(tag: str, pid: Any, **given: Any) -> list[Any]:
        out = [sa.literal(tag, types["tag"]).label("tag")]
        for name, kind in types.items():
            if name == "tag":
                continue
            value = pid if name == "p1" else given.get(name)
            cell = sa.cast(sa.null(), kind) if value is None else sa.cast(value, kind)
            out.append(cell.label(name))
        return out

    e = schema.exposures
    branches: list[Any] = [
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
        *record_branches(row, lambda person: person.in_(who), metrics),
        sa.select(*row("seen", e.c.person_id, k1=e.c.content_id, t1=sa.func.max(e.c.shown_at)))
        .where(e.c.person_id.in_(who))
        .group_by(e.c.person_id, e.c.content_id),
    ]
    return sa.union_all(*branches)
