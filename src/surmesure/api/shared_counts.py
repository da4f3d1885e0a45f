"""Requests per client counted in Redis, so that every server process of a store shares one
limit.

Several ``uvicorn`` workers (or hosts) behind one address each counted in their own memory,
so N workers let a client through N times the limit. With ``SURMESURE_SERVING_CACHE_URL``
set (the Redis through which the workers of a store already share their news), the counts
live there instead: a fixed window per client and group, one atomic script per request
(``INCRBY`` with ``EXPIRE`` on the window's first request; the ``limits`` library's Redis
storage). Keys are named after the store (:func:`prefix_for`), so two stores sharing a Redis
count apart, and expire with their window.

When Redis does not answer (within 0.5 s), the request is counted in the process's memory
instead, as without Redis, and the failure is logged once a minute: a page never fails
because its counter is away.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from typing import Any

from limits import RateLimitItem

log = logging.getLogger("surmesure.api.clients")
TIMEOUT_S = 0.5
WARN_EVERY_S = 60.0


def prefix_for(database_url: str) -> str:
    """The keys' prefix of the store at ``database_url`` (its URL hashed: no credential in
    Redis)."""
    return "surmesure:clients:" + hashlib.sha256(database_url.encode()).hexdigest()[:16]


class SharedCounts:
    """Fixed windows counted in Redis at ``url`` under ``prefix`` (see the module)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._limiter: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned = 0.0

    def _for_this_loop(self) -> Any:
        """The limiter, its Redis client made in the running event loop (a client belongs to
        the loop it was made in)."""
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._loop is not loop:
            from limits.aio.storage import RedisStorage
            from limits.aio.strategies import FixedWindowRateLimiter

            storage = RedisStorage(
                self.url,
                implementation="redispy",
                key_prefix=self.prefix,
                wrap_exceptions=True,
                socket_timeout=TIMEOUT_S,
                socket_connect_timeout=TIMEOUT_S,
            )
            self._limiter, self._loop = FixedWindowRateLimiter(storage), loop
        return self._limiter

    async def wait(self, item: RateLimitItem, group: str, address: str) -> int | None:
        """Count one request; ``None`` within the limit, else the seconds to wait. Raises
        what Redis raised when it is away (see :meth:`failed`)."""
        limiter = self._for_this_loop()
        if await limiter.hit(item, group, address):
            return None
        stats = await limiter.get_window_stats(item, group, address)
        return max(1, math.ceil(float(stats.reset_time) - time.time()))

    def failed(self, exc: BaseException) -> None:
        """Log that Redis did not count (once a minute at most)."""
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_S:
            self._warned = now
            log.warning(
                "client limits: Redis did not answer (%s); counting in this process",
                type(exc).__name__,
            )
