"""The outbox: a message is recorded before it leaves, and leaves once.

Life of a row: ``planned`` (by :mod:`surmesure.deliver.plan`) -> ``sending`` (claimed by a
worker, ``attempts`` counted, committed before anything leaves) -> ``sent``, or ``failed``
(permanent, with the provider's reason), or back to ``planned`` with ``next_attempt_at``
pushed back (a transient failure: 1, 5, 30 minutes, 2 hours, then ``failed``). A paused
campaign's ``planned`` rows are ``paused`` (:func:`pause`): no run claims them, and a send
is refused, until :func:`resume` makes them ``planned`` again. At send time
the guardrails are read again: a person erased since planning is ``suppressed`` (``erased``),
one who refused marketing on the channel meanwhile is ``suppressed``
(``opted_out_marketing``), one who paused marketing or left the topic meanwhile is
``suppressed`` (``paused``, ``topic_refused``), an address on the suppression list is ``suppressed``
(``suppressed_address``), one no longer held is ``suppressed`` (``unreachable``), an e-mail
that bounced or complained since, a complaint within the quiet hours, a featured product
bought since, or a cap reached since (another campaign's message left meanwhile) is
``suppressed`` (``bounced``, ``complained``, ``just_bought``, ``frequency_cap``:
:mod:`surmesure.deliver.guards`). A template
that fails for one person fails that message (``failed``, ``template: ...``), never the batch.

Crash safety (the choice, and why). A provider cannot be asked whether it accepted a message, so
after a crash the rows left ``sending`` are uncertain. A channel hands a batch over one message
at a time on each of its connections and, as soon as the provider accepts one, its id is
appended to the campaign's send journal (``<outbox_dir>/<campaign>.journal``; one ``write`` of
one line, which the kernel keeps when the process is killed). A run starts by settling the rows
left ``sending``: those the journal names are ``sent``, the others are ``planned`` again and
leave again. So a kill -9 at any moment sends each message exactly once, except in the
microseconds between the provider's acceptance and the journal's write (or when the machine
itself loses power before the page cache reaches the disk): there the message leaves again, with
the same Message-ID, so the choice is at-least-once, with the window made as small as the
protocol allows.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import written
from surmesure.deliver.channel import Delivery
from surmesure.errors import Conflict
from surmesure.store import schema
from surmesure.store.among import among_texts
from surmesure.store.engine import Store

BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
"""Waits before the attempts after a transient failure; past the last, the message fails."""


class Journal:
    """The ids of the messages a provider accepted, one line each, appended as they leave; a
    message written into a file (a print batch, a call list) has the file after a tab, so a
    run settling a crashed one still knows who is in which file
    (:mod:`surmesure.deliver.written`)."""

    def __init__(self, folder: Path, campaign: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{campaign}.journal"
        self._fd: int | None = None
        self._lock = threading.Lock()

    def accepted(self) -> set[str]:
        """The ids written so far (a torn last line, from a kill mid-write, is ignored)."""
        return set(self.files())

    def files(self) -> dict[str, str | None]:
        """Each id written so far -> the file it was written into, if any."""
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8", errors="replace").split("\n")
        found: dict[str, str | None] = {}
        for line in lines[:-1]:
            message_id, _, file = line.partition("\t")
            if message_id:
                found[message_id] = file or None
        return found

    def write(self, message_id: str, file: str | None = None) -> None:
        """Append one id, and its file if any (from any thread: one ``write`` of one line
        each)."""
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        line = message_id if file is None or "\n" in file else f"{message_id}\t{file}"
        os.write(self._fd, f"{line}\n".encode())

    def clear(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_sending: set[tuple[str, str]] = set()
_sending_lock = threading.Lock()


@contextmanager
def only_sender(store: Store, campaign: str) -> Iterator[None]:
    """Hold the campaign's sending to this caller while the block runs: settling rows left
    ``sending`` is only right when no other worker is sending them. Another thread of this
    process is refused at once, and on PostgreSQL another process too (a session advisory
    lock keyed by the campaign); an embedded DuckDB file is one process's anyway."""
    mine = (store.url, campaign)
    with _sending_lock:
        busy = mine in _sending
        _sending.add(mine)
    if busy:
        raise _busy(campaign)
    try:
        with store.backend.only_process(_campaign_key(campaign)) as alone:
            if not alone:
                raise _busy(campaign)
            yield
    finally:
        with _sending_lock:
            _sending.discard(mine)


def _busy(campaign: str) -> Conflict:
    return Conflict(
        f"Campaign {campaign!r} is being sent by another process.",
        field="NAME",
        hint="wait for it to finish; `campaign status` shows its progress",
    )


def _campaign_key(campaign: str) -> int:
    digest = hashlib.blake2b(campaign.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def journal_of(folder: Path, campaign: str) -> Iterator[Journal]:
    journal = Journal(folder, campaign)
    try:
        yield journal
    finally:
        journal.close()


def settle(
    store: Store,
    campaign: str,
    journal: Journal,
    now: datetime,
    on_sent: Callable[[Connection, list[str]], None] | None = None,
) -> dict[str, int]:
    """Resolve the rows a crashed run left ``sending`` (see the module): ``{"sent": n,
    "planned": m}``, then empty the journal. ``on_sent`` is told the ids found sent, in the
    same transaction (what their leaving implies is recorded with them)."""
    m = schema.messages
    files = journal.files()
    accepted = set(files)
    with store.begin() as conn:
        left = [
            str(r[0])
            for r in conn.execute(
                sa.select(m.c.message_id).where(m.c.campaign == campaign, m.c.status == "sending")
            )
        ]
        sent = [i for i in left if i in accepted]
        again = [i for i in left if i not in accepted]
        for start in range(0, len(sent), 1000):
            conn.execute(
                m.update()
                .where(m.c.message_id.in_(sent[start : start + 1000]))
                .values(status="sent", sent_at=now, updated_at=now, provider_id=m.c.message_id)
            )
        for start in range(0, len(again), 1000):
            conn.execute(
                m.update()
                .where(m.c.message_id.in_(again[start : start + 1000]))
                .values(status="planned", next_attempt_at=now, updated_at=now)
            )
        filed = [Delivery(i, "sent", file=files[i]) for i in sent if files[i] is not None]
        written.record(conn, filed, now)
        if on_sent is not None and sent:
            on_sent(conn, sent)
    journal.clear()
    return {"sent": len(sent), "planned": len(again)}


def claim(
    store: Store,
    conn: Connection,
    campaign: str,
    now: datetime,
    limit: int,
    channels: Sequence[str],
) -> list[sa.Row[tuple[str, int | None, str, int, int, str | None, str | None]]]:
    """Up to ``limit`` due ``planned`` rows on ``channels``, marked ``sending`` (one more
    attempt) in the caller's transaction: ``(message_id, person_id, channel, step,
    version, action, variant)``."""
    m = schema.messages
    query = (
        sa.select(
            m.c.message_id,
            m.c.person_id,
            m.c.channel,
            m.c.step,
            m.c.version,
            m.c.action,
            m.c.variant,
        )
        .where(
            m.c.campaign == campaign,
            m.c.status == "planned",
            m.c.next_attempt_at <= now,
            m.c.channel.in_(list(channels)),
        )
        .order_by(m.c.message_id)
        .limit(limit)
    )
    rows = list(conn.execute(store.backend.lock_rows(query, skip_locked=True)))
    ids = [r.message_id for r in rows]
    if ids:
        conn.execute(
            m.update()
            .where(among_texts(m.c.message_id, ids))
            .values(status="sending", attempts=m.c.attempts + 1, updated_at=now)
        )
    return rows


def mark(
    conn: Connection,
    deliveries: list[Delivery],
    skipped: list[dict[str, object]],
    attempts: dict[str, int],
    now: datetime,
) -> None:
    """Record what became of a batch: the channel's deliveries and the rows suppressed or
    failed before leaving."""
    m = schema.messages
    # the usual case, a message accepted under its own id, is one statement per batch
    plain: dict[int, list[str]] = {}
    for d in deliveries:
        if d.outcome == "sent" and d.provider_id == d.message_id:
            plain.setdefault(d.units, []).append(d.message_id)
            continue
        if d.outcome == "sent":
            values: dict[str, object] = {
                "status": "sent",
                "sent_at": now,
                "provider_id": d.provider_id,
                "units": d.units,
                "reason": None,
            }
        elif d.outcome == "retry" and attempts.get(d.message_id, 1) <= len(BACKOFF):
            wait = BACKOFF[attempts.get(d.message_id, 1) - 1]
            values = {"status": "planned", "next_attempt_at": now + wait, "reason": d.detail}
        else:
            values = {"status": "failed", "reason": (d.detail or d.outcome)[:200]}
        conn.execute(
            m.update().where(m.c.message_id == d.message_id).values(updated_at=now, **values)
        )
    for units, ids in plain.items():
        conn.execute(
            m.update()
            .where(among_texts(m.c.message_id, ids))
            .values(
                status="sent",
                sent_at=now,
                provider_id=m.c.message_id,
                units=units,
                reason=None,
                updated_at=now,
            )
        )
    by_outcome: dict[tuple[object, object], list[str]] = {}
    for skip in skipped:
        by_outcome.setdefault((skip["status"], skip["reason"]), []).append(str(skip["message_id"]))
    for (status, reason), ids in by_outcome.items():
        conn.execute(
            m.update()
            .where(among_texts(m.c.message_id, ids))
            .values(status=status, reason=reason, updated_at=now)
        )


PAUSED = "paused"
"""The status of a paused campaign's rows that had not left."""


def pause(store: Store, campaign: str, now: datetime) -> int:
    """Hold the campaign's ``planned`` rows back (``paused``) so that none leaves; the number
    held. A message already claimed (``sending``) still leaves."""
    m = schema.messages
    with store.begin() as conn:
        done = conn.execute(
            m.update()
            .where(m.c.campaign == campaign, m.c.status == "planned")
            .values(status=PAUSED, updated_at=now)
        )
    return int(done.rowcount or 0)


def resume(store: Store, campaign: str, now: datetime) -> int:
    """Make the campaign's ``paused`` rows ``planned`` again (due as they were); the number."""
    m = schema.messages
    with store.begin() as conn:
        done = conn.execute(
            m.update()
            .where(m.c.campaign == campaign, m.c.status == PAUSED)
            .values(status="planned", updated_at=now)
        )
    return int(done.rowcount or 0)


def paused(conn: Connection, campaign: str) -> bool:
    """Whether the campaign has rows held back by :func:`pause`."""
    m = schema.messages
    found = conn.execute(
        sa.select(m.c.message_id).where(m.c.campaign == campaign, m.c.status == PAUSED).limit(1)
    ).first()
    return found is not None
