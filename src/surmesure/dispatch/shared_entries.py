"""Where the API workers of one store keep the serving cache's entries in Redis, and how a change
or an erasure takes them out.

Keys, under one prefix per store (``surmesure:entries:<digest of the store's URL>:``):

- ``e:<person id>``: a person's entry (:mod:`surmesure.decide.shared_cache`): the generation it
  was written in, then the person's rows sealed under their data key; it expires after the
  cache's TTL.
- ``i:<kind>:<blind index>``: the person an identifier names (a number; the identifier is
  only held as its blind index), expiring with the entries.
- ``x:<person id>``: the exposures written since (content id -> latest time, ISO text), kept
  apart so that a decision does not make the person's entry stale: a reader takes the later
  of each content's time in the entry and here.
- ``v:<person id>``, ``w:<kind>:<blind index>``: versions, raised by each change to the person,
  or to the person holding the identifier, after it committed.
- ``g``: the generation, raised when a derive run rewrote the metrics of many people at once:
  every entry of an older generation is stale and read as missing.

A worker that misses reads the versions with the entries (one round trip), and, when it read
the store instead, writes its entries back only if none of those versions, nor the generation,
moved meanwhile (:data:`WRITE`, checked and written in Redis at once): a change that commits
while a worker reads the store before it can never leave its stale copy behind. The process a
change is delivered to (an API worker, or with NATS a ``dispatch run`` worker) calls
:func:`invalidate` once, before it tells the others (:mod:`.news`); an erasure calls
:func:`erase` after it committed (the person's data keys are destroyed in its transaction too,
so a copy left in Redis no longer opens anyway).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import LOOKUP_KINDS
from surmesure.store import schema

log = logging.getLogger("surmesure.dispatch.shared_entries")


READ = """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local out = {redis.call('GET', p .. 'g') or '0'}
local function person(pid)
  table.insert(out, redis.call('GET', p .. 'v:' .. pid) or '0')
  table.insert(out, redis.call('GET', p .. 'e:' .. pid) or '')
  table.insert(out, redis.call('HGETALL', p .. 'x:' .. pid))
end
for k = 3, 2 + n do person(ARGV[k]) end
for k = 3 + n, #ARGV do
  table.insert(out, redis.call('GET', p .. 'w:' .. ARGV[k]) or '0')
  local pid = redis.call('GET', p .. 'i:' .. ARGV[k])
  table.insert(out, pid or '')
  if pid then person(pid) else
    table.insert(out, '0'); table.insert(out, ''); table.insert(out, {})
  end
end
return out
"""
"""For person ids then identifiers: the generation, then per person ``version, entry,
ledger``, per identifier ``version, person id, that person's version, entry, ledger`` (``''``
where missing; a ledger is a flat list of content ids and times)."""

EXPOSE = """
for k = 2, #ARGV, 2 do
  local was = redis.call('HGET', KEYS[1], ARGV[k])
  if not was or was < ARGV[k + 1] then redis.call('HSET', KEYS[1], ARGV[k], ARGV[k + 1]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""
"""Keep in the ledger ``KEYS[1]`` the later of each ``content id, ISO time`` pair's time and the
one held, for ``ARGV[1]`` seconds."""

WRITE = """
local n = tonumber(ARGV[1])
for k = 1, n do
  if (redis.call('GET', KEYS[k]) or '0') ~= ARGV[1 + k] then return 0 end
end
local ttl = ARGV[2 + n]
for k = n + 1, #KEYS do redis.call('SET', KEYS[k], ARGV[2 + k], 'EX', ttl) end
return 1
"""
"""Set ``KEYS[n+1:]`` to their values with a TTL if each of ``KEYS[:n]`` (versions and the
generation) still holds the value read before; 1 when written."""


def prefix(store_url: str) -> str:
    """The prefix of one store's keys: its workers share them, another store's do not."""
    return f"surmesure:entries:{hashlib.sha256(store_url.encode()).hexdigest()[:16]}:"


def ident(key: tuple[str, str]) -> str:
    """An identifier ``(kind, blind index)`` as it appears in the keys."""
    return f"{key[0]}:{key[1]}"


def held_identifiers(conn: Connection, person_ids: Iterable[int]) -> list[tuple[str, str]]:
    """The lookup identifiers ``(kind, blind index)`` the people hold now."""
    ids = sorted({int(p) for p in person_ids})
    if not ids:
        return []
    i = schema.identifiers
    rows = conn.execute(
        sa.select(i.c.kind, i.c.value).where(i.c.person_id.in_(ids), i.c.kind.in_(LOOKUP_KINDS))
    )
    return [(str(k), str(v)) for k, v in rows]


class Entries:
    """The keys of one store in one Redis (``client``: a ``redis.Redis``)."""

    def __init__(self, client: Any, store_url: str, *, version_ttl: int) -> None:
        self.client = client
        self.prefix = prefix(store_url)
        self.version_ttl = version_ttl  # outlives any read in flight, then frees the memory
        self._read = client.register_script(READ)
        self._write = client.register_script(WRITE)
        self._expose = client.register_script(EXPOSE)

    def read(self, person_ids: Sequence[int], keys: Sequence[tuple[str, str]]) -> list[Any]:
        """The raw answer of :data:`READ` (one round trip)."""
        args = [self.prefix, len(person_ids), *person_ids, *(ident(k) for k in keys)]
        return list(self._read(keys=[], args=args))

    def write(self, writes: Sequence[tuple[dict[str, str], dict[str, bytes]]], ttl: int) -> int:
        """Each ``(expected, values)``: set ``values`` (key suffix -> bytes) if every key of
        ``expected`` still holds its value; one round trip for all; how many were written."""
        if not writes:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for expected, values in writes:
            keys = [self.prefix + k for k in (*expected, *values)]
            args = [len(expected), *expected.values(), ttl, *values.values()]
            self._write(keys=keys, args=args, client=pipe)
        return sum(int(x) for x in pipe.execute())

    def expose(self, ledgers: dict[int, dict[str, str]], ttl: int) -> None:
        """Exposures written to the store: each person's latest time of each content joins
        their ledger here (one round trip)."""
        if not ledgers:
            return
        pipe = self.client.pipeline(transaction=False)
        for pid, seen in ledgers.items():
            pairs = [x for content, at in seen.items() for x in (content, at)]
            self._expose(keys=[f"{self.prefix}x:{pid}"], args=[ttl, *pairs], client=pipe)
        pipe.execute()

    def invalidate(self, person_ids: Iterable[int], keys: Iterable[tuple[str, str]] = ()) -> int:
        """Raise the versions of these people and identifiers and delete their entries (one
        round trip): a change to them committed. How many entries were deleted."""
        suffixes = [f"{p}" for p in sorted(set(person_ids))]
        names = [ident(k) for k in sorted(set(keys))]
        if not suffixes and not names:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for pid in suffixes:
            pipe.incr(f"{self.prefix}v:{pid}")
            pipe.expire(f"{self.prefix}v:{pid}", self.version_ttl)
        for name in names:
            pipe.incr(f"{self.prefix}w:{name}")
            pipe.expire(f"{self.prefix}w:{name}", self.version_ttl)
        gone = [f"{self.prefix}{kind}:{p}" for p in suffixes for kind in ("e", "x")]
        gone += [f"{self.prefix}i:{n}" for n in names]
        pipe.delete(*gone)
        return int(pipe.execute()[-1])

    def new_generation(self) -> None:
        """Every entry written so far is stale (a derive run rewrote many people's metrics)."""
        self.client.incr(f"{self.prefix}g")


def invalidate(entries: Entries, conn: Connection, person_ids: Iterable[int]) -> None:
    """A change to these people committed: their entries, and those of the identifiers they
    hold now, out (see the module)."""
    people = sorted({int(p) for p in person_ids})
    if people:
        entries.invalidate(people, held_identifiers(conn, people))


def connect(url: str, store_url: str, *, ttl: int) -> Entries:
    """The entries of the store ``store_url`` in the Redis at ``url``, written to last ``ttl``
    seconds (their versions outlive them)."""
    import redis

    return Entries(redis.Redis.from_url(url), store_url, version_ttl=2 * ttl + 60)


def erased(
    url: str | None, store_url: str, nodes: Iterable[int], keys: Iterable[tuple[str, str]]
) -> int:
    """After an erasure committed: the entries of the person's nodes and identifiers out of
    the Redis at ``url`` (none: nothing is shared); how many were deleted."""
    if not url:
        return 0
    import redis

    entries = connect(url, store_url, ttl=0)
    try:
        return entries.invalidate(nodes, [k for k in keys if k[0] in LOOKUP_KINDS])
    except redis.RedisError as exc:  # committed all the same: what is left no longer opens
        log.error(
            "erasure: the shared serving cache is unreachable, entries left to expire: %s", exc
        )
        return 0
    finally:
        entries.client.close()
