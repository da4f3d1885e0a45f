"""The suppression list: an erased person stays erased.

Erasing a person (:mod:`surmesure.protect.erase`) records, for each identifier they held, a
keyed hash: HMAC-SHA256 under ``Settings.suppression_key`` of ``"kind:value"``, the value
normalized as collection normalizes it (``"email:anna@example.com"``, ``"phone:+33612345678"``).
No value is stored, so the list outlives the erasure without keeping what was erased, and
without the key nobody can test guessed addresses against it.

Every way in checks it: events over HTTP and from files, every import kind that carries
identifiers, and quarantine replays. A record carrying a suppressed identifier is refused into
the quarantine with reason ``erased`` and a redacted payload, ``{"_erased": [kinds]}``: the kinds
of the identifiers that matched, no value, and nothing else of the record (its names, address
and answers are the erased person's too). Such a record cannot be replayed; once the person is
re-admitted, the source sends it again. How each way in finds the identifiers of its records
is :mod:`surmesure.protect.screening`.

Re-admission: a consent record with ``granted`` true whose ``recorded_at`` is after an
identifier's ``erased_at`` lifts the suppression of each identifier that record carries, and of
no other; the consent is then stored like any record (a new person, holding only those
identifiers). A refused consent, or one recorded before the erasure (an old consent file
imported again), lifts nothing and is refused like any record. Erasing the person again
suppresses the identifiers again.

Cost on the hot path: each process keeps the hashes in force in memory (the list is small:
erasures are rare) with the list's version, a token every change renews in the same
transaction. A batch costs one indexed read of that version (the list is reloaded only when it
changed) and, when the list is not empty, one hash per distinct identifier (about 1 µs,
remembered for repeats). On PostgreSQL the read first takes the lock identity resolution takes,
so an erasure committing meanwhile is either seen by the batch or waits for it: no record slips
between the two.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.resolver import IDENTITY_LOCK

Identifier = tuple[str, str]
T = TypeVar("T")

REASON = "erased"
"""The quarantine reason of a record refused because it carries a suppressed identifier."""

_CACHE_LIMIT = 200_000
s = schema.suppressions
state = schema.suppression_state


class Hasher:
    """``kind:value`` -> hex HMAC-SHA256 under one key; remembers recent identifiers (a device
    sends many events), forgetting them all past a bound."""

    def __init__(self, key: str) -> None:
        self._base = hmac.new(key.encode(), digestmod=hashlib.sha256)
        self.seen: dict[Identifier, str] = {}
        """Identifiers hashed lately and their hash."""

    def __call__(self, kind: str, value: str) -> str:
        known = self.seen.get((kind, value))
        if known is not None:
            return known
        mac = self._base.copy()
        mac.update(f"{kind}:{value}".encode())
        digest = mac.hexdigest()
        if len(self.seen) >= _CACHE_LIMIT:
            self.seen.clear()
        self.seen[(kind, value)] = digest
        return digest


_hashers: dict[str, Hasher] = {}


def hasher(key: str) -> Hasher:
    """The shared :class:`Hasher` of ``key``."""
    found = _hashers.get(key)
    if found is None:
        found = _hashers[key] = Hasher(key)
    return found


def suppress(
    store: Store,
    conn: Connection,
    identifiers: Iterable[Identifier],
    *,
    key: str,
    now: datetime,
    reason: str,
) -> int:
    """Record ``identifiers`` (normalized) as erased at ``now`` for ``reason``, in the caller's
    transaction; one already listed is erased again (its ``erased_at`` moves, a lift is undone).
    Returns how many identifiers were recorded."""
    digest = hasher(key)
    rows = {digest(kind, value): kind for kind, value in identifiers}
    if not rows:
        return 0
    table = pa.table(
        {
            "identifier_hash": pa.array(list(rows), pa.string()),
            "kind": pa.array(list(rows.values()), pa.string()),
            "erased_at": pa.array([now] * len(rows), pa.timestamp("us")),
            "reason": pa.array([reason] * len(rows), pa.string()),
            "lifted_at": pa.nulls(len(rows), pa.timestamp("us")),
        }
    )
    store.bulk_insert(conn, s, table, on_conflict="update")
    _renew(conn)
    return len(rows)


def _lock(store: Store, conn: Connection) -> None:
    store.backend.lock_key(conn, IDENTITY_LOCK)


def _renew(conn: Connection) -> None:
    """Mark the list changed (in the caller's transaction)."""
    conn.execute(
        sa.text(
            "INSERT INTO suppression_state (id, version) VALUES (1, :v) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version"
        ),
        {"v": uuid.uuid4().hex},
    )


_loaded: dict[str, tuple[str, frozenset[str]]] = {}
"""Per store URL: the list's version and the hashes in force then."""


def in_force(store: Store, conn: Connection) -> frozenset[str]:
    """The hashes suppressed now: one indexed read of the list's version, and a reload of the
    list only when another transaction changed it since this process last read it."""
    _lock(store, conn)
    query = "SELECT version FROM suppression_state WHERE id = 1"
    # straight on the driver where it is faster: a millisecond less on DuckDB, on every commit
    rows = store.backend.run(conn, query)
    if not rows:
        return frozenset()
    version = rows[0][0]
    known = _loaded.get(store.url)
    if known is not None and known[0] == version:
        return known[1]
    hashes = frozenset(
        str(h)
        for h in conn.execute(sa.select(s.c.identifier_hash).where(s.c.lifted_at.is_(None)))
        .scalars()
        .all()
    )
    _loaded[store.url] = (str(version), hashes)
    return hashes


def barred(
    store: Store, conn: Connection, identifiers: Iterable[Identifier], *, key: str
) -> set[Identifier]:
    """Which of ``identifiers`` (normalized) are suppressed now (see :func:`in_force`)."""
    held = in_force(store, conn)
    if not held:
        return set()  # the usual case: nothing to hash
    digest = hasher(key)
    seen = digest.seen
    out: set[Identifier] = set()
    for ident in set(identifiers):
        h = seen.get(ident) or digest(*ident)
        if h in held:
            out.add(ident)
    return out


def readmit(
    store: Store,
    conn: Connection,
    consents: Iterable[tuple[Identifier, datetime]],
    *,
    key: str,
    now: datetime,
) -> set[Identifier]:
    """Lift the suppression of each identifier named by a consent granted at the time given,
    when that time is after its erasure (see the module docstring); ``consents`` holds only
    granted consents, times naive UTC. Returns the identifiers re-admitted."""
    held = in_force(store, conn)
    if not held:
        return set()
    digest = hasher(key)
    latest: dict[str, tuple[Identifier, datetime]] = {}
    for ident, recorded_at in consents:
        h = digest(*ident)
        if h in held and (h not in latest or latest[h][1] < recorded_at):
            latest[h] = (ident, recorded_at)
    if not latest:
        return set()
    erased_at = conn.execute(
        sa.select(s.c.identifier_hash, s.c.erased_at).where(s.c.identifier_hash.in_(list(latest)))
    ).all()
    lifted = [h for h, at in erased_at if latest[h][1] > at]
    if lifted:
        conn.execute(s.update().where(s.c.identifier_hash.in_(lifted)).values(lifted_at=now))
        _renew(conn)
    return {latest[h][0] for h in lifted}


def split(
    items: Sequence[T], identifiers_of: Callable[[T], Iterable[Identifier]], held: set[Identifier]
) -> tuple[list[T], list[tuple[T, list[str]]]]:
    """``items`` split into those carrying none of the ``held`` identifiers and the others,
    each with the kinds of the identifiers that matched (sorted)."""
    if not held:
        return list(items), []
    kept: list[T] = []
    refused: list[tuple[T, list[str]]] = []
    for item in items:
        kinds = sorted({kind for kind, value in identifiers_of(item) if (kind, value) in held})
        if kinds:
            refused.append((item, kinds))
        else:
            kept.append(item)
    return kept, refused


def screen(
    store: Store,
    conn: Connection,
    items: Sequence[T],
    identifiers_of: Callable[[T], Iterable[Identifier]],
    *,
    key: str,
) -> tuple[list[T], list[tuple[T, list[str]]]]:
    """``items`` split as :func:`split` does by the identifiers suppressed now (one query)."""
    held = barred(store, conn, (i for item in items for i in identifiers_of(item)), key=key)
    return split(items, identifiers_of, held)


def erased_kinds(
    store: Store, conn: Connection, named: Sequence[Sequence[Identifier]], *, key: str
) -> list[list[str]]:
    """For each record's identifiers in ``named``, the kinds suppressed now (sorted; empty for
    a record carrying none), in one query."""
    held = barred(store, conn, (i for ids in named for i in ids), key=key)
    return [sorted({kind for kind, value in ids if (kind, value) in held}) for ids in named]
