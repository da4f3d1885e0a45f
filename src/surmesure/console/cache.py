"""Figures a page shows that cost too much to compute on every request, kept a while.

One :class:`Timed` per app (``app.state.console_cache``): a value is computed again once it is
older than the seconds its page asks, or at once after :meth:`Timed.drop` (a change that moves
it, such as a quarantine replay)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from fastapi import Request

T = TypeVar("T")


class Timed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, seconds: float, compute: Callable[[], T]) -> T:
        with self._lock:
            held = self._held.get(key)
        if held is not None and time.monotonic() - held[0] <= seconds:
            value: T = held[1]
            return value
        value = compute()
        with self._lock:
            self._held[key] = (time.monotonic(), value)
        return value

    def drop(self, section: str) -> None:
        """Forget every value whose key is a tuple starting with ``section``."""
        with self._lock:
            for key in [k for k in self._held if isinstance(k, tuple) and k[:1] == (section,)]:
                del self._held[key]


def cache_of(request: Request) -> Timed:
    found: Timed = request.app.state.console_cache
    return found
