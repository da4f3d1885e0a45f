"""Live decisions from memory: a serving cache per person, and a decision log written behind.

A decision server answers many decisions a second; reading the person from the store on each
one costs more than the decision itself. :class:`Serving` keeps, in the process, what
decisions read of the people decided for lately (:class:`ServingCache`): their marketing and
personalization consents, topic, frequency and pause preferences, trait observations (sealed
values opened in batches, :mod:`surmesure.protect.atrest`), segment memberships, the derived
metrics the templates' rules read and their exposure ledger; with the identifiers they were
asked by, every merge, and the first exposure of each content. A decision for someone held
reads nothing from the store and takes no lock; someone else is read in one statement
(:func:`~surmesure.unify.people_read.read_people`) and kept, the least recently used person
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

Recording. The exposures and the decision of each call are queued in the decision log
(:mod:`surmesure.decide.decision_log`) and written by the same thread in batches, at most
``flush_ms`` after the decision (and at shutdown); :meth:`Serving.flush` writes what is pending
(the ``why`` route calls it before reading).
"""

from __future__ import annotations

import atexit
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide import shared_cache
from surmesure.decide.decision_log import DecisionLog, encoded
from surmesure.decide.serving_cache import NOBODY, ServingCache
from surmesure.decide.serving_warm import pack_everyone, take_everyone
from surmesure.decide.shared_cache import SharedCache
from surmesure.decide.whole_view import fingerprint
from surmesure.dispatch.news import SharedNews
from surmesure.domain.segments import METRICS
from surmesure.errors import trace_of
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.people_read import BOUND_IDS, read_people
from surmesure.unify.reader import MetricRows, read_metrics
from surmesure.unify.reader import fetch_rows as _rows

log = logging.getLogger("surmesure.decide.serving")
atexit.register(gc.unfreeze)  # what a view froze is handed back for the interpreter's exit

WARM_SECONDS = 2.0  # how often the recommendation model and the stock are renewed
_EXPOSURES = -1  # the fingerprint's last cell: exposures, of which this server writes some


RELOAD_BATCH = 1_000  # people per statement when the safety net reloads the cache
COMPACT_AT = 20_000
"""People packed again since a packed world was read (dropped from the cache with a new
ledger, changed) that the serving thread moves into a span of their own."""
PACKED_CHECK = 50
"""A packed world's safety net (:meth:`Serving.refresh_if_changed`) runs at most every this
many times its whole read took: it reads everyone again, so it costs at most 2% of a
processor."""
RELEASE_EVERY = 10.0
"""Seconds between two lettings-go of the database pages that re-reads of changed people
cached, in a server holding everyone packed: on DuckDB a person's re-read scans the tables
(nine changes on a million customers cached some 220 MB), and decisions read none of them."""
METRICS_BATCH = 5_000  # people per statement when a derive run's metrics are re-read

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
        packed_people: int = 0,
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.flush_ms = flush_ms
        self.cache_people = cache_people
        self.packed_people = packed_people
        self.warm_seconds = 0.0  # what the last whole read of everyone took
        self._metrics = frozenset(metrics)
        self._view: ServingCache | None = None
        self._view_lock = threading.Lock()  # guards the ledger of the cache, and its swap
        self._build_lock = threading.Lock()
        # held to write the log, and to read what must agree exactly with what it wrote (the
        # fingerprint, the first exposures)
        self._flush_lock = threading.RLock()
        # held to read people into the cache (waits for no write of the log: see
        # decision_log), and to forget or rebuild what the cache holds
        self._load_lock = threading.RLock()
        self._asks: list[_Ask] = []  # misses waiting for a read (:meth:`missed`)
        self._asks_lock = threading.Lock()
        self.log = DecisionLog(store, self._flush_lock)
        """The decisions made here, written behind (``log.written``: exposures written since
        the fingerprint's stamp)."""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unlisten: Callable[[], None] | None = None
        self.reloads = 0  # whole reloads of the cache by the safety net
        self.warmed = 0  # people read into the cache at start, all at once
        self.releases = 0  # times the pages re-reads cached were let go (:data:`RELEASE_EVERY`)
        self._pages_read = False  # people re-read since the pages were last let go
        self._next_release = 0.0
        self.warm_done = threading.Event()  # set once the start's whole read ended (or failed)
        self._warming: set[int] | None = None  # people changed while the cache warms
        self._rewarm = False  # read everyone again at the next turn (after forgetting all)
        self.shared_url = shared_url  # Redis, where the workers of the store share their news
        self._news: SharedNews | None = None
        self.shared_ttl = shared_ttl  # with ``shared_url``: entries shared in Redis this long
        self.shared: SharedCache | None = None
        self.exposed: list[tuple[int, list[str], datetime]] = []  # noted since the last write

    @property
    def warming(self) -> bool:
        """Started, and still reading everyone into memory (:meth:`warm_cache`)."""
        return self._thread is not None and not self.warm_done.is_set()

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
        with self._flush_lock, self._load_lock:
            self.flush()
            cache = ServingCache(self, self._metrics, self.cache_people)
            with self.store.connect() as conn:
                self._whole_parts(conn, cache)
            with self._view_lock:
                self._view, self.log.written = cache, 0
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
        for pid, content_ids, at in self.log.shown():
            cache.note_shown(pid, content_ids, at)

    def missed(
        self, cache: ServingCache, person_ids: Sequence[int], keys: Sequence[tuple[str, str]]
    ) -> None:
        """A decision's miss: :meth:`load` ``person_ids`` and the holders of ``keys``. Misses
        asked while a read is in flight wait for it and are read together after it, up to
        :data:`~surmesure.unify.people_read.BOUND_IDS` ids a statement (a statement for a
        few people costs about what one for a single person does)."""
        ask = _Ask(person_ids, keys)
        with self._asks_lock:
            self._asks.append(ask)
        with self._load_lock:
            if ask.done:  # read with another's
                return
            with self._asks_lock:
                taken, size = [ask], ask.size
                for other in self._asks:
                    if other is not ask and size + other.size <= BOUND_IDS:
                        taken.append(other)
                        size += other.size
                self._asks = [a for a in self._asks if a not in taken]
            pids = list(dict.fromkeys(p for a in taken for p in a.person_ids))
            wanted = list(dict.fromkeys(k for a in taken for k in a.keys))
            self.load(cache, pids, wanted)
            for done in taken:
                done.done = True

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
        with self._load_lock:
            packed = cache.packed
            read = (
                [p for p in person_ids if p in cache.reads or (packed is not None and p in packed)]
                if only_held
                else person_ids
            )
            shown = None
            for _ in range(3):  # a read longer than the log keeps its flushes: read again
                since = self.log.generation
                if self.shared is not None and not only_held:  # a change is read from the store
                    found, statements = shared_cache.read_through(
                        self.shared, person_ids, keys, cache.metrics, defer=True
                    )
                    cache.loads += statements
                else:
                    with self.store.connect() as conn:
                        found = read_people(
                            conn, read, keys=keys, metrics=cache.metrics, named=person_ids
                        )
                    cache.loads += 1
                shown = self.log.shown_since(since, found.reads)
                if shown is not None:
                    break
            if shown is None:  # the store that slow: what is still in memory, at least
                log.warning("serving: a read outlasted the decision log's memory of its writes")
                shown = self.log.shown(found.reads)
            for pid, content_ids, at in shown:
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

    def bought(self, person_ids: Iterable[int]) -> None:
        """The dispatcher's news of orders: what recommendations know of these buyers is read
        again (:func:`surmesure.decide.recommend.model.bought`), then the other workers are
        told, when they share the news."""
        buyers = frozenset(person_ids)
        _buyers_read(self.store, buyers)
        if self._news is not None:
            self._news.tell_buyers(buyers)

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
        if cache.packed is not None:  # the packed people's, with everyone, by the thread
            self._rewarm = True
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
        self._pages_read = True

    def forget(self) -> None:
        """Drop every person and identifier held (an erasure named nobody); the next decision
        for each reads them again, or, when the cache held everyone, the serving thread reads
        everyone again at once."""
        cache = self._view
        if cache is None:
            return
        with self._flush_lock, self._load_lock:  # no read in flight fills the cache after
            with self.store.connect() as conn:
                self._whole_parts(conn, cache)
            self.log.written = 0
            with self._view_lock:
                was_complete, cache.complete = cache.complete, False
                cache.let_go()
        self._rewarm = was_complete  # a cache that held everyone reads everyone again

    def warm_cache(self) -> int:
        """Read everyone into the cache at once when they fit in it (at most ``cache_people``
        people), or else packed (at most ``packed_people``, :func:`~surmesure.decide.serving_warm.
        pack_everyone`): one pass
        per table, about a hundred times less time a person than reading each on a miss, so
        that after start-up no decision waits for a read (the first ones may, until this
        ends). Those changed meanwhile are read again after. How many people it took in."""
        cache = self._view
        if cache is None or self.cache_people <= 0:
            return 0
        p = schema.people
        with self.store.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(p).where(p.c.merged_into.is_(None))
            ).scalar_one()
        if count > max(self.cache_people, self.packed_people):
            return 0
        started = time.perf_counter()
        self._warming = set()
        try:
            if count <= self.cache_people:
                taken = take_everyone(self, cache)
            else:
                taken = pack_everyone(self, cache)
        finally:
            changed, self._warming = self._warming, None
        self.warm_seconds = time.perf_counter() - started
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
        # the pages of that whole read, cached by the database in this process (a gigabyte on
        # a million customers), are not read again: decisions read the cache
        freed = self.store.release_read_cache()
        log.info(
            "serving cache warmed with %d people in %.1f s (%d MB of read pages let go)",
            taken, self.warm_seconds, freed // 2**20,
        )  # fmt: skip
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
            expected, found = list(current.stamp), list(now)
            if self._news is None:
                expected[_EXPOSURES] = int(expected[_EXPOSURES] or 0) + self.log.written
            else:  # the other workers' exposures come as news (heard_exposures)
                expected[_EXPOSURES] = found[_EXPOSURES] = None
            if found == expected:
                return False
            started = time.perf_counter()
            with self._load_lock:  # no read in flight fills the cache after
                with self.store.connect() as conn:
                    self._whole_parts(conn, current)
                self.log.written = 0
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
        decision = encoded(decision)
        with self._view_lock:
            if person_id is not None and exposures and self._view is not None:
                self._view.note_shown(person_id, [x["content_id"] for x in exposures], at)
            self.log.queue(exposures, decision)
        if self._thread is None:  # nobody writes behind: write now
            self.flush()

    def flush(self) -> int:
        """Write the queued decisions (:meth:`DecisionLog.flush`); how many."""
        return self.log.flush()

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
            self._unlisten = people.listen(
                self.changed, metrics=self.metrics_changed, orders=self.bought
            )
            if self.shared_url:
                self._news = SharedNews(
                    self.shared_url,
                    self.store.url,
                    self.reread,
                    self.reread_metrics,
                    on_buyers=lambda buyers: _buyers_read(self.store, buyers),
                    on_exposures=self.heard_exposures,
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
        if self._news is not None:
            self._news.tell_exposures(exposed)

    def heard_exposures(self, exposed: list[tuple[int, list[str], datetime]]) -> None:
        """Another worker wrote these exposures: they enter the ledgers held here."""
        with self._view_lock:
            cache = self._view
            if cache is None:
                return
            for pid, content_ids, at in exposed:
                cache.note_shown(cache._root(pid), content_ids, at, told=True)

    def _check_every(self) -> float:
        """Seconds until the next safety net: ``refresh_seconds``, or for a packed world at
        least :data:`PACKED_CHECK` times its whole read."""
        cache = self._view
        if cache is not None and cache.packed is not None:
            return max(self.refresh_seconds, PACKED_CHECK * self.warm_seconds)
        return self.refresh_seconds

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
                    next_check = time.monotonic() + self._check_every()
                cache = self._view
                packed = None if cache is None else cache.packed
                if cache is not None and packed is not None and len(packed.since) >= COMPACT_AT:
                    cache.compact()
                if packed is not None:
                    self._release_pages()
                if time.monotonic() >= next_warm:
                    self._warm()
                    next_warm = time.monotonic() + WARM_SECONDS
            except Exception as exc:  # keep serving from the cache in hand; the next turn retries
                log.error("serving: refresh or write failed\n%s", trace_of(exc))

    def _release_pages(self) -> None:
        """Let go of the pages re-reads cached, at most every :data:`RELEASE_EVERY` (the
        server's memory then stays near what it was once ready, however many changes come)."""
        if not self._pages_read or time.monotonic() < self._next_release:
            return
        self._pages_read = False
        self._next_release = time.monotonic() + RELEASE_EVERY
        freed = self.store.release_read_cache()
        self.releases += 1
        log.debug("serving: %d MB of pages read for changes let go", freed // 2**20)


class _Ask:
    """A miss waiting for a read: the people and identifiers it needs, and whether they were
    read (with another miss's)."""

    __slots__ = ("done", "keys", "person_ids", "size")

    def __init__(self, person_ids: Sequence[int], keys: Sequence[tuple[str, str]]) -> None:
        self.person_ids, self.keys = person_ids, keys
        self.size = len(person_ids) + len(keys)
        self.done = False


def _buyers_read(store: Store, buyers: frozenset[int]) -> None:
    """What recommendations know of ``buyers``, read again (when they are installed)."""
    try:
        from surmesure.decide.recommend import model
    except ImportError:
        return
    model.bought(store, buyers)
