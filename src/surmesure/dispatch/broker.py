"""Dispatch through NATS JetStream: several processes share the handlers' work.

With ``SURMESURE_DISPATCH=nats://host:4222`` the process that stored a change does not run the
handlers: its dispatcher has one subscriber, the relay (:func:`relay`), which publishes the new
changes to the stream ``SURMESURE_DISPATCH_STREAM`` (:data:`MESSAGE_CHANGES` changes a message,
each message id naming its first and last change, so a message published again after a crash
is dropped by the stream) and moves its cursor once the stream has acknowledged them.

``surmesure dispatch run`` (:func:`work`) starts a worker: every worker pulls from one durable
consumer, so each message goes to one of them (a consumer group), runs every subscriber's
handler on its changes (:func:`surmesure.dispatch.dispatcher.apply`, the handlers of in-process
dispatch) and acknowledges it. When a handler stored changes of its own (the orders of web
``Order Completed`` events, :data:`~surmesure.dispatch.subscribers.APPENDS`), the worker relays
them itself at once, so a purchase reaches its subscribers in one more message rather than at the
collecting process's next round. A worker that dies before its acknowledgement leaves the message
to be delivered again to another after ``ack_wait``: at least once, with idempotent handlers.
Workers share the database, so this needs PostgreSQL (a DuckDB file has one process).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import nats
import orjson
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from surmesure.config import Settings
from surmesure.dispatch import dispatcher, people, shared_entries, subscribers
from surmesure.dispatch.news import SharedNews
from surmesure.dispatch.outbox import Change
from surmesure.dispatch.subscribers import Delivery
from surmesure.errors import ConfigError
from surmesure.store.engine import Store

MESSAGE_CHANGES = 500
"""Most changes in one message: the unit of work a worker takes."""
DURABLE = "surmesure-dispatch"
RETRY_SECONDS = 2.0
T = TypeVar("T")


def subject_of(stream: str) -> str:
    return f"{stream}.changes"


def encode(changes: Sequence[Change]) -> bytes:
    return orjson.dumps([c.to_list() for c in changes])


def decode(data: bytes) -> list[Change]:
    rows = orjson.loads(data)
    return [Change.from_list([*row[:5], datetime.fromisoformat(row[5]), *row[6:]]) for row in rows]


async def _connect(url: str, stream: str) -> tuple[Any, JetStreamContext]:
    client = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)
    js = client.jetstream()
    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        # an hour of dedupe window: a relay that crashed after publishing publishes again
        await js.add_stream(name=stream, subjects=[subject_of(stream)], duplicate_window=3600)
    return client, js


class Publisher:
    """A connection to the stream, usable from any thread (it runs its own event loop)."""

    def __init__(self, url: str, stream: str) -> None:
        self.stream = stream
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="nats-relay", daemon=True).start()
        self._client, self._js = self._call(_connect(url, stream))

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def publish(self, changes: Sequence[Change]) -> int:
        """Publish ``changes`` and wait until the stream has stored them; returns how many."""

        async def send() -> None:
            subject = subject_of(self.stream)
            await asyncio.gather(
                *(
                    self._js.publish(
                        subject,
                        encode(part),
                        headers={"Nats-Msg-Id": f"{part[0].change_id}-{part[-1].change_id}"},
                    )
                    for part in _parts(changes)
                )
            )

        self._call(send())
        return len(changes)

    def close(self) -> None:
        self._call(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)


def _parts(changes: Sequence[Change]) -> list[Sequence[Change]]:
    return [changes[i : i + MESSAGE_CHANGES] for i in range(0, len(changes), MESSAGE_CHANGES)]


_publishers: dict[tuple[str, str], Publisher] = {}
_publishers_lock = threading.Lock()


def relay(store: Store, settings: Settings) -> int:
    """Publish the changes not yet published (see the module docstring); returns how many."""
    _need_server_database(store)
    key = (settings.dispatch, settings.dispatch_stream)
    with _publishers_lock:
        publisher = _publishers.get(key)
        if publisher is None:
            publisher = _publishers[key] = Publisher(*key)
    name = f"nats:{settings.dispatch_stream}"

    def publish(delivery: Delivery) -> int:
        return publisher.publish(delivery.changes)

    subscribers.register(name, publish, listed=False)
    published = dispatcher.drain(store, names=[name])[name]
    dispatcher.prune(store, [name])  # the stream holds them now
    return published


@dataclass
class Worked:
    """What a worker did: messages acknowledged, changes in them, handler effects, and the
    changes its handlers stored that it relayed."""

    messages: int = 0
    changes: int = 0
    effects: int = 0
    relayed: int = 0


async def work(
    store: Store,
    settings: Settings,
    stop: asyncio.Event,
    *,
    durable: str = DURABLE,
    ready: Callable[[], None] | None = None,
) -> Worked:
    """Pull messages from the shared consumer and run every subscriber on them until
    ``stop`` is set (see the module docstring); ``ready()`` once it pulls."""
    _need_server_database(store)
    client, js = await _connect(settings.dispatch, settings.dispatch_stream)
    done = Worked()
    unshare = _share_news(store, settings)
    try:
        pull = await js.pull_subscribe(
            subject_of(settings.dispatch_stream),
            durable=durable,
            stream=settings.dispatch_stream,
            config=ConsumerConfig(ack_wait=60, max_ack_pending=1_000),
        )
        if ready is not None:
            ready()
        retried = time.monotonic()
        while not stop.is_set():
            try:
                messages = await pull.fetch(batch=1, timeout=0.5)
            except nats.errors.TimeoutError:
                messages = []
            for message in messages:
                changes = decode(message.data)
                appended = False
                for name in subscribers.names():
                    effects = await asyncio.to_thread(
                        dispatcher.apply, store, name, changes, now=None
                    )
                    done.effects += effects
                    appended = appended or (effects > 0 and name in subscribers.APPENDS)
                await message.ack()
                done.messages += 1
                done.changes += len(changes)
                if appended:  # what a handler stored (a web order) goes out now, not at the
                    # next round of the process that collected (up to a second later)
                    done.relayed += await asyncio.to_thread(relay, store, settings)
            if time.monotonic() - retried > RETRY_SECONDS:
                retried = time.monotonic()
                for name in subscribers.names():
                    done.effects += await asyncio.to_thread(dispatcher.retry_failures, store, name)
    finally:
        unshare()
        await client.close()
    return done


def _share_news(store: Store, settings: Settings) -> Callable[[], None]:
    """With ``SURMESURE_SERVING_CACHE_URL``, tell the API workers' caches, through Redis,
    whom this worker's deliveries changed (they hear of no delivery themselves), once the
    entries those people had in Redis are out (:mod:`.shared_entries`); returns what stops
    it."""
    url, ttl = settings.serving_cache_url, settings.serving_cache_ttl_seconds
    if not url:
        return lambda: None
    news = SharedNews(url, store.url, lambda _: None)
    entries = shared_entries.connect(url, store.url, ttl=ttl) if ttl else None

    def tell(changed: frozenset[int]) -> None:
        if entries is not None and changed:
            with store.connect() as conn:
                shared_entries.invalidate(entries, conn, changed)
        news.tell(changed)

    def tell_metrics() -> None:
        if entries is not None:
            entries.new_generation()
        news.tell_metrics()

    unlisten = people.listen(tell, metrics=tell_metrics, orders=news.tell_buyers)

    def stop() -> None:
        unlisten()
        news.stop()
        if entries is not None:
            entries.client.close()

    return stop


def _need_server_database(store: Store) -> None:
    if not store.backend.shared:
        raise ConfigError(
            "Dispatch through NATS needs a database several processes share.",
            hint="set SURMESURE_DATABASE_URL to PostgreSQL, or SURMESURE_DISPATCH=inline",
            field="SURMESURE_DISPATCH",
        )
