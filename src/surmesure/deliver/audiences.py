"""The people of a batch as templates see them, read in a few statements for the whole batch.

Each person's audience is the one :func:`surmesure.decide.audience.load_audience` reads for one
person (a test holds them equal): personalization and marketing consent records, resolved
traits (sealed ones opened, in one batch), the derived metrics the fields read (one
statement), segment memberships, and only the consent records
for a person who opted out of personalization on the channel; preference records are not read
(they choose offer blocks, which campaign content has none of). Traits are limited to the
``traits`` the templates read. Templates whose rules need a snapshot (metrics, events, ...)
are read one person at a time, by ``load_audience`` itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.audience import field_metrics, load_audience, opted_out
from surmesure.decide.content import Audience, Known
from surmesure.domain.traits import Observation, resolve
from surmesure.protect import atrest, consent
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.unify.profile import decode_json
from surmesure.unify.reader import DECISION_PURPOSES


def load_audiences(
    conn: Connection,
    person_ids: Sequence[int],
    now: datetime,
    half_life_days: float,
    *,
    channel: str,
    traits: Collection[str] | None,
    needs: frozenset[str] = frozenset(),
    metrics: frozenset[str] = frozenset(),
) -> dict[int, Audience]:
    """The audience of each person at ``now`` on ``channel``; ``traits``: the trait names to
    read (``None``: all); ``metrics``: the derived metrics the fields read."""
    if needs:
        return {
            p: load_audience(
                conn, p, now, half_life_days, needs=needs, channel=channel, metrics=metrics
            )
            for p in person_ids
        }
    ids = sorted(set(person_ids))
    k, t, m = schema.consents, schema.traits, schema.segment_members
    records: dict[int, list[consent.Record]] = {p: [] for p in ids}
    columns = (
        k.c.person_id,
        k.c.purpose,
        k.c.channel,
        k.c.granted,
        k.c.recorded_at,
        k.c.consent_id,
    )
    for c in conn.execute(
        sa.select(*columns).where(among_ids(k.c.person_id, ids), k.c.purpose.in_(DECISION_PURPOSES))
    ):
        records[int(c[0])].append(consent.Record(str(c[1]), str(c[2]), bool(c[3]), c[4], str(c[5])))
    neutral = {p for p in ids if opted_out(records[p], channel, now)}
    readers = [p for p in ids if p not in neutral]
    query = sa.select(
        t.c.person_id, t.c.name, t.c.value, t.c.source, t.c.observed_at, t.c.reliability,
        t.c.node_id, t.c.sealed,
    ).where(among_ids(t.c.person_id, readers), t.c.observed_at <= now)  # fmt: skip
    if traits is not None:
        query = query.where(t.c.name.in_(sorted(traits)))
    rows = conn.execute(query).all() if readers else []
    sealed = [r for r in rows if r.sealed is not None]
    opened = atrest.open_json(conn, [r.node_id for r in sealed], [r.sealed for r in sealed])
    values = dict(zip((id(r) for r in sealed), opened, strict=True))
    observed: dict[int, list[Observation]] = {p: [] for p in readers}
    for r in rows:
        if r.sealed is not None and values[id(r)] is None:
            continue  # shredded: the person's key is gone
        value = values[id(r)] if r.sealed is not None else decode_json(r.value)
        observed[int(r.person_id)].append(
            Observation(r.name, value, r.source, r.observed_at, float(r.reliability))
        )
    members: dict[int, set[str]] = {p: set() for p in readers}
    if readers:
        query_members = sa.select(m.c.person_id, m.c.segment).where(
            among_ids(m.c.person_id, readers)
        )
        for person, segment in conn.execute(query_members):
            members[int(person)].add(str(segment))
    known = field_metrics(conn, readers, metrics, now)
    out: dict[int, Audience] = {}
    for p in ids:
        held = tuple(records[p])
        if p in neutral:
            out[p] = Audience(person_id=p, opted_out=True, consents=held)
            continue
        resolved = resolve(observed[p], now, half_life_days)
        out[p] = Audience(
            person_id=p,
            consents=held,
            traits={
                name: Known(trait.value, trait.source, trait.effective_reliability)
                for name, trait in resolved.items()
            },
            segments=frozenset(members[p]),
            metrics=known.get(p, {}),
        )
    return out
