"""Which person is in which file a channel wrote, so that erasing them reaches the files too.

A print batch (:mod:`surmesure.deliver.paper`) and a call list (:mod:`surmesure.deliver.calls`)
hold names, addresses and phone numbers once written. Each message a channel wrote into a file
is recorded (table ``message_files``: message, file, channel, person) in the transaction that
records its delivery (:func:`record`). Erasure calls :func:`scrub`, which rewrites each of the
person's files without their messages (the letters' pages removed from the PDF and the
manifest renumbered; the call list's rows removed) or removes a file left empty, and says what
it did to which file; the eraser then deletes the person's ``message_files`` rows with their
other rows. A file moved or deleted since it was written is reported ``missing``: a copy that
left the folder (at the printer's, in a call centre's tool) is out of reach and must be
erased there.

A message whose person is erased while it is being written (after its batch was rendered,
before its delivery is recorded) is taken out of its file when the delivery is recorded; a
run that settles a crashed one records the files its journal names
(:class:`surmesure.deliver.outbox.Journal`).

A file is rewritten in place (:func:`surmesure.deliver.files.replace_file`) before the
erasure commits: an erasure that fails afterwards has removed the person from the files
already, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver.channel import Delivery
from surmesure.store import schema
from surmesure.store.among import among_ids, among_texts

Change = Literal["rewritten", "removed", "missing"]
Rewrite = Callable[[Path, Collection[str]], bool]


def rewriters() -> dict[str, Rewrite]:
    """Channel -> what rewrites one of its files without some messages (imported when an
    erasure finds files: the channels' modules are heavy to load)."""
    from surmesure.deliver.calls import without_calls
    from surmesure.deliver.paper import without_letters

    return {"paper": without_letters, "phone": without_calls}


def record(conn: Connection, deliveries: Sequence[Delivery], now: datetime) -> int:
    """Record the file of each delivery written into one; how many were. A message whose
    person was erased while it was being written (its row detached: no person) is taken out
    of its file at once instead."""
    filed = {d.message_id: d.file for d in deliveries if d.file is not None}
    if not filed:
        return 0
    m = schema.messages
    rows = conn.execute(
        sa.select(m.c.message_id, m.c.channel, m.c.person_id).where(
            among_texts(m.c.message_id, list(filed))
        )
    ).all()
    f = schema.message_files
    conn.execute(f.delete().where(among_texts(f.c.message_id, [r.message_id for r in rows])))
    values = [
        {
            "message_id": r.message_id,
            "path": filed[r.message_id],
            "channel": r.channel,
            "person_id": r.person_id,
            "written_at": now,
        }
        for r in rows
    ]
    erased = [v for v in values if v["person_id"] is None]
    _rewrite(erased)
    kept = [v for v in values if v["person_id"] is not None]
    if kept:
        conn.execute(f.insert(), kept)
    return len(kept)


def scrub(conn: Connection, nodes: Sequence[int]) -> dict[str, Change]:
    """Rewrite every file holding a message to one of ``nodes`` without it (see the module):
    file path -> what became of it."""
    f = schema.message_files
    rows = conn.execute(
        sa.select(f.c.path, f.c.channel, f.c.message_id).where(among_ids(f.c.person_id, nodes))
    ).all()
    return _rewrite([r._asdict() for r in rows])


def _rewrite(rows: Sequence[Mapping[str, Any]]) -> dict[str, Change]:
    """Rewrite each file of ``rows`` (``path``, ``channel``, ``message_id``) without their
    messages: file path -> what became of it."""
    by_file: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        by_file.setdefault((str(r["path"]), str(r["channel"])), set()).add(str(r["message_id"]))
    done: dict[str, Change] = {}
    known = rewriters() if by_file else {}
    for (path, channel), ids in sorted(by_file.items()):
        rewrite = known.get(channel)
        if rewrite is None:
            continue
        file = Path(path)
        if not file.exists():
            done[path] = "missing"
        else:
            done[path] = "rewritten" if rewrite(file, ids) else "removed"
    return done
