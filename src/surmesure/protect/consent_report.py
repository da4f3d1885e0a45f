"""Consents and preferences in aggregate: what an admin reads without reading anybody.

Counts of consent records by purpose and channel (granted and refused), the people whose
latest record of a purpose and channel grants or refuses it, and the latest changes of the
consents and of the preferences (:mod:`surmesure.protect.marketing`) with when, what and from
which source, never whose nor the evidence (a form or message id could lead to a person).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from surmesure.store import schema
from surmesure.store.engine import Store

_BY_PURPOSE = """
SELECT purpose, channel,
  count(*) FILTER (WHERE granted) AS granted_records,
  count(*) FILTER (WHERE NOT granted) AS refused_records,
  count(*) FILTER (WHERE latest AND granted) AS granted_people,
  count(*) FILTER (WHERE latest AND NOT granted) AS refused_people
FROM (
  SELECT purpose, channel, granted,
    row_number() OVER (PARTITION BY person_id, purpose, channel
                       ORDER BY recorded_at DESC, consent_id DESC) = 1 AS latest
  FROM consents
) c
GROUP BY purpose, channel ORDER BY purpose, channel
"""


@dataclass(frozen=True, slots=True)
class ConsentReport:
    by_purpose: list[dict[str, Any]]
    consent_changes: list[dict[str, Any]]
    preference_changes: list[dict[str, Any]]
    preference_counts: list[dict[str, Any]]


def consent_report(store: Store, *, limit: int = 20) -> ConsentReport:
    """The counts and the ``limit`` latest changes of each table, newest first."""
    c, p = schema.consents, schema.preferences
    with store.connect() as conn:
        by_purpose = [_plain(r) for r in conn.execute(sa.text(_BY_PURPOSE))]
        consents = conn.execute(
            sa.select(c.c.recorded_at, c.c.purpose, c.c.channel, c.c.granted, c.c.source)
            .order_by(c.c.recorded_at.desc(), c.c.consent_id.desc())
            .limit(limit)
        ).all()
        preferences = conn.execute(
            sa.select(p.c.recorded_at, p.c.kind, p.c.name, p.c.value, p.c.until, p.c.source)
            .order_by(p.c.recorded_at.desc(), p.c.preference_id.desc())
            .limit(limit)
        ).all()
        counts = conn.execute(
            sa.select(p.c.kind, p.c.name, p.c.value, sa.func.count().label("records"))
            .group_by(p.c.kind, p.c.name, p.c.value)
            .order_by(p.c.kind, p.c.name, p.c.value)
        ).all()
        return ConsentReport(
            by_purpose=by_purpose,
            consent_changes=[_plain(r) for r in consents],
            preference_changes=[_plain(r) for r in preferences],
            preference_counts=[_plain(r) for r in counts],
        )


def _plain(row: Any) -> dict[str, Any]:
    return {str(k): v for k, v in row._mapping.items()}
