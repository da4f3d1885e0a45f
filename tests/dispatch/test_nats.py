"""Dispatch through NATS JetStream: two worker processes share one durable consumer; each
change's effect happens once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import nats
import pytest
import sqlalchemy as sa
from dispatch_helpers import save_viewers, store_events, value

from surmesure.clock import utcnow
from surmesure.collect.events import write_events
from surmesure.collect.segment import validate_messages
from surmesure.config import Settings
from surmesure.dispatch import broker, dispatcher
from surmesure.dispatch.news import SharedNews
from surmesure.segment import repository
from surmesure.segment.definitions import parse
from surmesure.store import Store

ROOT = Path(__file__).resolve().parents[2]
NATS_URL = os.environ.get("SURMESURE_TEST_NATS_URL", "nats://127.0.0.1:4222")
PEOPLE = 120
PER_MESSAGE = 10
BUYERS = {"name": "buyers", "where": {"purchase": {}}}
pytestmark = pytest.mark.postgres


@pytest.fixture
def stream() -> Iterator[str]:
    """A stream of this test's own, deleted after it."""
    name = f"dispatch_test_{uuid.uuid4().hex[:10]}"
    yield name

    async def delete() -> None:
        client = await nats.connect(NATS_URL)
        try:
            await client.jetstream().delete_stream(name)
        finally:
            await client.close()

    asyncio.run(delete())


def _worker(url: str, stream: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SURMESURE_DATABASE_URL": url,
        "SURMESURE_DISPATCH": NATS_URL,
        "SURMESURE_DISPATCH_STREAM": stream,
        "PYTHONPATH": str(ROOT / "src"),
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from surmesure.cli.main import app; app()", "dispatch", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_workers_share_the_changes_and_each_takes_effect_once(
    postgres_store: Store, stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = postgres_store
    settings = Settings(database_url=store.url, dispatch=NATS_URL, dispatch_stream=stream)
    monkeypatch.setattr(broker, "MESSAGE_CHANGES", PER_MESSAGE)
    save_viewers(store)
    assert dispatcher.settle(store, settings) == {}  # creates the stream, publishes nothing
    workers = [_worker(store.url, stream) for _ in range(2)]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "worker ready\n"
        for part in range(3):
            store_events(store, PEOPLE // 3, prefix=f"p{part}")
            dispatcher.settle(store, settings)  # what the server does after each commit
        deadline = time.monotonic() + 60
        while value(store, "SELECT count(*) FROM segment_members") < PEOPLE:
            assert time.monotonic() < deadline, "the workers did not deliver every change"
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=30) for worker in workers]
    lines = [out.strip().splitlines()[-1] for out, _ in outputs]
    handled = [int(line.split()[2]) for line in lines]
    assert all(line.startswith("worker stopped:") for line in lines), outputs
    assert sum(handled) == PEOPLE // PER_MESSAGE and min(handled) > 0  # both took a share
    assert value(store, "SELECT count(*) FROM segment_changes") == PEOPLE  # entered once each
    assert value(store, "SELECT count(DISTINCT person_id) FROM segment_changes") == PEOPLE
    assert value(store, "SELECT count(*) FROM change_failures") == 0


def test_a_worker_tells_the_api_caches_through_redis(postgres_store: Store, stream: str) -> None:
    store = postgres_store
    redis_url = "redis://127.0.0.1:6379/0"
    settings = Settings(
        database_url=store.url,
        dispatch=NATS_URL,
        dispatch_stream=stream,
        serving_cache_url=redis_url,
    )
    heard: list[frozenset[int]] = []
    api = SharedNews(redis_url, store.url, heard.append)  # what an API worker hears
    api.start()
    assert dispatcher.settle(store, settings) == {}  # creates the stream

    async def scenario() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        worker = asyncio.create_task(
            broker.work(store, settings, stop, durable=f"d_{stream}", ready=ready.set)
        )
        await ready.wait()
        await asyncio.to_thread(store_events, store, 3)
        await asyncio.to_thread(dispatcher.settle, store, settings)  # published to NATS
        deadline = time.monotonic() + 20
        while not heard and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await worker

    try:
        asyncio.run(scenario())
    finally:
        api.stop()
    with store.connect() as conn:
        people = frozenset(conn.execute(sa.text("SELECT person_id FROM people")).scalars())
    assert len(people) == 3 and heard[:1] == [people]


def test_a_worker_relays_the_order_a_web_purchase_made_at_once(
    postgres_store: Store, stream: str
) -> None:
    """A web ``Order Completed`` makes an order in the worker; the worker publishes the order's
    change itself and takes it back, so the buyers' segment has them with no further round of
    the collecting process."""
    store = postgres_store
    settings = Settings(database_url=store.url, dispatch=NATS_URL, dispatch_stream=stream)
    repository.save(store, parse(BUYERS), datetime(2026, 1, 1))
    assert dispatcher.settle(store, settings) == {}  # creates the stream
    order = {
        "type": "track", "event": "Order Completed", "userId": "C1", "messageId": "o-1",
        "timestamp": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "properties": {"order_id": "W-1", "total": 10.0, "currency": "EUR"},
    }  # fmt: skip
    accepted, refused = validate_messages([order], region="FR", prefix="")
    assert not refused

    def collect() -> None:
        with store.begin() as conn:
            write_events(store, conn, accepted, source="web", received_at=utcnow())

    async def scenario() -> broker.Worked:
        stop, ready = asyncio.Event(), asyncio.Event()
        worker = asyncio.create_task(
            broker.work(store, settings, stop, durable=f"d_{stream}", ready=ready.set)
        )
        await ready.wait()
        await asyncio.to_thread(collect)
        await asyncio.to_thread(dispatcher.settle, store, settings)  # the event's change only
        deadline = time.monotonic() + 20
        while value(store, "SELECT count(*) FROM segment_members") == 0:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        stop.set()
        return await worker

    done = asyncio.run(scenario())
    assert value(store, "SELECT count(*) FROM orders") == 1
    assert value(store, "SELECT count(*) FROM segment_members") == 1, done
    assert done.relayed >= 1 and done.messages == 2  # the event's message, then the order's
