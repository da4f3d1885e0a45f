"""The segments one person is in: as recorded (``segment_members``, since the last refresh or
real-time update) or live (every saved definition evaluated in memory on the person's snapshot
now).

A person is named by id or by ``kind:value`` (:func:`surmesure.unify.profile.find_person`); an
absorbed id answers for the person it was merged into. Discovered segments (clusters saved by
``surmesure segment discover --save``) have no definition to evaluate: live, they are read as
recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from surmesure.protect import blind
from surmesure.segment.evaluate import Evaluator
from surmesure.segment.repository import catalog as saved_catalog
from surmesure.segment.snapshot import load_snapshot, store_points, stores_named
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person


def segments_of(store: Store, ref: str, now: datetime, *, live: bool = False) -> dict[str, Any]:
    """``{"person_id", "live", "at", "segments": [{"name", "entered_at", "discovered"}]}``,
    segments by name; ``entered_at`` (naive UTC) is ``None`` for a live member not yet
    recorded. :class:`NotFound` when nobody is known by ``ref``."""
    m = schema.segment_members
    with store.connect() as conn:
        person = find_person(conn, ref)
        recorded = {
            str(r.segment): r.entered_at
            for r in conn.execute(
                sa.select(m.c.segment, m.c.entered_at).where(m.c.person_id == person.person_id)
            )
        }
        known = saved_catalog(conn)
        if live:
            places = store_points(conn, stores_named(known.values()))
            half_life = store.settings.trait_half_life_days
            snapshot = load_snapshot(conn, person.person_id, now, half_life, places)
            evaluator = Evaluator(snapshot, now, known, blind.index_key(store))
            names = {n for n in known if evaluator.segment(n)}
            names |= {n for n in recorded if n not in known}
        else:
            names = set(recorded)
    segments = [
        {"name": n, "entered_at": recorded.get(n), "discovered": n not in known}
        for n in sorted(names)
    ]
    return {"person_id": person.person_id, "live": live, "at": now, "segments": segments}
