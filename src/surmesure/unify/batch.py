"""Many people at once as a send's templates read them (``SqlPersonReader.read_many`` of
:mod:`surmesure.unify.reader`): a statement per kind of row for the whole batch, not one per
person.

Each person gets what :func:`~surmesure.unify.reader.read_person` reads of them at ``now``
except their preference records and exposure ledger (campaign content chooses no offer block
and keeps no ledger): marketing and personalization consents, trait observations (only the
``traits`` named, when given; sealed ones opened in one batch, shredded ones left out), segment
memberships and, of the derived ``metrics`` columns given, the row
:meth:`~surmesure.unify.reader.PersonRead.latest_metrics_at` picks: the latest ``as_of`` of
``now``'s day or before, then the latest computed.
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
    # each statement's rows are fetched at once (``.all()``): a row at a time is a driver call
    columns = (k.c.person_id, k.c.purpose, k.c.channel, k.c.granted, k.c.recorded_at)
    for pid, purpose, channel, granted, at, consent_id in conn.execute(
        sa.select(*columns, k.c.consent_id).where(
            among_ids(k.c.person_id, ids), k.c.purpose.in_(DECISION_PURPOSES)
        )
    ).all():
        consents[pid].append(Record(str(purpose), str(channel), bool(granted), at, str(consent_id)))
    query = sa.select(
        t.c.person_id, t.c.name, t.c.value, t.c.source, t.c.observed_at, t.c.reliability,
        t.c.node_id, t.c.sealed,
    ).where(among_ids(t.c.person_id, ids), t.c.observed_at <= now)  # fmt: skip
    if traits is not None:
        query = query.where(t.c.name.in_(sorted(traits)))
    rows = conn.execute(query).all()
    at = [i for i, r in enumerate(rows) if r[7] is not None]
    opened = atrest.open_json(conn, [rows[i][6] for i in at], [rows[i][7] for i in at])
    values = dict(zip(at, opened, strict=True))
    observed: dict[int, list[Observation]] = {p: [] for p in ids}
    for i, (pid, name, value, source, observed_at, reliability, _, sealed) in enumerate(rows):
        if sealed is None:
            value = decode_json(value)
        else:
            value = values[i]
            if value is None:
                continue  # shredded: the person's key is gone
        observed[pid].append(Observation(name, value, source, observed_at, float(reliability)))
    members: dict[int, set[str]] = {p: set() for p in ids}
    for person, segment in conn.execute(
        sa.select(m.c.person_id, m.c.segment).where(among_ids(m.c.person_id, ids))
    ).all():
        members[person].add(str(segment))
    rows_of = _metrics(conn, metrics, ids, now)
    return {
        p: PersonRead(p, consents[p], observed[p], frozenset(members[p]), rows_of.get(p, {}))
        for p in ids
    }


def _metrics(
    conn: Connection, metrics: Collection[str], ids: list[int], now: datetime
) -> dict[int, MetricRows]:
    """The latest row of the derived ``metrics`` of each of ``ids`` as of ``now``'s day, by
    person (the ids bound as one array: the statement is compiled once)."""
    names = sorted(m for m in metrics if m in METRICS)
    found: dict[int, MetricRows] = {}
    if not names:
        return found
    d = schema.derived_metrics
    query = sa.select(
        d.c.person_id, d.c.computed_on, d.c.computed_at, d.c.as_of, *(d.c[n] for n in names)
    ).where(among_ids(d.c.person_id, ids), d.c.as_of <= now.date())
    query = query.order_by(d.c.person_id, d.c.as_of, d.c.computed_at)
    numbers = [METRICS[n] == "number" for n in names]
    for row in conn.execute(query).all():
        per: MetricRows = {}
        day = str(row[1])
        for name, number, value in zip(names, numbers, row[4:], strict=True):
            if number and value is not None:
                value = as_number(value)
            per[name] = [(day, row[2], row[3], value)]
        found[int(row[0])] = per  # rows come oldest first: the last of a person is theirs
    return found
