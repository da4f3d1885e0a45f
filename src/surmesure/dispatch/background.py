"""The dispatcher of a server process: a thread that settles the outbox after each commit.

The event writer (and any route that stores a change) calls :meth:`Background.kick` once its
transaction has committed; the thread then delivers what is new (or, with NATS, publishes it:
:func:`surmesure.dispatch.dispatcher.settle`). It also wakes every ``period`` seconds, so
changes committed by another process, or a failure due for a retry, are handled without a
kick. Kicks that arrive while it works, or within ``gap`` seconds of the last round, are
merged into one more round: a round costs a few statements whatever its size, so under a
steady stream it takes what several commits stored at once. :meth:`stop` settles what is left
before the server exits.

Each round also makes the process forget the data keys it keeps in memory when another process
erased someone (:meth:`surmesure.protect.crypto.Keyring.follow_erasures`).
"""

from __future__ import annotations

import logging
import threading

from surmesure.config import Settings
from surmesure.dispatch import subscribers
from surmesure.dispatch.dispatcher import settle
from surmesure.errors import trace_of
from surmesure.protect import atrest
from surmesure.store.engine import Store

log = logging.getLogger("surmesure.dispatch")


class Background:
    """One per server process: :meth:`start`, :meth:`kick` after commits, :meth:`stop`."""

    def __init__(
        self, store: Store, settings: Settings, *, period: float = 1.0, gap: float = 0.2
    ) -> None:
        self.store = store
        self.settings = settings
        self.period = period
        self.gap = gap
        self._stop = threading.Event()
        self.rounds = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)

    def start(self) -> None:
        """Load every subscriber's handler here (their stages' modules take seconds to import,
        which the first changes would otherwise wait for, holding the interpreter from the
        requests), then start the thread."""
        for name in subscribers.names():
            subscribers.handler(name)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Settle what is committed, then stop."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._round()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.period)
            self._wake.clear()
            if not self._stopping:
                self._round()
                self._stop.wait(self.gap)

    def _round(self) -> None:
        try:
            settle(self.store, self.settings)
            with self.store.connect() as conn:
                atrest.keyring(conn).follow_erasures(conn)
            self.rounds += 1
        except Exception as exc:  # the next round tries again; nothing is lost
            log.error("dispatch failed: %s", trace_of(exc))
