"""The people of a batch as templates see them, read in a few statements for the whole batch.

Each person's audience is the one :func:`surmesure.decide.audience.load_audience` reads for one
person (a test holds them equal), made the same way (``audience_from``) from the person
reader's read of the whole batch (``PersonReader.read_many``): personalization and marketing
consent records, resolved traits (sealed ones opened, in one batch), the derived metrics the
fields read, segment memberships, and only the consent records for a person who opted out of
personalization on the channel; preference records are not read (they choose offer blocks,
which campaign content has none of). Traits are limited to the ``traits`` the templates read.
Templates whose rules need a snapshot (metrics, events, ...) are read one person at a time, by
``load_audience`` itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from surmesure.decide import metrics as derived
from surmesure.decide.audience import audience_from, load_audience
from surmesure.decide.content import Audience
from surmesure.store.engine import Store
from surmesure.unify.reader import SqlPersonReader


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
    reader = SqlPersonReader(conn, derived.columns_for(metrics))
    settings = Store.of(conn).settings
    return {
        p: audience_from(
            read, now, half_life_days, frozenset(), channel, metrics, settings=settings
        )
        for p, read in reader.read_many(person_ids, now, traits).items()
    }
