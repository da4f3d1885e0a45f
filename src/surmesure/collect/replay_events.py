"""Replaying the Segment messages the quarantine keeps for their currency: orders collected
in a currency that ``SURMESURE_RATES`` did not convert (:mod:`surmesure.collect.currency`).

Once the rate is set, each open record refused for its currency is validated and stored again
as its collector would (:func:`surmesure.collect.events.write_events`, under the source it was
collected from; a file's messages under ``web``, as ``import events`` stores them by
default), in the caller's transaction. A record stored now (or found already stored) is marked
``replayed``; one still without a rate stays ``open``. Other refused messages are not replayed:
they were refused for what they hold, which no setting changes.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from surmesure.collect.events import CURRENCY_FIELD, write_events
from surmesure.collect.segment import validate_messages
from surmesure.protect import quarantined
from surmesure.store import schema
from surmesure.store.engine import Store

KIND = "events"
q = schema.quarantine


def replay_events(
    store: Store, conn: Connection, now: datetime, reasons: Counter[str]
) -> tuple[int, int, int, int]:
    """Replay the open records refused for their currency: how many were considered,
    replayed, found already stored, and left open (their reasons counted in ``reasons``)."""
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    where = (q.c.status == "open", q.c.kind == KIND, q.c.field == CURRENCY_FIELD)
    for batch in quarantined.batches(conn, *where):
        for row in batch:
            payload = row["payload"]
            if isinstance(payload, str):
                payload = orjson.loads(payload)
            if isinstance(payload, dict):
                key = (str(row["origin"]), str(row["source_name"]))
                groups.setdefault(key, []).append((int(row["quarantine_id"]), payload))
    considered = replayed = duplicate = still_open = 0
    settings = store.settings
    for (origin, source_name), records in groups.items():
        considered += len(records)
        accepted, refused = validate_messages(
            [p for _, p in records], region=settings.default_country, prefix=""
        )
        written = write_events(
            store,
            conn,
            accepted,
            source=source_name if origin == "api" else "web",
            received_at=now,
            settings=settings,
            origin=origin,
            source_name=source_name,
        )
        left = {r.index for r in refused} | {
            item.index
            for item in accepted
            if item.message.message_id in {str(r.message_id) for r in written.refusals}
        }
        reasons.update(r.reason for r in refused)
        reasons.update(r.reason for r in written.refusals)
        done = [qid for i, (qid, _) in enumerate(records) if i not in left]
        if done:
            conn.execute(
                q.update()
                .where(q.c.quarantine_id.in_(done))
                .values(status="replayed", replayed_at=now)
            )
        replayed += len(done)
        duplicate += written.duplicate
        still_open += len(left)
    return considered, replayed, duplicate, still_open
