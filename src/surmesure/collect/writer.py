"""Group commit for the HTTP collector: durable before acknowledged, without a commit per call.

Every request hands its validated messages to the one :class:`EventWriter` of the process and
waits. The writer takes whatever requests are waiting (up to ``max_events`` messages; when only
one is waiting it lingers ``interval_ms`` for company), writes them all in one transaction on
its own thread, and answers each request only once that transaction has committed. Under load
a commit groups every request that arrived while the previous one ran, so throughput grows with
concurrency while each 200 still means "stored".

A commit costs a few statements whatever its size, so a stream of single events (one
``/v1/track`` call each) would otherwise pay them for every two or three events. A commit
therefore starts no sooner than ``every_ms`` after the previous one started: the requests of
that time share it, and an answer waits at most that much longer (25 ms by default).

After each commit the writer calls ``on_commit`` (the server's dispatcher, which hands the
new changes on to the later stages: :mod:`surmesure.dispatch.background`), and once no request
has come for ``idle_ms`` after its last commit, ``on_idle`` (the dispatcher then delivers
that commit's changes without waiting for more to join them).

A group is first written as if none of its messages were stored before (``unseen``, see
:func:`~surmesure.collect.events.write_events`): the insert then skips no look-up. When one was
(an SDK's retry), that transaction fails and the group is written again, each message stored
before counted a duplicate. If a grouped transaction still fails, each request of the group is
retried in a transaction of its own, so one bad request never fails its neighbours; a request
that still fails gets the error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from surmesure.collect.events import Ingested, quarantine_refusals, write_events
from surmesure.collect.segment import Accepted, Refusal
from surmesure.config import Settings
from surmesure.store.engine import Store


@dataclass
class _Pending:
    messages: Sequence[Accepted]
    refusals: Sequence[Refusal]
    source: str
    future: asyncio.Future[Ingested]


class EventWriter:
    """One per process; :meth:`start` inside the event loop, :meth:`stop` to drain."""

    def __init__(
        self,
        store: Store,
        *,
        interval_ms: float = 5.0,
        every_ms: float = 25.0,
        max_events: int = 20_000,
        settings: Settings | None = None,
        on_commit: Callable[[], None] | None = None,
        on_idle: Callable[[], None] | None = None,
        idle_ms: float = 50.0,
    ):
        self.store = store
        self.on_commit = on_commit
        self.on_idle = on_idle
        self.idle = idle_ms / 1000.0
        self.settings = settings
        self.interval = interval_ms / 1000.0
        self.every = every_ms / 1000.0
        self.max_events = max_events
        self.commits = 0
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-writer")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        self._thread.shutdown(wait=True)

    async def write(
        self, messages: Sequence[Accepted], refusals: Sequence[Refusal], *, source: str
    ) -> Ingested:
        """Store ``messages`` and quarantine ``refusals``; returns once committed."""
        if self._queue is None:
            raise RuntimeError("EventWriter.start() was not called")
        future: asyncio.Future[Ingested] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(messages, refusals, source, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        began = -math.inf
        while not stopping:
            first = await self._next(loop, began)
            if first is None:
                break
            if self.interval > 0 and self._queue.empty():
                await asyncio.sleep(self.interval)
            pause = began + self.every - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            began = loop.time()
            group, count = [first], len(first.messages)
            while count < self.max_events and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                group.append(item)
                count += len(item.messages)
            results = await loop.run_in_executor(self._thread, self._commit, group)
            for pending, result in zip(group, results, strict=True):
                if pending.future.done():  # the client went away; the data is stored anyway
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    async def _next(self, loop: asyncio.AbstractEventLoop, began: float) -> _Pending | None:
        """The next request; ``on_idle`` is called if none comes within ``idle`` of now, once
        something was committed (the first wait of the process tells nobody)."""
        assert self._queue is not None
        if self.on_idle is None or began == -math.inf or not self._queue.empty():
            return await self._queue.get()
        idle = loop.call_later(self.idle, self.on_idle)
        try:
            return await self._queue.get()
        finally:
            idle.cancel()

    # -- on the writer's thread ------------------------------------------------------------

    def _commit(
        self, group: list[_Pending], *, unseen: bool = True
    ) -> list[Ingested | BaseException]:
        from surmesure.collect.importer import utcnow

        now = utcnow()
        try:
            with self.store.begin() as conn:
                results = self._apply(conn, group, now, unseen=unseen)
            self.commits += 1
            if self.on_commit is not None:
                self.on_commit()
            return results
        except Exception as exc:
            if unseen:  # a message stored before, most likely: look for them this time
                return self._commit(group, unseen=False)
            if len(group) == 1:
                return [exc]
        return [r for p in group for r in self._commit([p], unseen=False)]

    def _apply(
        self, conn: Connection, group: list[_Pending], now: datetime, *, unseen: bool
    ) -> list[Ingested | BaseException]:
        """One :func:`write_events` per source for the whole group (so a commit costs the
        same few statements however many requests it serves), then each request's share."""
        results: list[Ingested | BaseException] = []
        stored: dict[str, set[str]] = {}
        refused: dict[str, dict[str, Refusal]] = {}
        for source in dict.fromkeys(p.source for p in group):
            messages = [m for p in group if p.source == source for m in p.messages]
            written = write_events(
                self.store,
                conn,
                messages,
                source=source,
                received_at=now,
                settings=self.settings,
                unseen=unseen,
            )
            # a message of an erased person is answered as stored (it is, in the quarantine):
            # the public write key must not learn who was erased
            stored[source] = written.new_ids | written.erased_ids
            refused[source] = {str(r.message_id): r for r in written.refusals}
        for pending in group:
            new = stored[pending.source]
            out = Ingested(received=len(pending.messages) + len(pending.refusals))
            kept = refused[pending.source]
            for item in pending.messages:
                found = kept.pop(item.message.message_id, None)
                if found is not None:  # quarantined while storing: refused, by its own index
                    out.refusals.append(dataclasses.replace(found, index=item.index))
                    out.quarantined += 1
                elif item.message.message_id in new:
                    new.discard(item.message.message_id)  # a repeat later is a duplicate
                    out.accepted += 1
                else:
                    out.duplicate += 1
            if pending.refusals:
                quarantine_refusals(
                    self.store,
                    conn,
                    pending.refusals,
                    origin="api",
                    source_name=pending.source,
                    now=now,
                )
                out.quarantined += len(pending.refusals)
            results.append(out)
        return results
