"""The decisions table: a decision kept with its exposures, and :func:`why` reads them back.

:func:`keep` records an :class:`~surmesure.decide.answer.Answer`: through the serving view's
decision log (written behind, :mod:`surmesure.decide.decision_log`) when there is one, else in
the transaction that read and decided. A decision made for a person is sealed under their data
key (:mod:`surmesure.protect.atrest`); :func:`why` opens them again (transparency).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.decide.answer import Answer
from surmesure.decide.audience import find_person_id
from surmesure.decide.exposure import exposure_rows, record_exposures
from surmesure.decide.serving import Serving
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json

_JSON = atrest.DECISION_COLUMNS


def keep(conn: Connection | None, serving: Serving | None, answer: Answer) -> None:
    """Record ``answer`` and the exposures it makes: in ``serving``'s decision log, else in
    ``conn``."""
    record = answer.record
    person_id, at = record["person_id"], record["decided_at"]
    where = {"now": at, "channel": answer.shown_on, "placement": record["placement"]}
    if serving is not None:
        serving.record(person_id, exposure_rows(person_id, answer.shown, **where), record, at)
        return
    assert conn is not None
    if person_id is not None:
        record_exposures(conn, person_id, answer.shown, **where)
    _write(conn, record, at)


def _write(conn: Connection, record: dict[str, Any], at: datetime) -> None:
    """Insert one decision, sealed when it was made for a person."""
    values = {k: _json_ready(v) if k in _JSON else v for k, v in record.items()}
    sealed = atrest.seal_decisions(conn, [record], now=at)[0]
    if sealed is not None:
        values.update({k: sa.null() for k in _JSON}, sealed=sealed)
    conn.execute(schema.decisions.insert().values(**values))


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def why(
    store: Store, person_id: int, *, now: datetime | None = None, days: int = 90, limit: int = 100
) -> list[dict[str, Any]]:
    """The decisions made for ``person_id`` within ``days`` before ``now``, newest first."""
    at = now or utcnow()
    d = schema.decisions
    with store.connect() as conn:
        found = find_person_id(conn, person_id=person_id)
        target = found if found is not None else person_id
        rows = conn.execute(
            sa.select(d)
            .where(d.c.person_id == target, d.c.decided_at >= at - timedelta(days=days))
            .order_by(d.c.decided_at.desc(), d.c.decision_id)
            .limit(limit)
        ).all()
        found_rows = [
            {
                "decision_id": r.decision_id,
                "placement": r.placement,
                "decided_at": r.decided_at,
                "person_id": r.person_id,
                "sealed": r.sealed,
                **{k: decode_json(r._mapping[k]) for k in _JSON},
            }
            for r in rows
        ]
        atrest.open_rows(conn, d, found_rows)
    for row in found_rows:
        del row["person_id"]
    return found_rows
