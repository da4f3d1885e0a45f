"""Two server processes of one store share each client's limit through Redis (with
``SURMESURE_SERVING_CACHE_URL``); before, each counted in its own memory, so N workers let a
client through N times the limit. A store of its own counts apart, and a Redis that does not
answer leaves the counting to each process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import redis
from api_helpers import settings_for
from fastapi import FastAPI

from surmesure.api.app import create_app
from surmesure.api.shared_counts import prefix_for
from surmesure.config import Settings
from surmesure.store import Store, open_store

REDIS = "redis://127.0.0.1:6379/13"
LIMITS = {"pages": "3/minute", "gateways": "2/minute"}


def _from(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _settings(store: Store, url: str) -> Settings:
    settings = settings_for(store, client_rate_limits=LIMITS, rate_limits={}, serving_cache_url=url)
    if url == REDIS:  # a fresh count for each run
        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(prefix_for(settings.database_url) + "*"):
            client.delete(key)
    return settings


async def _statuses(apps: list[FastAPI], path: str, host: str, count: int) -> list[int]:
    """``count`` requests from ``host``, sent to each app in turn."""
    clients = [_from(app, host) for app in apps]
    return [(await clients[n % len(apps)].get(path)).status_code for n in range(count)]


def test_two_server_processes_share_one_limit(duckdb_store: Store, tmp_path: Path) -> None:
    settings = _settings(duckdb_store, REDIS)
    one, two = create_app(settings, duckdb_store), create_app(settings, duckdb_store)
    elsewhere = open_store(f"duckdb:///{tmp_path / 'other.duckdb'}")
    other = create_app(_settings(elsewhere, REDIS), elsewhere)  # another store's count

    async def run() -> None:
        async with one.router.lifespan_context(one), two.router.lifespan_context(two):
            pages = await _statuses([one, two], "/p/not-a-token", "203.0.113.7", 5)
            assert pages == [404, 404, 404, 429, 429]
            calls = await _statuses([two, one], "/v1/sms/inbound?key=x&from=1", "203.0.113.7", 3)
            assert calls == [404, 404, 429]
            # another client has a count of its own
            assert await _statuses([one, two], "/p/x", "203.0.113.8", 2) == [404, 404]
            async with other.router.lifespan_context(other):
                assert await _statuses([other], "/p/x", "203.0.113.7", 1) == [404]

    asyncio.run(run())
    elsewhere.dispose()
    keys = redis.Redis.from_url(REDIS).keys(prefix_for(settings.database_url) + "*")
    assert keys  # the counts were in Redis, under the store's prefix


def test_without_redis_each_process_counts_its_own(duckdb_store: Store) -> None:
    settings = _settings(duckdb_store, "redis://127.0.0.1:1/0")  # nothing listens there
    one, two = create_app(settings, duckdb_store), create_app(settings, duckdb_store)

    async def run() -> None:
        async with one.router.lifespan_context(one), two.router.lifespan_context(two):
            pages = await _statuses([one, two], "/p/not-a-token", "203.0.113.7", 8)
            assert pages == [404] * 6 + [429] * 2  # three each: the counts of each process

    asyncio.run(run())
