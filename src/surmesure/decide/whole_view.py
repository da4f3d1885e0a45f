"""Everyone decisions read, at once: one pass per table (:func:`build_view`), and the cheap
fingerprint of those tables (:func:`fingerprint`) that tells when they changed.

The serving cache (:mod:`surmesure.decide.serving`) reads a world that fits in it this way at
start, about a hundred times less time a person than one read each, and compares the
fingerprint as its safety net for writers that tell nobody of a change.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.segments import METRICS
from surmesure.domain.traits import Observation
from surmesure.protect import atrest
from surmesure.protect.consent import Record
from surmesure.protect.marketing import Preference
from surmesure.store import schema
from surmesure.unify.reader import DECISION_PURPOSES, HeldReader, PersonRead, read_metrics
from surmesure.unify.reader import fetch_rows as _rows

log = logging.getLogger("surmesure.decide.serving")

# what the fingerprint watches: a change in any of these rebuilds the view
_FINGERPRINT_SQL = (
    "SELECT (SELECT count(*) FROM identifiers), "
    "(SELECT count(*) FROM people WHERE merged_into IS NOT NULL), "
    "(SELECT count(*) FROM consents), (SELECT max(recorded_at) FROM consents), "
    "(SELECT count(*) FROM preferences), (SELECT max(recorded_at) FROM preferences), "
    "(SELECT count(*) FROM traits), (SELECT max(observed_at) FROM traits), "
    "(SELECT count(*) FROM segment_members), "
    "(SELECT count(*) FROM derived_metrics), (SELECT max(computed_at) FROM derived_metrics), "
    "(SELECT count(*) FROM exposures)"
)


def fingerprint(conn: Connection) -> tuple[Any, ...]:
    """Counts and latest times of what the view holds (see the module)."""
    return tuple(conn.execute(sa.text(_FINGERPRINT_SQL)).one())


@dataclass
class ServingView(HeldReader):
    """Everything live decisions read (see the module), as of one build."""

    people: set[int]
    roots: dict[int, int]  # an absorbed person id -> the person it was merged into, finally
    ids: dict[tuple[str, str], int]  # (kind, blind index) -> person id
    reads: dict[int, PersonRead]  # consents, observations, segments, metrics (no ledger)
    metrics: frozenset[str]
    seen: dict[int, dict[str, datetime]] = field(default_factory=dict)
    first_shown: dict[str, datetime] = field(default_factory=dict)
    stamp: tuple[Any, ...] = ()
    built_in_s: float = 0.0

    def person_id(self, person_id: int | None, keys: Sequence[tuple[str, str]]) -> int | None:
        """The person a request names, as :func:`~surmesure.unify.reader.read_person`
        finds them: a person id follows its merges; else the first identifier known."""
        if person_id is not None:
            root = self.roots.get(person_id, person_id)
            return root if root in self.people else None
        for key in keys:
            found = self.ids.get(key)
            if found is not None:
                return found
        return None

    def read(self, person_id: int | None, content_ids: Iterable[str], now: datetime) -> PersonRead:
        """What :func:`~surmesure.unify.reader.read_person` returns at ``now``."""
        wanted = set(content_ids)
        before = {c for c in wanted if (t := self.first_shown.get(c)) is not None and t < now}
        if person_id is None:
            return PersonRead(None, shown_before=before)
        mine = self.seen.get(person_id, {})
        seen = {c: t for c, t in mine.items() if c in wanted and t <= now}
        base = self.reads.get(person_id)
        if base is None:
            return PersonRead(person_id, seen=seen, shown_before=before)
        return base.as_of(now, seen, before)

    def note_shown(self, person_id: int, content_ids: Iterable[str], at: datetime) -> None:
        mine = self.seen.setdefault(person_id, {})
        for c in content_ids:
            if c not in mine or mine[c] < at:
                mine[c] = at
            if c not in self.first_shown or at < self.first_shown[c]:
                self.first_shown[c] = at


def build_view(
    conn: Connection, metrics: Iterable[str] = (), span: tuple[int, int] | None = None
) -> ServingView:
    """Read everything the view holds, in one pass per table (with the cyclic collector
    paused: millions of new objects would set off full passes that find nothing to free);
    with ``span``, of the person ids from its first to its last alone (``roots`` then holds
    the merges among them only; the fingerprint and the first exposures of each content,
    which are everyone's, are left empty)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_view(conn, metrics, span)
    finally:
        if enabled:
            gc.enable()


def _build_view(
    conn: Connection, metrics: Iterable[str], span: tuple[int, int] | None
) -> ServingView:
    started = time.perf_counter()
    # a span is one of hundreds read in turn: its owner takes the fingerprint once (on
    # PostgreSQL, counting the tables again for each span took most of a million's read)
    stamp = fingerprint(conn) if span is None else ()
    wanted = frozenset(m for m in metrics if m in METRICS)

    def within(column: Any) -> Any:
        return sa.true() if span is None else column.between(*span)

    p = schema.people
    people: set[int] = set()
    parent: dict[int, int] = {}
    for pid, merged_into in _rows(
        conn, sa.select(p.c.person_id, p.c.merged_into).where(within(p.c.person_id))
    ):
        people.add(int(pid))
        if merged_into is not None:
            parent[int(pid)] = int(merged_into)
    roots = {pid: _root(pid, parent) for pid in parent}
    people -= set(parent)
    ident = schema.identifiers
    ids = {
        (str(kind), str(value)): int(pid)
        for kind, value, pid in _rows(
            conn,
            sa.select(ident.c.kind, ident.c.value, ident.c.person_id).where(
                ident.c.kind.in_(["anonymous_id", "customer_id"]), within(ident.c.person_id)
            ),
        )
    }
    consents: dict[int, list[Record]] = {}
    c = schema.consents
    for pid, consent_id, purpose, channel, at, granted in _rows(
        conn,
        sa.select(
            c.c.person_id, c.c.consent_id, c.c.purpose, c.c.channel, c.c.recorded_at, c.c.granted
        ).where(
            c.c.person_id.is_not(None),
            c.c.purpose.in_(DECISION_PURPOSES),
            within(c.c.person_id),
        ),
    ):
        consents.setdefault(int(pid), []).append(
            Record(str(purpose), str(channel), bool(granted), at, str(consent_id))
        )
    wishes: dict[int, list[Preference]] = {}
    pr = schema.preferences
    for pid, preference_id, kind, name, value, until, at in _rows(
        conn,
        sa.select(
            pr.c.person_id, pr.c.preference_id, pr.c.kind, pr.c.name, pr.c.value, pr.c.until,
            pr.c.recorded_at,
        ).where(pr.c.person_id.is_not(None), within(pr.c.person_id)),
    ):  # fmt: skip
        wishes.setdefault(int(pid), []).append(
            Preference(str(kind), str(name), str(value), until, at, str(preference_id))
        )
    observations: dict[int, list[Observation]] = {}
    t = schema.traits
    sealed: list[tuple[int, str, str, datetime, float]] = []
    nodes: list[int | None] = []
    blobs: list[bytes | None] = []
    for pid, name, source, value, at, reliability, node, blob in _rows(
        conn,
        sa.select(
            t.c.person_id,
            t.c.name,
            t.c.source,
            sa.cast(t.c.value, sa.Text),  # JSON text, decoded below
            t.c.observed_at,
            t.c.reliability,
            t.c.node_id,
            t.c.sealed,
        ).where(within(t.c.person_id)),
    ):
        if blob is not None:  # opened below, in batches
            sealed.append((int(pid), str(name), str(source), at, float(reliability)))
            nodes.append(node)
            blobs.append(bytes(blob))
            continue
        decoded = None if value is None else orjson.loads(value)
        observations.setdefault(int(pid), []).append(
            Observation(str(name), decoded, str(source), at, float(reliability))
        )
    for (pid, name, source, at, reliability), opened in zip(
        sealed, atrest.open_json(conn, nodes, blobs), strict=True
    ):
        if opened is not None:
            observations.setdefault(pid, []).append(
                Observation(name, opened, source, at, reliability)
            )
    members: dict[int, set[str]] = {}
    m = schema.segment_members
    for pid, segment in _rows(
        conn, sa.select(m.c.person_id, m.c.segment).where(within(m.c.person_id))
    ):
        members.setdefault(int(pid), set()).add(str(segment))
    metric_rows = read_metrics(conn, wanted, span=span)
    reads = {
        pid: PersonRead(
            pid,
            consents.get(pid, []),
            observations.get(pid, []),
            frozenset(members.get(pid, ())),
            metric_rows.get(pid, {}),
            preferences=wishes.get(pid, []),
        )
        for pid in set(consents) | set(observations) | set(members) | set(metric_rows) | set(wishes)
    }
    e = schema.exposures
    seen: dict[int, dict[str, datetime]] = {}
    for pid, content_id, last in _rows(
        conn,
        sa.select(e.c.person_id, e.c.content_id, sa.func.max(e.c.shown_at))
        .where(within(e.c.person_id))
        .group_by(e.c.person_id, e.c.content_id),
    ):
        seen.setdefault(int(pid), {})[str(content_id)] = last
    first_shown = (
        {
            str(content_id): first
            for content_id, first in _rows(
                conn,
                sa.select(e.c.content_id, sa.func.min(e.c.shown_at)).group_by(e.c.content_id),
            )
        }
        if span is None
        else {}  # of everyone: read once by the span's owner, as the fingerprint
    )
    return ServingView(
        people=people,
        roots=roots,
        ids=ids,
        reads=reads,
        metrics=wanted,
        seen=seen,
        first_shown=first_shown,
        stamp=stamp,
        built_in_s=time.perf_counter() - started,
    )


def _root(pid: int, parent: Mapping[int, int]) -> int:
    hops = 0
    while pid in parent and hops < 1_000:
        pid, hops = parent[pid], hops + 1
    return pid
