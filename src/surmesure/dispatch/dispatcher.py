"""Delivering the outbox to its subscribers, in order, each from its own cursor.

:func:`drain` reads the settled changes after the lowest cursor (:mod:`.gate`), and for each
subscriber runs its handler on the changes past its cursor, then moves the cursor, in one
transaction: a crash before the commit leaves the cursor where it was, and the changes are
delivered again by the next drain (at least once; exactly once in effect for a handler that
writes to the store in that transaction). Cursors are locked (``FOR UPDATE`` on PostgreSQL,
a lock in the process on DuckDB), so several dispatchers never deliver the same change at once.

A handler that fails on a batch is retried on each half, down to the one change it fails on,
which is recorded in ``change_failures`` (the error's type and place, never its message, which
may quote a person's values) and retried after 2, 4, 8, 16 seconds; after
:data:`MAX_ATTEMPTS` it is given up (``retry_at`` empty). Its cursor moves on meanwhile, so one
bad change never holds back the changes after it, nor other subscribers.
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.config_parsing import INLINE
from surmesure.dispatch import gate, outbox, subscribers
from surmesure.dispatch.outbox import Change
from surmesure.dispatch.subscribers import Delivery
from surmesure.errors import trace_of
from surmesure.store import backends, schema
from surmesure.store.engine import Store

log = logging.getLogger("surmesure.dispatch")
BATCH = 20_000
"""Most changes read and handed to a handler at once."""
MAX_ATTEMPTS = 5
PRUNE_EVERY = 10_000
"""Changes delivered to every subscriber are deleted once there are this many of them."""
_pruned: dict[int, int] = {}

_locks: dict[tuple[int, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def settle(store: Store, settings: Settings | None = None) -> dict[str, int]:
    """What a command runs once its data is committed: :func:`drain` in the process (the
    default), or, with ``SURMESURE_DISPATCH=nats://...``, publish the new changes to the
    stream for the workers (:mod:`surmesure.dispatch.broker`) and return no effects."""
    settings = settings or store.settings
    if settings.dispatch == INLINE:
        return drain(store)
    from surmesure.dispatch.broker import relay

    relay(store, settings)
    return {}


def drain(
    store: Store,
    *,
    names: Sequence[str] | None = None,
    limit: int = BATCH,
    now: datetime | None = None,
) -> dict[str, int]:
    """Deliver every settled change to ``names`` (default: every subscriber) and retry the
    failures that are due, the changes the handlers append included
    (:data:`~surmesure.dispatch.subscribers.APPENDS`); returns the effects each handler
    reported."""
    wanted = list(names) if names is not None else subscribers.names()
    effects = dict.fromkeys(wanted, 0)
    if not wanted:
        return effects
    positions: dict[str, int] | None = None
    retried = False
    while True:
        with gate.settled(store) as conn:
            if conn is None:
                break  # writers are busy for now; the next drain reads on
            positions, due, batch = _read(conn, wanted, now, limit)
        if not retried:
            retried = True
            for name in due:
                effects[name] += retry_failures(store, name, now=now)
        ids = [c.change_id for c in batch]  # in order: each subscriber's share is a tail
        todo = {
            name: mine for name in wanted if (mine := batch[bisect_right(ids, positions[name]) :])
        }
        appended = False
        for name, count in _deliver_round(store, todo, now).items():
            effects[name] += count
            appended = appended or (count > 0 and name in subscribers.APPENDS)
            # its cursor is past these now (a failed change is kept for its retries)
            positions[name] = max(positions[name], todo[name][-1].change_id)
        if len(batch) < limit and not appended:
            break
    if names is None and positions is not None:
        _prune(store, min(positions.values(), default=0))
    return effects


def prune(store: Store, names: Sequence[str]) -> None:
    """Delete what every subscriber has had, every :data:`PRUNE_EVERY` changes."""
    _prune(store, min(cursors(store, names).values(), default=0))


def _prune(store: Store, upto: int) -> None:
    """Delete the changes up to ``upto`` (no subscriber's cursor is behind it) once there are
    :data:`PRUNE_EVERY` of them since the last prune."""
    if upto - _pruned.get(id(store.engine), 0) < PRUNE_EVERY:
        return
    with store.begin() as conn:
        outbox.prune(conn, upto)
    _pruned[id(store.engine)] = upto


def cursors(store: Store, names: Sequence[str]) -> dict[str, int]:
    """The position of each subscriber (0 for one that never had a delivery)."""
    cc = schema.change_cursors.c
    with store.connect() as conn:
        rows = conn.execute(sa.select(cc.subscriber, cc.position).where(cc.subscriber.in_(names)))
        found = {str(r[0]): int(r[1]) for r in rows}
    return {n: found.get(n, 0) for n in names}


def deliver(store: Store, name: str, changes: Sequence[Change], *, now: datetime | None) -> int:
    """Hand ``changes`` (in order) to subscriber ``name`` and move its cursor past them; a
    failure splits the batch (see the module docstring). Returns the handler's effects."""
    with _local_lock(store, name):
        return _deliver(store, name, changes, now)


def _deliver_round(
    store: Store, todo: dict[str, list[Change]], now: datetime | None
) -> dict[str, int]:
    """:func:`deliver` to each subscriber of ``todo`` its changes, the built-in ones together
    in one transaction (their cursors locked and moved in one statement each): a round costs
    the same few statements however many subscribers it serves. If one of them fails, that
    transaction is rolled back and each is delivered alone, as :func:`deliver` does (built-in
    handlers keep their effects outside the store for after the commit, so running them
    again is safe: :func:`surmesure.dispatch.subscribers.shares_transaction`)."""
    together = [n for n in todo if subscribers.shares_transaction(n)]
    effects = _deliver_together(store, {n: todo[n] for n in together}, now) if together else {}
    for name in todo:
        if name not in effects:
            effects[name] = deliver(store, name, todo[name], now=now)
    return effects


def _deliver_together(
    store: Store, todo: dict[str, list[Change]], now: datetime | None
) -> dict[str, int]:
    """The effects of each subscriber of ``todo`` delivered in one transaction; empty when
    that transaction failed (nothing of it stands)."""
    locks = [_local_lock(store, name) for name in sorted(todo)]
    for lock in locks:
        lock.acquire()
    deliveries: list[Delivery] = []
    effects: dict[str, int] = {}
    try:
        with store.begin() as conn:
            held = _lock_cursors(store, conn, sorted(todo))
            moved: dict[str, int] = {}
            for name, changes in todo.items():
                mine = [c for c in changes if c.change_id > held[name]]
                effects[name] = 0
                if not mine:
                    continue
                delivery = Delivery(store, conn, mine, now or utcnow())
                effects[name] = subscribers.handler(name)(delivery)
                deliveries.append(delivery)
                moved[name] = mine[-1].change_id
            _move_many(conn, moved)
    except Exception as exc:
        # the message may quote a person's values: the error's type and place only
        log.info("a delivery to several subscribers failed (%s); each goes alone", _error_line(exc))
        return {}
    finally:
        for lock in reversed(locks):
            lock.release()
    for delivery in deliveries:
        _after(delivery)
    return effects


def apply(store: Store, name: str, changes: Sequence[Change], *, now: datetime | None) -> int:
    """Run ``name``'s handler on ``changes`` with no cursor (a NATS worker: the stream keeps
    its place); a change it fails on is recorded for a retry, as :func:`deliver` does."""
    return _deliver(store, name, changes, now, cursor=False)


def _deliver(
    store: Store,
    name: str,
    changes: Sequence[Change],
    now: datetime | None,
    *,
    cursor: bool = True,
) -> int:
    try:
        with store.begin() as conn:
            position = _lock_cursor(store, conn, name) if cursor else 0
            todo = [c for c in changes if c.change_id > position]
            if not todo:
                return 0
            delivery = Delivery(store, conn, todo, now or utcnow())
            effects = subscribers.handler(name)(delivery)
            if cursor:
                _move(conn, name, todo[-1].change_id)
    except Exception as exc:
        if len(changes) > 1:
            half = len(changes) // 2
            return _deliver(store, name, changes[:half], now, cursor=cursor) + _deliver(
                store, name, changes[half:], now, cursor=cursor
            )
        _failed(store, name, changes[0], exc, now or utcnow(), move=cursor)
        return 0
    _after(delivery)
    return effects


def _after(delivery: Delivery) -> None:
    """Run what the handler left for after its commit; the delivery stands either way."""
    for callback in delivery.after:
        try:
            callback()
        except Exception as exc:
            log.error("after a delivery: %s", trace_of(exc))


def retrying(store: Store, names: Sequence[str], *, now: datetime | None = None) -> list[str]:
    """Those of ``names`` with a failed change due for a retry, in one query (a drain runs
    after every commit of the collector, and failures are rare)."""
    f = schema.change_failures.c
    with store.connect() as conn:
        due = set(
            conn.execute(
                sa.select(f.subscriber)
                .where(f.subscriber.in_(names), f.retry_at <= (now or utcnow()))
                .distinct()
            ).scalars()
        )
    return [n for n in names if n in due]


def retry_failures(store: Store, name: str, *, now: datetime | None = None) -> int:
    """Run ``name``'s handler again on each failed change that is due; returns its effects."""
    now = now or utcnow()
    f = schema.change_failures.c
    with _local_lock(store, name):
        with store.connect() as conn:
            due = list(
                conn.execute(
                    sa.select(f.change_id)
                    .where(f.subscriber == name, f.retry_at <= now)
                    .order_by(f.change_id)
                ).scalars()
            )
            changes = outbox.read_ids(conn, due) if due else []
        effects = 0
        for change in changes:
            try:
                with store.begin() as conn:
                    delivery = Delivery(store, conn, [change], now)
                    effects += subscribers.handler(name)(delivery)
                    conn.execute(
                        schema.change_failures.delete().where(
                            f.subscriber == name, f.change_id == change.change_id
                        )
                    )
            except Exception as exc:
                _failed(store, name, change, exc, now, move=False)
                continue
            _after(delivery)
        gone = set(due) - {c.change_id for c in changes}
        if gone:  # erased since: nothing is left to deliver
            with store.begin() as conn:
                conn.execute(
                    schema.change_failures.delete().where(
                        f.subscriber == name, f.change_id.in_(sorted(gone))
                    )
                )
    return effects


def failures(store: Store, name: str | None = None) -> list[dict[str, object]]:
    """The failed changes (of ``name``, or every subscriber's), oldest first."""
    t = schema.change_failures
    query = sa.select(t).order_by(t.c.subscriber, t.c.change_id)
    if name is not None:
        query = query.where(t.c.subscriber == name)
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _failed(
    store: Store, name: str, change: Change, exc: Exception, now: datetime, *, move: bool
) -> None:
    t = schema.change_failures
    with store.begin() as conn:
        if move:
            position = _lock_cursor(store, conn, name)
            if change.change_id <= position:
                return  # another dispatcher delivered it meanwhile
            _move(conn, name, change.change_id)
        key = (t.c.subscriber == name) & (t.c.change_id == change.change_id)
        attempts = conn.execute(sa.select(t.c.attempts).where(key)).scalar()
        tries = int(attempts or 0) + 1
        retry_at = now + timedelta(seconds=2**tries) if tries < MAX_ATTEMPTS else None
        values = {"attempts": tries, "error": _error_line(exc), "failed_at": now}
        if attempts is None:
            conn.execute(
                t.insert().values(
                    subscriber=name, change_id=change.change_id, retry_at=retry_at, **values
                )
            )
        else:
            conn.execute(t.update().where(key).values(retry_at=retry_at, **values))


def _error_line(exc: BaseException) -> str:
    """The error's type and where it was raised: its message may quote a person's values."""
    kind = type(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{kind.__module__}.{kind.__qualname__}{place}"[:512]


def _lock_cursor(store: Store, conn: Connection, name: str) -> int:
    """Lock ``name``'s cursor row for this transaction (creating it at 0) and read it."""
    fresh = {"position": 0, "updated_at": utcnow()}
    row = store.backend.lock_or_create(conn, schema.change_cursors, {"subscriber": name}, fresh)
    return int(row["position"])


_READ_ROUND = """
WITH cursors AS (SELECT subscriber, position FROM change_cursors WHERE subscriber IN ({names}))
SELECT CAST(NULL AS BIGINT), subscriber, position, CAST(NULL AS VARCHAR),
    CAST(NULL AS VARCHAR), CAST(NULL AS TIMESTAMP), CAST(NULL AS VARCHAR) FROM cursors
UNION ALL
SELECT DISTINCT CAST(NULL AS BIGINT), subscriber, CAST(NULL AS BIGINT), 'due',
    CAST(NULL AS VARCHAR), CAST(NULL AS TIMESTAMP), CAST(NULL AS VARCHAR) FROM change_failures
WHERE subscriber IN ({names}) AND retry_at <= :now
UNION ALL
SELECT * FROM (
    SELECT change_id, kind, person_id, detail, ref, stored_at, name FROM changes
    WHERE change_id > (
        SELECT CASE WHEN count(*) = :count THEN min(position) ELSE 0 END FROM cursors
    )
    ORDER BY change_id LIMIT :limit
) AS batch
ORDER BY 1 NULLS FIRST
"""
"""A round's read: the cursors of the subscribers named (rows with no ``change_id``: the
subscriber, its position), those with a failed change due for a retry (no ``change_id``,
``due``), then up to ``:limit`` changes after the lowest cursor (0 while one has none), in
order, as :func:`surmesure.dispatch.outbox.read` reads them. One statement rather than two: a
round's fixed statements are most of a small round's cost."""


def _no_change(row: Sequence[object]) -> bool:
    return row[0] is None


def _read(
    conn: Connection, names: Sequence[str], now: datetime | None, limit: int
) -> tuple[dict[str, int], list[str], list[Change]]:
    """The position of each of ``names`` (0 for one that never had a delivery), those with a
    failed change due for a retry, and up to ``limit`` changes after the lowest position, in
    order, in one query (:data:`_READ_ROUND`)."""
    params: dict[str, object] = {f"s{i}": name for i, name in enumerate(names)}
    sql = _READ_ROUND.format(names=", ".join(f":{key}" for key in params))
    params.update(now=now or utcnow(), count=len(names), limit=limit)
    rows = backends.of(conn).run(conn, sql, params)
    found: dict[str, int] = {}
    due: set[str] = set()
    ahead = list(itertools.takewhile(_no_change, rows))  # the few rows before the changes
    for _, subscriber, position, due_mark, *_ in ahead:
        if due_mark is None:
            found[str(subscriber)] = int(position)
        else:
            due.add(str(subscriber))
    # the changes, thousands of them, made in C (:func:`surmesure.dispatch.outbox.read`)
    batch = list(map(outbox.change_of_row, rows[len(ahead) :]))
    positions = {n: found.get(n, 0) for n in names}
    return positions, [n for n in names if n in due], batch


def _lock_cursors(store: Store, conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """:func:`_lock_cursor` for each of ``names`` (sorted), in one query once they exist."""
    cc = schema.change_cursors.c
    query = sa.select(cc.subscriber, cc.position).where(cc.subscriber.in_(names))
    rows = conn.execute(store.backend.lock_rows(query.order_by(cc.subscriber)))
    found = {str(name): int(position) for name, position in rows}
    for name in names:
        if name not in found:
            found[name] = _lock_cursor(store, conn, name)
    return found


def _move_many(conn: Connection, positions: dict[str, int]) -> None:
    """:func:`_move` for each subscriber of ``positions``, in one statement."""
    if not positions:
        return
    t = schema.change_cursors
    conn.execute(
        t.update()
        .where(t.c.subscriber.in_(list(positions)))
        .values(position=sa.case(positions, value=t.c.subscriber), updated_at=utcnow())
    )


def _move(conn: Connection, name: str, position: int) -> None:
    t = schema.change_cursors
    conn.execute(
        t.update().where(t.c.subscriber == name).values(position=position, updated_at=utcnow())
    )


def _local_lock(store: Store, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((id(store.engine), name), threading.Lock())
