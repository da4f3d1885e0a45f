"""The exposure ledger: every content block shown to a person, and which block to show next.

Rules of :func:`pick_blocks` at ``now`` (naive UTC), blocks in the author's order:

- an expired block (``expires_at <= now``) is never picked;
- a block the person saw within its ``not_again_days`` is not picked;
- blocks the person has not seen come first: ``new`` (nobody saw it before ``now``) and
  ``missed`` (others saw it, the person did not; only while unexpired and when the block says
  ``reuse_while_unexpired``);
- then blocks the person already saw, outside their ``not_again_days`` (``repeat``), least
  recently seen first.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.templates import Block
from surmesure.store import schema
from surmesure.store.engine import Store

_ids = random.Random(os.urandom(32))


def _reseed() -> None:
    _ids.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)  # a forked server must not repeat its parent's ids


def new_id() -> str:
    """A random 128-bit id in hex, as unique as a UUID4; drawn from a generator seeded once
    from the system, since asking the system for every id costs more than a decision's
    own work."""
    return f"{_ids.getrandbits(128):032x}"


@dataclass(frozen=True)
class Pick:
    block: Block
    reason: str  # new, missed or repeat
    last_seen: datetime | None = None


@dataclass(frozen=True)
class Shown:
    """One content block shown: what, and until when the content itself is valid."""

    content_id: str
    expires_at: datetime | None = None


def choose_blocks(
    blocks: Sequence[Block],
    seen: dict[str, datetime],
    shown_before: set[str],
    now: datetime,
    n: int,
) -> list[Pick]:
    """The pure rule of :func:`pick_blocks` (see the module)."""
    fresh: list[Pick] = []
    repeats: list[Pick] = []
    for block in blocks:
        if block.expires_at is not None and block.expires_at <= now:
            continue
        last = seen.get(block.content_id)
        if last is None:
            if block.content_id not in shown_before:
                fresh.append(Pick(block, "new"))
            elif block.reuse_while_unexpired:
                fresh.append(Pick(block, "missed"))
            continue
        if block.not_again_days is not None and now - last < timedelta(days=block.not_again_days):
            continue
        repeats.append(Pick(block, "repeat", last))
    repeats.sort(key=lambda p: p.last_seen or datetime.min)
    return [*fresh, *repeats][: max(n, 0)]


def ledger(
    conn: Connection, person_id: int | None, content_ids: Iterable[str], now: datetime
) -> tuple[dict[str, datetime], set[str]]:
    """In one query: when ``person_id`` last saw each of ``content_ids`` (at or before
    ``now``), and which of them anybody saw strictly before ``now``."""
    e = schema.exposures
    wanted = sorted(set(content_ids))
    if not wanted:
        return {}, set()
    mine = e.c.person_id == person_id if person_id is not None else sa.false()
    rows = conn.execute(
        sa.select(
            e.c.content_id,
            sa.func.max(e.c.shown_at).filter(mine),
            sa.func.count().filter(e.c.shown_at < now),
        )
        .where(e.c.content_id.in_(wanted), e.c.shown_at <= now)
        .group_by(e.c.content_id)
    )
    seen: dict[str, datetime] = {}
    before: set[str] = set()
    for content_id, last, earlier in rows:
        if last is not None:
            seen[str(content_id)] = last
        if earlier:
            before.add(str(content_id))
    return seen, before


def pick_blocks(
    store: Store,
    person_id: int | None,
    blocks: Sequence[Block],
    now: datetime,
    n: int,
    *,
    conn: Connection | None = None,
) -> list[Pick]:
    """Up to ``n`` blocks for ``person_id`` at ``now``, by the rules of the module.
    ``person_id`` ``None`` (nobody known): unexpired blocks, new ones first."""
    if conn is None:
        with store.connect() as own:
            return pick_blocks(store, person_id, blocks, now, n, conn=own)
    seen, before = ledger(conn, person_id, [b.content_id for b in blocks], now)
    return choose_blocks(blocks, seen, before, now, n)


def exposure_rows(
    person_id: int | None,
    shown: Sequence[Shown],
    *,
    now: datetime,
    channel: str | None = None,
    placement: str | None = None,
) -> list[dict[str, Any]]:
    """The ledger rows of ``shown`` (none for nobody known)."""
    if person_id is None:
        return []
    return [
        {
            "exposure_id": new_id(),
            "person_id": person_id,
            "node_id": person_id,
            "content_id": s.content_id,
            "channel": channel,
            "placement": placement,
            "shown_at": now,
            "expires_at": s.expires_at,
        }
        for s in shown
    ]


def record_exposures(
    conn: Connection,
    person_id: int,
    shown: Sequence[Shown],
    *,
    now: datetime,
    channel: str | None = None,
    placement: str | None = None,
) -> int:
    """Write one exposure row per shown block; returns how many."""
    if not shown:
        return 0
    conn.execute(
        schema.exposures.insert(),
        exposure_rows(person_id, shown, now=now, channel=channel, placement=placement),
    )
    return len(shown)
