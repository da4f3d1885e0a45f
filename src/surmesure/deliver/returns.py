"""Letters that came back: the post's undeliverable returns, imported from the printer's or the
post's file.

The file is a CSV with ``message_id`` (the letter's id in the printer's manifest, as
:mod:`surmesure.deliver.paper` writes it) and optionally ``reason`` (the post's words: "NPAI",
"moved", at most 200 characters) and ``returned_at`` (ISO date-time). Each letter that came
back flags the postal address it was sent to undeliverable (:mod:`surmesure.deliver.addresses`:
the address as of the letter; a postal address observed after the letter was sent lifts it), so
the next campaign skips the person on paper with the reason ``undeliverable_address`` and
reaches them on another channel where it can. A row naming no letter of ours, a message that
is not a letter or one that never left goes to the quarantine with its reason (kind
``paper_returns``); the other rows are recorded. A person erased since is counted, nothing of
them is kept.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import addresses, postal
from surmesure.deliver.imports import Read, RowError, read_rows, refuse, set_aside, when
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

KIND = "paper_returns"
SOURCE = "paper_return"
COLUMNS = ("message_id", "reason", "returned_at")


@dataclass
class Returned:
    flagged: int = 0
    quarantined: int = 0
    erased: int = 0
    moved: int = 0
    """Letters whose person has been seen at another address since it was sent."""

    def to_dict(self) -> dict[str, int]:
        return {
            "flagged": self.flagged,
            "quarantined": self.quarantined,
            "erased": self.erased,
            "moved_since": self.moved,
        }


def parse_row(row: dict[str, str]) -> tuple[str, str | None, datetime | None]:
    message_id = row.get("message_id", "").strip()
    if not message_id or len(message_id) > 64:
        raise RowError(
            "message_id", message_id, "message_id: give the letter's id from the manifest"
        )
    reason = row.get("reason", "").strip()[:200] or None
    returned = when(row, "returned_at", datetime.min)
    return message_id, reason, None if returned == datetime.min else returned


def import_returns(store: Store, path: Path, now: datetime | None = None) -> Returned:
    """Record the returns in ``path`` (see the module)."""
    return record_returns(store, read_rows(path, ("message_id",), parse_row), path.name, now)


def record_returns(
    store: Store,
    read: Read,
    source_name: str,
    now: datetime | None = None,
    *,
    within: Connection | None = None,
    set_aside_bad: bool = True,
) -> Returned:
    """Record the parsed rows of ``read``, quarantining the bad ones under ``source_name``.
    ``within``: in that transaction; without ``set_aside_bad`` the rows refused here are only
    added to ``read.bad`` (a replay of the quarantine)."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    done = Returned()
    m, t = schema.messages, schema.traits
    with store.begin() if within is None else nullcontext(within) as conn:
        for n, raw, (message_id, reason, _returned_at) in read.good:
            letter = conn.execute(
                sa.select(m.c.person_id, m.c.channel, m.c.status, m.c.sent_at).where(
                    m.c.message_id == message_id
                )
            ).first()
            if letter is None or letter.channel != "paper":
                why = "message_id: no letter of ours has this id; check the printer's manifest"
                refuse(read, n, raw, "message_id", message_id, why)
                continue
            if letter.status != "sent" or letter.sent_at is None:
                why = f"message_id: this letter was never sent (it is {letter.status})"
                refuse(read, n, raw, "message_id", message_id, why)
                continue
            root = None if letter.person_id is None else root_of(conn, int(letter.person_id))
            if root is None:
                done.erased += 1
                continue
            moved = conn.execute(
                sa.select(sa.func.count())
                .select_from(t)
                .where(
                    t.c.person_id == root,
                    t.c.name.in_(("street", "postcode", "city")),
                    t.c.observed_at > letter.sent_at,
                )
            ).scalar_one()
            if moved:
                done.moved += 1  # the letter went to an address the person has left
                continue
            block = postal.blocks(conn, [root], letter.sent_at).get(root, str(root))
            addresses.flag_postal(
                conn,
                root,
                int(letter.person_id),
                block,
                reason,
                SOURCE,
                # the address as of the letter: any address observed since lifts the flag
                letter.sent_at,
            )
            done.flagged += 1
        if set_aside_bad:
            set_aside(store, conn, read.bad, KIND, source_name, now)
    done.quarantined = len(read.bad)
    return done
