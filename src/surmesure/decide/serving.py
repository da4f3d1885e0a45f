"""Live decisions from memory: a serving cache per person, and a decision log written behind.

A decision server answers many decisions a second; reading the person from the store on each
one costs more than the decision itself. :class:`Serving` keeps, in the process, what
decisions read of the people decided for lately (:class:`ServingCache`): their marketing and
personalization consents, topic, frequency and pause preferences, trait observations (sealed
values opened in batches, :mod:`surmesure.protect.atrest`), segment memberships, the derived
metrics the templates' rules read and their exposure ledger; with the identifiers they were
asked by, every merge, and the first exposure of each content. A decision for someone held
reads nothing from the store and takes no lock; someone else is read in one statement
(:func:`~surmesure.unify.reader.read_people`) and kept, the least recently used person
dropped past ``cache_people``, so memory follows that bound rather than the customer count.

Freshness. The dispatcher tells the cache, after each delivery has committed, whom the stored
changes concern (:func:`surmesure.dispatch.people.listen`): those it holds are re-read, one
statement per batch, with the identifiers and merges of all of them (a visitor remembered as
nobody is found once identified, a merge undone parts the two people again); after a derive
run, the derived metrics of everyone held are read again, in one pass over that table alone
(:meth:`Serving.reread_metrics`). As a safety net for writers that tell nobody, a background
thread compares a cheap fingerprint of the source tables (counts and latest times) every
``refresh_seconds`` and, when it changed, re-reads every person held. Exposures made by this
server enter the ledger at once. When everyone fits in the cache, it is read whole once at
start (:func:`surmesure.decide.whole_view.build_view`, one pass per table).

Shared. With Redis (``shared_url`` and ``shared_ttl``), a miss asks the entries the API
workers of the store share there before the store (:mod:`surmesure.decide.shared_cache`), and
what the store gives is written back, sealed, for the next worker that misses.

Recording. The exposures and the decision of each call are queued and written by the same
thread in one transaction per batch, at most ``flush_ms`` after the decision (and at shutdown);
:meth:`Serving.flush` writes what is pending (the ``why`` route calls it before reading).
"""

from __future__ import annotations

import atexit
import gc
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide import shared_cache
from surmesure.decide.shared_cache import SharedCache
from surmesure.decide.whole_view import build_view, fingerprint
from surmesure.dispatch.news import SharedNews
from surmesure.domain.segments import METRICS
from surmesure.errors import trace_of
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.reader import (
    HeldReader,
    MetricRows,
    PeopleRead,
    PersonRead,
    read_metrics,
    read_people,
)
from surmesure.unify.reader import fetch_rows as _rows

log = logging.getLogger("surmesure.decide.serving")
atexit.register(gc.unfreeze)  # what a view froze is handed back for the interpreter's exit

WARM_SECONDS = 2.0  # how often the recommendation model and the stock are renewed
_EXPOSURES = -1  # the fingerprint's last cell: exposures, of which this server writes some


NOBODY = None
"""A cached answer: no root person has this id (or no person holds this identifier)."""
RELOAD_BATCH = 1_000  # people per statement when the safety net reloads the cache
METRICS_BATCH = 5_000  # people per statement when a derive run's metrics are re-read


class ServingCache(HeldReader):
    """What live decisions read, per person, kept for the people decided for lately.

    ``reads`` holds at most ``limit`` people's rows (:class:`PersonRead`, the whole exposure
    ledger of each in ``seen``), least recently used first; ``ids`` at most ``2 x limit``
    identifiers (``(kind, blind index)`` -> person id, or :data:`NOBODY`); ``roots`` every
    merged person (few); ``first_shown`` the first exposure of each content. A hit reads
    dictionaries alone, with no lock; a miss reads the person from the store in one
    statement (:func:`~surmesure.unify.reader.read_people`) under the owner's load lock."""

    def __init__(self, owner: Serving, metrics: frozenset[str], limit: int) -> None:
        self.owner = owner
        self.metrics = metrics
        self.limit = limit
        self.reads: OrderedDict[int, PersonRead | None] = OrderedDict()
        self.ids: OrderedDict[tuple[str, str], int | None] = OrderedDict()
        self.roots: dict[int, int] = {}
        self.first_shown: dict[str, datetime] = {}
        self.stamp: tuple[Any, ...] = ()
        self.loads = 0  # statements read for misses and changes
        self.complete = False
        """Everyone and every identifier is held (read whole at start, kept by the news of
        changes since): an identifier not held is nobody's, with no read (a new visitor)."""

    # -- decisions -----------------------------------------------------------------------------

    def person_id(self, person_id: int | None, keys: Sequence[tuple[str, str]]) -> int | None:
        """The person a request names, as :func:`~surmesure.unify.reader.read_person`
        finds them: a person id follows its merges; else the first identifier known."""
        if person_id is not None:
            root = self._root(person_id)
            return root if self._entry(root) is not None else None
        found = [self._lookup(k) for k in keys]
        missing = [k for k, f in zip(keys, found, strict=True) if f is _UNKNOWN]
        if missing:
            self.owner.load(self, (), missing)
            found = [self.ids.get(k, NOBODY) for k in keys]
        for pid in found:
            if pid is not None and pid is not _UNKNOWN:
                root = self._root(pid)
                if self._entry(root) is not None:
                    return root
        return None

    def read(self, person_id: int | None, content_ids: Iterable[str], now: datetime) -> PersonRead:
        """What :func:`~surmesure.unify.reader.read_person` returns at ``now``."""
        wanted = set(content_ids)
        before = {c for c in wanted if (t := self.first_shown.get(c)) is not None and t < now}
        if person_id is None:
            return PersonRead(None, shown_before=before)
        base = self._entry(person_id)
        if base is None:
            return PersonRead(person_id, shown_before=before)
        seen = {c: t for c, t in base.seen.items() if c in wanted and t <= now}
        return replace(
            base,
            consents=[c for c in base.consents if c.recorded_at <= now],
            preferences=[p for p in base.preferences if p.recorded_at <= now],
            observations=[o for o in base.observations if o.observed_at <= now],
            seen=seen,
            shown_before=before,
        )

    def note_shown(self, person_id: int, content_ids: Iterable[str], at: datetime) -> None:
        """Exposures this server made: known to the next decision at once."""
        if self.owner.shared is not None:
            self.owner.exposed.append((person_id, list(content_ids), at))
        entry = self.reads.get(person_id)
        if entry is not None:
            # a new ledger rather than a change to the one a decision may be reading
            seen = dict(entry.seen)
            for c in content_ids:
                if c not in seen or seen[c] < at:
                    seen[c] = at
            object.__setattr__(entry, "seen", seen)
        for c in content_ids:
            if c not in self.first_shown or at < self.first_shown[c]:
                self.first_shown[c] = at

    def _root(self, person_id: int) -> int:
        hops = 0
        while person_id in self.roots and hops < 1_000:
            person_id, hops = self.roots[person_id], hops + 1
        return person_id

    def _lookup(self, key: tuple[str, str]) -> Any:
        try:
            found = self.ids[key]
        except KeyError:
            return NOBODY if self.complete else _UNKNOWN
        try:  # noqa: SIM105 (a plain try costs less than a context manager on every hit)
            self.ids.move_to_end(key)
        except KeyError:  # evicted meanwhile by another thread
            pass
        return found

    def _entry(self, person_id: int) -> PersonRead | None:
        """The person's rows; read from the store on a miss."""
        try:
            entry = self.reads[person_id]
        except KeyError:
            self.owner.load(self, (person_id,), ())
            return self.reads.get(person_id)
        try:  # noqa: SIM105 (a plain try costs less than a context manager on every hit)
            self.reads.move_to_end(person_id)
        except KeyError:  # evicted meanwhile by another thread
            pass
        return entry

    # -- filling -------------------------------------------------------------------------------

    def fill(
        self,
        found: PeopleRead,
        person_ids: Iterable[int],
        keys: Iterable[tuple[str, str]],
        *,
        only_held: bool = False,
    ) -> None:
        """Take what one statement read: ``person_ids`` and ``keys`` asked (those not found are
        cached as :data:`NOBODY`); with ``only_held``, people and identifiers not cached are
        left out (a change to someone nobody asked about is read when first asked)."""
        self.roots.update(found.absorbed)
        for absorbed in found.absorbed:
            self.reads.pop(absorbed, None)
        for pid in person_ids:  # a merge undone: the absorbed one is a person again
            if pid in self.roots and pid not in found.absorbed:
                self.roots.pop(pid, None)
        for key, pid in found.identifiers.items():
            if not only_held or self.complete or key in self.ids:
                self.ids[key] = pid
        for key in keys:
            if key not in found.identifiers:
                self.ids[key] = NOBODY
        for pid in person_ids:
            if pid not in found.reads and (not only_held or pid in self.reads):
                self.reads[pid] = NOBODY
        for pid, entry in found.reads.items():
            if not only_held or pid in self.reads:
                self.reads[pid] = entry
                self.reads.move_to_end(pid)
        while len(self.reads) > self.limit:
            self.reads.popitem(last=False)
        while len(self.ids) > 2 * self.limit:
            self.ids.popitem(last=False)
            self.complete = False


_UNKNOWN: Any = object()  # not cached either way
_EVERYONE = -1  # among the people changed while the cache warms: an erasure (forget all)
_METRICS = -2  # among them: a derive run stored metrics (re-read everyone's)


class Serving:
    """The serving cache of one store, kept fresh, and the decision log written behind it."""

    def __init__(
        self,
        store: Store,
        *,
        metrics: Iterable[str] = (),
        refresh_seconds: float = 60.0,
        flush_ms: float = 250.0,
        cache_people: int = 100_000,
        shared_url: str | None = None,
        shared_ttl: int = 0,
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.flush_ms = flush_ms
        self.cache_people = cache_people
        self._metrics = frozenset(metrics)
        self._view: ServingCache | None = None
        self._view_lock = threading.Lock()  # guards the ledger of the cache, and its swap
        self._build_lock = threading.Lock()
        self._pending: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        self._pending_lock = threading.Lock()
        # held to write the log and to read people: a read then sees every exposure of this
        # server, either written or still pending
        self._flush_lock = threading.RLock()
        self._written = 0  # exposures written by this server since the fingerprint's stamp
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unlisten: Callable[[], None] | None = None
        self.reloads = 0  # whole reloads of the cache by the safety net
        self.warmed = 0  # people read into the cache at start, all at once
        self.warm_done = threading.Event()  # set once the start's whole read ended (or failed)
        self._warming: set[int] | None = None  # people changed while the cache warms
        self._rewarm = False  # read everyone again at the next turn (after forgetting all)
        self.shared_url = shared_url  # Redis, where the workers of the store share their news
        self._news: SharedNews | None = None
        self.shared_ttl = shared_ttl  # with ``shared_url``: entries shared in Redis this long
        self.shared: SharedCache | None = None
        self.exposed: list[tuple[int, list[str], datetime]] = []  # noted since the last write

    # -- the cache -----------------------------------------------------------------------------

    def view_or_none(self) -> ServingCache | None:
        """The current cache, if one was made."""
        return self._view

    def view(self, metrics: Iterable[str] = ()) -> ServingCache:
        """The current cache; made now when there is none yet or when it lacks a metric."""
        current = self._view
        needed = frozenset(m for m in metrics if m in METRICS)
        if current is None or not needed <= current.metrics:
            with self._build_lock:
                current = self._view
                if current is None or not needed <= current.metrics:
                    self._metrics |= needed
                    current = self._fresh()
        return current

    def _fresh(self) -> ServingCache:
        """An empty cache, with the merges and the first exposure of each content."""
        with self._flush_lock:
            self.flush()
            cache = ServingCache(self, self._metrics, self.cache_people)
            with self.store.connect() as conn:
                self._whole_parts(conn, cache)
            with self._view_lock:
                self._view, self._written = cache, 0
        return cache

    def _whole_parts(self, conn: Connection, cache: ServingCache) -> None:
        """What the cache keeps of everyone: the merges, the first exposure of each content
        (then the pending decisions' exposures), and the fingerprint."""
        cache.stamp = fingerprint(conn)
        p, e = schema.people, schema.exposures
        parents = {
            int(pid): int(into)
            for pid, into in _rows(
                conn, sa.select(p.c.person_id, p.c.merged_into).where(p.c.merged_into.is_not(None))
            )
        }
        cache.roots = parents
        cache.first_shown = {
            str(content_id): first
            for content_id, first in _rows(
                conn, sa.select(e.c.content_id, sa.func.min(e.c.shown_at)).group_by(e.c.content_id)
            )
        }
        with self._pending_lock:
            pending = list(self._pending)
        for exposures, decision in pending:
            if decision["person_id"] is not None and exposures:
                cache.note_shown(
                    decision["person_id"],
                    [x["content_id"] for x in exposures],
                    decision["decided_at"],
                )

    def load(
        self,
        cache: ServingCache,
        person_ids: Sequence[int],
        keys: Sequence[tuple[str, str]],
        *,
        only_held: bool = False,
    ) -> None:
        """Read ``person_ids`` and the holders of ``keys`` in one statement into ``cache``,
        with this server's pending exposures; with ``only_held``, refresh those it holds (of
        the others, the identifiers and merges alone are read)."""
        with self._flush_lock:
            if self.shared is not None and not only_held:  # a change is read from the store
                found, statements = shared_cache.read_through(
                    self.shared, person_ids, keys, cache.metrics, defer=True
                )
                cache.loads += statements
            else:
                read = [p for p in person_ids if p in cache.reads] if only_held else person_ids
                with self.store.connect() as conn:
                    found = read_people(
                        conn, read, keys=keys, metrics=cache.metrics, named=person_ids
                    )
                cache.loads += 1
            with self._pending_lock:
                pending = [
                    (d["person_id"], [x["content_id"] for x in xs], d["decided_at"])
                    for xs, d in self._pending
                    if xs and d["person_id"] in found.reads
                ]
            for pid, content_ids, at in pending:
                seen = found.reads[pid].seen
                for c in content_ids:
                    if c not in seen or seen[c] < at:
                        seen[c] = at
            with self._view_lock:
                cache.fill(found, person_ids, keys, only_held=only_held)

    def changed(self, person_ids: Iterable[int]) -> None:
        """The dispatcher's news (:func:`surmesure.dispatch.people.listen`): re-read these
        people (:meth:`reread`), then tell the other workers, when they share the news."""
        people = frozenset(person_ids)
        warming = self._warming
        if warming is not None:
            warming.update(people or {_EVERYONE})
        shared_cache.changed(self.shared, people)  # before any other worker hears of it
        self.reread(people)
        if self._news is not None:
            self._news.tell(people)

    def metrics_changed(self) -> None:
        """The dispatcher's news of a derive run (:func:`surmesure.dispatch.people.listen`):
        re-read the metrics of everyone held (:meth:`reread_metrics`), then tell the other
        workers, when they share the news."""
        warming = self._warming
        if warming is not None:
            warming.add(_METRICS)
        shared_cache.new_generation(self.shared)
        self.reread_metrics()
        if self._news is not None:
            self._news.tell_metrics()

    def reread_metrics(self) -> None:
        """Re-read the derived metrics of every person held: a derive run rewrote them for
        many people at once, and nothing else of theirs (one pass over ``derived_metrics``
        for a cache that holds many people, one statement per :data:`METRICS_BATCH` for a
        few)."""
        cache = self._view
        if cache is None or not cache.metrics:
            return
        started = time.perf_counter()
        with self._flush_lock:
            held = [pid for pid, entry in list(cache.reads.items()) if entry is not None]
            batches: list[list[int] | None] = (
                [None]  # everyone's rows in one pass: 0.5 s for 30,000 people on DuckDB
                if len(held) > 2 * METRICS_BATCH
                else [held[i : i + METRICS_BATCH] for i in range(0, len(held), METRICS_BATCH)]
            )
            found: dict[int, MetricRows] = {}
            with self.store.connect() as conn:
                for batch in batches:
                    found |= read_metrics(conn, cache.metrics, batch)
                    cache.loads += 1
            with self._view_lock:
                for pid in held:
                    entry = cache.reads.get(pid)
                    if entry is not None:
                        fresh = found.get(pid, {})
                        if fresh != entry.metrics:
                            cache.reads[pid] = replace(entry, metrics=fresh)
        log.info(
            "serving cache: metrics re-read in %.2f s (%d people)",
            time.perf_counter() - started,
            len(held),
        )

    def reread(self, person_ids: Iterable[int]) -> None:
        """Re-read these people, one statement per batch, where the cache holds them (their
        new identifiers and merges always); none: forget everyone (an erasure)."""
        cache = self._view
        if cache is None:
            return
        ordered = sorted(person_ids)
        if not ordered:  # an erasure (:data:`surmesure.dispatch.people.ANYONE`): forget all
            self.forget()
            return
        for start in range(0, len(ordered), RELOAD_BATCH):
            self.load(cache, ordered[start : start + RELOAD_BATCH], (), only_held=True)

    def forget(self) -> None:
        """Drop every person and identifier held (an erasure named nobody); the next decision
        for each reads them again, or, when the cache held everyone, the serving thread reads
        everyone again at once."""
        cache = self._view
        if cache is None:
            return
        with self._flush_lock:
            with self.store.connect() as conn:
                self._whole_parts(conn, cache)
            self._written = 0
            with self._view_lock:
                was_complete, cache.complete = cache.complete, False
                cache.reads.clear()
                cache.ids.clear()
        self._rewarm = was_complete  # a cache that held everyone reads everyone again

    def warm_cache(self) -> int:
        """Read everyone into the cache at once when they fit in it (at most ``cache_people``
        people): one pass per table, about a hundred times less time a person than reading
        each on a miss, so that after start-up no decision waits for a read (the first ones
        may, until this ends). Those already held (read on a miss meanwhile) are kept; those
        changed meanwhile are read again after. How many people it took in."""
        cache = self._view
        if cache is None or self.cache_people <= 0:
            return 0
        p = schema.people
        with self.store.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(p).where(p.c.merged_into.is_(None))
            ).scalar_one()
        if count > self.cache_people:
            return 0
        self._warming = set()
        try:
            with self.store.connect() as conn:
                whole = build_view(conn, cache.metrics)
            with self._pending_lock:
                pending = [
                    (d["person_id"], [x["content_id"] for x in xs], d["decided_at"])
                    for xs, d in self._pending
                    if xs and d["person_id"] is not None
                ]
            with self._view_lock:
                cache.complete = False
                taken = 0
                for pid in whole.people:  # someone with no rows yet reads as empty
                    if pid not in cache.reads and len(cache.reads) < cache.limit:
                        read = whole.reads.get(pid) or PersonRead(pid)
                        cache.reads[pid] = replace(read, seen=dict(whole.seen.get(pid, {})))
                        taken += 1
                whole_ids = len(whole.ids) <= 2 * cache.limit
                for key, pid in whole.ids.items():
                    if len(cache.ids) >= 2 * cache.limit:
                        break
                    cache.ids.setdefault(key, pid)
                for pid, content_ids, at in pending:  # not written yet: not in the store
                    if pid in cache.reads:
                        cache.note_shown(pid, content_ids, at)
                cache.complete = whole_ids and all(p in cache.reads for p in whole.people)
        finally:
            changed, self._warming = self._warming, None
        if _EVERYONE in changed:
            self.forget()
        else:
            if _METRICS in changed:
                changed.discard(_METRICS)
                self.reread_metrics()
            if changed:
                self.reread(changed)
        self.warmed = taken
        # the people read stay: out of the collector's full passes, which would otherwise walk
        # them all (some 130 ms holding the interpreter at 5,000 customers) every so often;
        # one evicted or re-read later is still freed by its reference counts
        gc.collect(1)
        gc.freeze()
        log.info("serving cache warmed with %d people", taken)
        return taken

    def refresh_if_changed(self) -> bool:
        """The safety net for writers that do not notify: when the store changed since the
        last check (beyond the exposures this server wrote), re-read every person the cache
        holds, in batches, and forget the identifiers it knew no one by; ``True`` when it
        did."""
        current = self._view
        if current is None:
            self.view()
            return True
        with self._flush_lock:
            self.flush()
            with self.store.connect() as conn:
                now = fingerprint(conn)
            expected = list(current.stamp)
            expected[_EXPOSURES] = int(expected[_EXPOSURES] or 0) + self._written
            if list(now) == expected:
                return False
            started = time.perf_counter()
            with self.store.connect() as conn:
                self._whole_parts(conn, current)
            self._written = 0
            with self._view_lock:  # a visitor remembered as nobody may be somebody now
                if current.complete:  # someone the news did not name may be new: read all
                    current.complete, self._rewarm = False, True
                for key, pid in list(current.ids.items()):
                    if pid is NOBODY:
                        current.ids.pop(key, None)
            held = list(current.reads)
        self.reread(held)
        self.reloads += 1
        log.info(
            "serving cache re-read in %.2f s (%d people)", time.perf_counter() - started, len(held)
        )
        return True

    # -- recording -----------------------------------------------------------------------------

    def record(
        self,
        person_id: int | None,
        exposures: list[dict[str, Any]],
        decision: dict[str, Any],
        at: datetime,
    ) -> None:
        """Queue one decision and its exposures; the ledger knows them at once."""
        # encoded now: text waits for the writer without the collector walking a tree of
        # dicts and lists (kept alive, those would swell the collector's full passes)
        decision = _encoded(decision)
        with self._view_lock:
            if person_id is not None and exposures and self._view is not None:
                self._view.note_shown(person_id, [x["content_id"] for x in exposures], at)
            with self._pending_lock:
                self._pending.append((exposures, decision))
        if self._thread is None:  # nobody writes behind: write now
            self.flush()

    def flush(self) -> int:
        """Write every queued decision and exposure in one transaction; how many decisions."""
        with self._flush_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            exposures = [x for xs, _ in batch for x in xs]
            decisions = [d for _, d in batch]
            # ids are new (uuid4): a plain insert, about a third of the time of DuckDB's
            # ON CONFLICT DO NOTHING, which the log never needs
            with self.store.begin() as conn:
                if exposures:
                    self.store.bulk_insert(
                        conn, schema.exposures, _table(exposures, _EXP_TYPES), on_conflict="error"
                    )
                sealed = atrest.seal_decisions(
                    conn, decisions, now=decisions[-1]["decided_at"], encoded=True
                )
                rows = [
                    d if s is None else {**d, **dict.fromkeys(_JSON_COLUMNS), "sealed": s}
                    for d, s in zip(decisions, sealed, strict=True)
                ]
                self.store.bulk_insert(
                    conn, schema.decisions, _table(rows, _DEC_TYPES), on_conflict="error"
                )
            self._written += len(exposures)
            return len(decisions)

    # -- lifetime ------------------------------------------------------------------------------

    def _warm(self) -> None:
        """Build what decisions keep besides the view (the recommendation model, the stock)
        here, and renew it before it expires, so that no decision waits for a build."""
        try:
            from surmesure.decide.recommend import inventory, model
        except ImportError:
            return
        margin = 2 * WARM_SECONDS + 1.0
        model.get_model(self.store, None, None, max_age=max(model.NOW_TTL_SECONDS - margin, 1.0))
        inventory.snapshot(
            self.store, None, None, max_age=max(inventory.SNAPSHOT_TTL_SECONDS - margin, 1.0)
        )

    def ensure_started(self, metrics: Iterable[str] = ()) -> None:
        """:meth:`start` unless started (the first decision of a server builds the view),
        holding ``metrics`` (those the templates read) from the first build."""
        if self._thread is None:
            self._metrics |= frozenset(m for m in metrics if m in METRICS)
            with self._build_lock:
                started = self._thread is not None
            if not started:
                self.start()

    def start(self) -> None:
        """Make the cache, listen to the dispatcher's news of people and start the thread that
        writes the log and runs the safety net."""
        from surmesure.dispatch import people

        self.view(self._metrics)
        self._warm()
        # the writer thread's bits of Python work then hold up a decision for at most 1 ms
        # (rather than 5) before the interpreter hands the lock back
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        with self._build_lock:
            if self._thread is not None:
                return
            self._unlisten = people.listen(self.changed, metrics=self.metrics_changed)
            if self.shared_url:
                self._news = SharedNews(
                    self.shared_url, self.store.url, self.reread, self.reread_metrics
                )
                self._news.start()
                if self.shared_ttl > 0:
                    self.shared = shared_cache.connect(self.shared_url, self.store, self.shared_ttl)
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="surmesure-serving", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._news is not None:
            self._news.stop()
            self._news = None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._flush_shared()
        if self.shared is not None:
            self.shared.close()
            self.shared = None

    def _flush_shared(self) -> None:
        """Write the decision log; then the people read from the store since are written
        back to Redis, and the exposures the log wrote join their shared ledgers there."""
        with self._view_lock:
            exposed, self.exposed = self.exposed, []
        self.flush()
        shared_cache.after_write(self.shared, exposed)

    def _run(self) -> None:
        try:
            self.warm_cache()
        except Exception as exc:  # decisions read each person on a miss instead
            log.error("serving: warming the cache failed\n%s", trace_of(exc))
        finally:
            self.warm_done.set()
        next_check = time.monotonic() + self.refresh_seconds
        next_warm = time.monotonic() + WARM_SECONDS
        while not self._stop.is_set():
            woken = self._wake.wait(self.flush_ms / 1000.0)
            try:
                self._flush_shared()
                if self._rewarm:
                    self._rewarm = False
                    self.warm_cache()
                if woken or time.monotonic() >= next_check:
                    self._wake.clear()
                    self.refresh_if_changed()
                    next_check = time.monotonic() + self.refresh_seconds
                if time.monotonic() >= next_warm:
                    self._warm()
                    next_warm = time.monotonic() + WARM_SECONDS
            except Exception as exc:  # keep serving from the cache in hand; the next turn retries
                log.error("serving: refresh or write failed\n%s", trace_of(exc))


_EXP_TYPES = {
    "exposure_id": pa.string(),
    "person_id": pa.int64(),
    "node_id": pa.int64(),
    "content_id": pa.string(),
    "channel": pa.string(),
    "placement": pa.string(),
    "shown_at": pa.timestamp("us"),
    "expires_at": pa.timestamp("us"),
}
_DEC_TYPES = {
    "decision_id": pa.string(),
    "person_id": pa.int64(),
    "placement": pa.string(),
    "context": pa.string(),
    "result": pa.string(),
    "explanation": pa.string(),
    "decided_at": pa.timestamp("us"),
    "sealed": pa.binary(),
}


_JSON_COLUMNS = ("context", "result", "explanation")


def _encoded(decision: dict[str, Any]) -> dict[str, Any]:
    """A decision row with its JSON columns as JSON text."""
    return {
        k: orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        if k in _JSON_COLUMNS
        else v
        for k, v in decision.items()
    }


def _table(rows: list[dict[str, Any]], types: Mapping[str, pa.DataType]) -> pa.Table:
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], type=kind) for name, kind in types.items()}
    )
