"""The serving cache's second level, shared by the API workers of one store through Redis.

A worker's cache (:mod:`surmesure.decide.serving`) that misses a person asks Redis first, in one
round trip for the batch (:meth:`SharedCache.get`); what Redis lacks is read from the store in
one statement, as before, and written back (:meth:`SharedCache.put`, one round trip) for the
next worker that misses. An entry is what the cache keeps of a root person
(:class:`~surmesure.unify.reader.PersonRead`: consents, preferences, trait observations with
sealed values opened, segments, metrics, the whole exposure ledger) with the lookup
identifiers they hold and the people merged into them, as JSON sealed under the person's own
data key (AES-GCM, :mod:`surmesure.protect.crypto`; a person with no key yet gets one): Redis
never holds a trait in the clear, and once the person is erased (their keys destroyed) a copy
left there no longer opens. An entry written expires after ``ttl`` seconds.

Freshness (:mod:`surmesure.dispatch.shared_entries`): a change committed to a person raises
their version and deletes their entry, in the process the change was delivered to; a derive
run starts a new generation; this worker's decisions' exposures, once written to the store,
join each person's shared ledger, kept beside the entry (a decision does not make the entry
stale; a reader takes the later time of each content from either). A write-back
is refused if a version or the generation moved since the worker asked, so nothing read before
a change outlives it in Redis.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from surmesure.clock import utcnow
from surmesure.decide import shared_codec
from surmesure.dispatch import shared_entries
from surmesure.dispatch.shared_entries import Entries, ident
from surmesure.errors import trace_of
from surmesure.protect import atrest, crypto
from surmesure.store.engine import Store
from surmesure.unify.people_read import PeopleRead, read_people
from surmesure.unify.reader import PersonRead

log = logging.getLogger("surmesure.decide.shared_cache")
BACKLOG = 10_000
"""Most reads waiting to be written back (:meth:`SharedCache.defer`)."""


@dataclass
class Asked:
    """What one :meth:`SharedCache.get` found: the entries (as a read from the store would
    give them), the people and identifiers Redis lacked, and the versions to write back
    under."""

    found: PeopleRead
    person_ids: list[int]
    keys: list[tuple[str, str]]
    versions: dict[str, str]  # key suffix (``v:<id>``, ``w:<identifier>``, ``g``) -> as read


class SharedCache:
    """The entries of one store in Redis (``entries``), written to expire after ``ttl`` s."""

    def __init__(self, store: Store, entries: Entries, *, ttl: int) -> None:
        self.store = store
        self.entries = entries
        self.ttl = ttl
        self.hits = 0  # people found in Redis
        self.misses = 0  # people and identifiers Redis lacked
        self.errors = 0  # round trips that failed (the store answered instead)
        self._backlog: list[tuple[Asked, PeopleRead, frozenset[str]]] = []
        self._backlog_lock = threading.Lock()

    def close(self) -> None:
        self.entries.client.close()

    def defer(self, asked: Asked, found: PeopleRead, metrics: frozenset[str]) -> None:
        """:meth:`put` later, in :meth:`write_back` (off the decision's path); past
        :data:`BACKLOG` reads waiting, this one is not shared."""
        with self._backlog_lock:
            if len(self._backlog) < BACKLOG:
                self._backlog.append((asked, found, metrics))

    def write_back(self) -> int:
        """:meth:`put` what waits (a change meanwhile refuses it, as ever); how many entries
        were written."""
        with self._backlog_lock:
            waiting, self._backlog = self._backlog, []
        return sum(self.put(asked, found, metrics) for asked, found, metrics in waiting)

    def get(
        self, person_ids: Sequence[int], keys: Sequence[tuple[str, str]], metrics: frozenset[str]
    ) -> Asked:
        """The entries of ``person_ids`` and of the holders of ``keys`` Redis has (an entry
        of another generation, or that does not open, is missing); Redis unreachable: all
        missing."""
        empty = PeopleRead({}, {}, {})
        try:
            raw = self.entries.read(person_ids, keys)
        except Exception as exc:  # the store answers for an unreachable Redis
            self.errors += 1
            log.warning("shared serving cache unreachable: %s", trace_of(exc))
            return Asked(empty, list(person_ids), list(keys), {})
        generation = shared_codec.text(raw[0])
        versions = {"g": generation}
        sealed: dict[int, tuple[bytes, list[Any]]] = {}
        at = 1
        for pid in person_ids:
            versions[f"v:{pid}"] = shared_codec.text(raw[at])
            if raw[at + 1]:
                sealed[pid] = (bytes(raw[at + 1]), raw[at + 2])
            at += 3
        via: dict[tuple[str, str], int] = {}
        for key in keys:
            versions[f"w:{ident(key)}"] = shared_codec.text(raw[at])
            if raw[at + 1] and raw[at + 3]:
                holder = int(raw[at + 1])
                via[key] = holder
                sealed[holder] = (bytes(raw[at + 3]), raw[at + 4])
            at += 5
        opened = self._open(sealed, generation, metrics)
        found = PeopleRead({}, {}, {})
        for pid, (read, identifiers, absorbed) in opened.items():
            found.reads[pid] = read
            found.identifiers.update(dict.fromkeys(identifiers, pid))
            found.absorbed.update(dict.fromkeys(absorbed, pid))
        missing_ids = [p for p in person_ids if p not in found.reads]
        # an identifier counts only when the entry it leads to still holds it
        missing_keys = [k for k in keys if found.identifiers.get(k) != via.get(k, -1)]
        self.hits += len(found.reads)
        self.misses += len(missing_ids) + len(missing_keys)
        return Asked(found, missing_ids, missing_keys, versions)

    def put(self, asked: Asked, found: PeopleRead, metrics: frozenset[str]) -> int:
        """Write back what the store gave for what Redis lacked, each entry only if the
        versions read before have not moved; how many were written."""
        if not asked.versions or not found.reads:
            return 0
        wanted: dict[int, dict[str, str]] = {}
        for pid in asked.person_ids:
            if pid in found.reads:
                wanted[pid] = {"g": asked.versions["g"], f"v:{pid}": asked.versions[f"v:{pid}"]}
        names: dict[int, list[tuple[str, str]]] = {}
        for key in asked.keys:
            holder = found.identifiers.get(key)
            if holder is not None and holder in found.reads:
                name = f"w:{ident(key)}"
                wanted.setdefault(holder, {"g": asked.versions["g"]})[name] = asked.versions[name]
                names.setdefault(holder, []).append(key)
        if not wanted:
            return 0
        sealed = self._seal(sorted(wanted), found, metrics)
        writes = []
        for pid, expected in wanted.items():
            values = {f"e:{pid}": asked.versions["g"].encode() + b":" + sealed[pid]}
            for key in names.get(pid, ()):
                values[f"i:{ident(key)}"] = str(pid).encode()
            writes.append((expected, values))
        try:
            return self.entries.write(writes, self.ttl)
        except Exception as exc:  # not shared this time; the next miss tries again
            self.errors += 1
            log.warning("shared serving cache unreachable: %s", trace_of(exc))
            return 0

    def _seal(self, ids: list[int], found: PeopleRead, metrics: frozenset[str]) -> dict[int, bytes]:
        """Each person's entry sealed under their own data key (made when they have none)."""
        texts = {pid: shared_codec.encode(found, pid, metrics) for pid in ids}
        with self.store.connect() as conn:
            ring = atrest.keyring(conn)
            keys = ring.keys(conn, ids)
        missing = [p for p in ids if p not in keys]
        if missing:
            with self.store.begin() as conn:
                keys |= ring.keys(conn, missing, now=utcnow())
        return {pid: crypto.seal_with(keys[pid], pid, texts[pid]) for pid in ids}

    def _open(
        self,
        sealed: dict[int, tuple[bytes, list[Any]]],
        generation: str,
        metrics: frozenset[str],
    ) -> dict[int, tuple[PersonRead, list[tuple[str, str]], list[int]]]:
        """The entries of this generation that open (their key kept, the seal whole) and
        hold every metric asked for, each with the exposures written since it was."""
        current, ledgers = {}, {}
        for pid, (value, ledger) in sealed.items():
            written, _, body = value.partition(b":")
            if written.decode() == generation:
                current[pid] = body
                ledgers[pid] = [shared_codec.text(x) for x in ledger]
        if not current:
            return {}
        with self.store.connect() as conn:
            keys = atrest.keyring(conn).keys(conn, sorted(current))
        out = {}
        for pid, body in current.items():
            key = keys.get(pid)
            if key is None:  # erased: the key is gone, the entry with it
                continue
            try:
                data = orjson.loads(crypto.open_with(key, pid, body))
            except ValueError:
                log.warning("shared serving cache: entry of %d does not open; read again", pid)
                continue
            if not metrics <= set(data["metrics"]):
                continue
            seen = data["e"]
            pairs = ledgers[pid]
            for content, at in zip(pairs[::2], pairs[1::2], strict=True):
                if content not in seen or shared_codec.when(seen[content]) < shared_codec.when(at):
                    seen[content] = at
            out[pid] = shared_codec.decode(pid, data)
        return out


def connect(url: str, store: Store, ttl: int) -> SharedCache:
    """The shared entries of ``store`` in the Redis at ``url``, written to last ``ttl`` s."""
    entries = shared_entries.connect(url, store.url, ttl=ttl)
    return SharedCache(store, entries, ttl=ttl)


def read_through(
    shared: SharedCache,
    person_ids: Sequence[int],
    keys: Sequence[tuple[str, str]],
    metrics: frozenset[str],
    *,
    defer: bool = False,
) -> tuple[PeopleRead, int]:
    """What :func:`~surmesure.unify.people_read.read_people` would read of ``person_ids`` (named)
    and the holders of ``keys``: from Redis where it has them, the rest from the store in
    one statement, then written back (with ``defer``, by :meth:`SharedCache.write_back`
    later); with how many statements the store ran."""
    asked = shared.get(person_ids, keys, metrics)
    found = asked.found
    if not asked.person_ids and not asked.keys:
        return found, 0
    with shared.store.connect() as conn:
        read = read_people(
            conn, asked.person_ids, keys=asked.keys, metrics=metrics, named=asked.person_ids
        )
    if defer:
        shared.defer(asked, read, metrics)
    else:
        shared.put(asked, read, metrics)
    found.reads.update(read.reads)
    found.identifiers.update(read.identifiers)
    found.absorbed.update(read.absorbed)
    return found, 1


def changed(shared: SharedCache | None, person_ids: Iterable[int]) -> None:
    """A change to these people committed (the dispatcher told this process): their entries
    and those of the identifiers they hold out of Redis, once for every worker."""
    people = sorted(set(person_ids))
    if shared is None or not people:
        return
    try:
        with shared.store.connect() as conn:
            shared_entries.invalidate(shared.entries, conn, people)
    except Exception as exc:  # the TTL bounds what a lost invalidation leaves behind
        shared.errors += 1
        log.error("shared serving cache: invalidation failed\n%s", trace_of(exc))


def new_generation(shared: SharedCache | None) -> None:
    """A derive run stored metrics: every entry written so far is stale."""
    if shared is None:
        return
    try:
        shared.entries.new_generation()
    except Exception as exc:
        shared.errors += 1
        log.error("shared serving cache: new generation failed\n%s", trace_of(exc))


def after_write(
    shared: SharedCache | None, exposures: Iterable[tuple[int, list[str], datetime]]
) -> None:
    """This worker wrote its decision log, with these exposures ``(person, contents, time)``:
    the people it read from the store since are written back (:meth:`SharedCache.write_back`),
    and the exposures join the people's shared ledgers (an entry's own ledger is the store's
    when it was read)."""
    if shared is None:
        return
    shared.write_back()
    ledgers: dict[int, dict[str, datetime]] = {}
    for pid, contents, at in exposures:
        seen = ledgers.setdefault(pid, {})
        for content in contents:
            if content not in seen or seen[content] < at:
                seen[content] = at
    if not ledgers:
        return
    texts = {pid: {c: at.isoformat() for c, at in seen.items()} for pid, seen in ledgers.items()}
    try:
        shared.entries.expose(texts, shared.ttl + 60)  # outlives an entry written meanwhile
    except Exception as exc:  # the TTL bounds what a lost invalidation leaves behind
        shared.errors += 1
        log.warning("shared serving cache unreachable: %s", trace_of(exc))
