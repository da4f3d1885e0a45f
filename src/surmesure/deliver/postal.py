"""Postal address blocks for the paper channel, from the people's traits (sealed ones opened).

The block is the lines a window envelope shows: the name (``first_name`` ``last_name``, when
known), ``street``, then ``postcode`` ``city``. Each trait is resolved as everywhere
(:func:`surmesure.domain.traits.resolve`: the most reliable recent observation wins); a
person without a street, a postcode or a city has no block (``unreachable`` at send time). The
block is read for the batch being sent and never stored with the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.campaigns import POSTAL_TRAITS
from surmesure.domain.traits import Observation, resolve
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json

NAME_TRAITS = ("first_name", "last_name")


def blocks(conn: Connection, person_ids: Sequence[int], now: datetime) -> dict[int, str]:
    """The address block of each person who has a full postal address (see the module)."""
    if not person_ids:
        return {}
    t = schema.traits
    rows = conn.execute(
        sa.select(
            t.c.person_id,
            t.c.name,
            t.c.value,
            t.c.source,
            t.c.observed_at,
            t.c.reliability,
            t.c.node_id,
            t.c.sealed,
        ).where(
            t.c.person_id.in_(list(person_ids)),
            t.c.name.in_(POSTAL_TRAITS + NAME_TRAITS),
            t.c.observed_at <= now,
        )
    ).all()
    sealed = [r for r in rows if r.sealed is not None]
    opened = atrest.open_json(conn, [r.node_id for r in sealed], [r.sealed for r in sealed])
    values = dict(zip((id(r) for r in sealed), opened, strict=True))
    observed: dict[int, list[Observation]] = {}
    for r in rows:
        value = values[id(r)] if r.sealed is not None else decode_json(r.value)
        if value is None or str(value).strip() == "":
            continue
        observed.setdefault(int(r.person_id), []).append(
            Observation(r.name, value, r.source, r.observed_at, float(r.reliability))
        )
    half_life = Store.of(conn).settings.trait_half_life_days
    out: dict[int, str] = {}
    for person, seen in observed.items():
        traits = {k: str(v.value).strip() for k, v in resolve(seen, now, half_life).items()}
        if not all(traits.get(k) for k in POSTAL_TRAITS):
            continue
        name = " ".join(traits[k] for k in NAME_TRAITS if traits.get(k))
        lines = [name] if name else []
        lines += [traits["street"], f"{traits['postcode']} {traits['city']}"]
        out[person] = "\n".join(lines)
    return out
