"""Many people at once as a send's templates read them (``SqlPersonReader.read_many`` of
:mod:`surmesure.unify.reader`): a statement per kind of row for the whole batch, not one per
person.

Each person gets what :func:`~surmesure.unify.reader.read_person` reads of them at ``now``
except their preference records and exposure ledger (campaign content chooses no offer block
and keeps no ledger): marketing and personalization consents, trait observations (only the
``traits`` named, when given; sealed ones opened in one batch, shredded ones left out), segment
memberships and the rows of the derived ``metrics`` columns given, of ``now``'s day or before
(those :meth:`~surmesure.unify.reader.PersonRead.latest_metrics_at` picks from).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.segments import METRICS, as_number
from surmesure.domain.traits import Observation
from surmesure.protect import atrest
from surmesure.protect.consent import Record
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.unify.profile import decode_json
from surmesure.unify.reader import DECISION_PURPOSES, MetricRows, PersonRead


def read_batch(
    conn: Connection,
    person_ids: Sequence[int],
    now: datetime,
    *,
    traits: Collection[str] | None,
    metrics: Collection[str],
) -> dict[int, PersonRead]:
    """A read of each of ``person_ids`` (as given: absorbed ids are not followed), known at
    ``now``; ``traits``: the trait names to read (``None``: all)."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    k, t, m = schema.consents, schema.traits, schema.segment_members
    consents: dict[int, list[Record]] = {p: [] for p in ids}
    columns = (k.c.person_id, k.c.purpose, k.c.channel, k.c.granted, k.c.recorded_at)
    for c in conn.execute(
        sa.select(*columns, k.c.consent_id).where(
            among_ids(k.c.person_id, ids), k.c.purpose.in_(DECISION_PURPOSES)
        )
    ):
        consents[int(c[0])].append(Record(str(c[1]), str(c[2]), bool(c[3]), c[4], str(c[5])))
    query = sa.select(
        t.c.person_id, t.c.name, t.c.value, t.c.source, t.c.observed_at, t.c.reliability,
        t.c.node_id, t.c.sealed,
    ).where(among_ids(t.c.person_id, ids), t.c.observed_at <= now)  # fmt: skip
    if traits is not None:
        query = query.where(t.c.name.in_(sorted(traits)))
    rows = conn.execute(query).all()
    sealed = [r for r in rows if r.sealed is not None]
    opened = atrest.open_json(conn, [r.node_id for r in sealed], [r.sealed for r in sealed])
    values = dict(zip((id(r) for r in sealed), opened, strict=True))
    observed: dict[int, list[Observation]] = {p: [] for p in ids}
    for r in rows:
        if r.sealed is not None and values[id(r)] is None:
            continue  # shredded: the person's key is gone
        value = values[id(r)] if r.sealed is not None else decode_json(r.value)
        observed[int(r.person_id)].append(
            Observation(r.name, value, r.source, r.observed_at, float(r.reliability))
        )
    members: dict[int, set[str]] = {p: set() for p in ids}
    for person, segment in conn.execute(
        sa.select(m.c.person_id, m.c.segment).where(among_ids(m.c.person_id, ids))
    ):
        members[int(person)].add(str(segment))
    rows_of = _metrics(conn, metrics, ids, now)
    return {
        p: PersonRead(p, consents[p], observed[p], frozenset(members[p]), rows_of.get(p, {}))
        for p in ids
    }


def _metrics(
    conn: Connection, metrics: Collection[str], ids: list[int], now: datetime
) -> dict[int, MetricRows]:
    """The rows of the derived ``metrics`` of ``ids`` as of ``now``'s day or before, by
    person (the ids bound as one array: the statement is compiled once)."""
    names = sorted(m for m in metrics if m in METRICS)
    found: dict[int, MetricRows] = {}
    if not names:
        return found
    d = schema.derived_metrics
    query = sa.select(
        d.c.person_id, d.c.computed_on, d.c.computed_at, d.c.as_of, *(d.c[n] for n in names)
    ).where(among_ids(d.c.person_id, ids), d.c.as_of <= now.date())
    numbers = [METRICS[n] == "number" for n in names]
    for row in conn.execute(query):
        per = found.setdefault(int(row[0]), {})
        day = str(row[1])
        for name, number, value in zip(names, numbers, row[4:], strict=True):
            if number and value is not None:
                value = as_number(value)
            per.setdefault(name, []).append((day, row[2], row[3], value))
    return found
