"""The dispatcher of a server process: a thread that settles the outbox after each commit.

The event writer (and any route that stores a change) calls :meth:`Background.kick` once its
transaction has committed; the thread then delivers what is new (or, with NATS, publishes it:
:func:`surmesure.dispatch.dispatcher.settle`). It also wakes every ``period`` seconds, so
changes committed by another process, or a failure due for a retry, are handled without a
kick. Kicks that arrive while it works, or while it rests after a round, are merged into one
more round: a round costs a few statements whatever its size, and reads each person it touches
once however many of their events it holds, so under a steady stream it takes what several
commits stored at once. It rests ``gap`` seconds after a round, or ``pace`` times as long as
the round took when that is longer (at most ``longest`` seconds): under a heavy stream rounds
grow, and the dispatcher keeps to about ``1 / (1 + pace)`` of the time (a fifth by default)
rather than taking the interpreter from the requests and the event writer round after round.
A membership is then late by at most the round under way, the rest and its own round: 0.3 s
after rounds of 50 ms (as with the ``gap`` alone), 0.6 s after rounds of 100 ms (0.4 s with
the ``gap`` alone), 0.9 s after rounds of 200 ms (the rest is held to half a second, so a
change reaches segments and decisions within a second). When the stream pauses (the event writer
calls :meth:`hurry` once no request has come for a moment), the rest ends at once: nothing
more would join the next round, so the last changes of a burst are delivered without waiting
it out. :meth:`stop` settles what is left before the server exits.

Each round also makes the process forget the data keys it keeps in memory when another process
erased someone (:meth:`surmesure.protect.crypto.Keyring.follow_erasures`).
"""

from __future__ import annotations

import logging
import threading
import time

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
        self,
        store: Store,
        settings: Settings,
        *,
        period: float = 1.0,
        gap: float = 0.2,
        pace: float = 4.0,
        longest: float = 0.5,
    ) -> None:
        self.store = store
        self.settings = settings
        self.period = period
        self.gap = gap
        self.pace = pace
        self.longest = longest
        self._hurried = threading.Event()
        """Set to end the rest after a round early: by :meth:`hurry`, and by :meth:`stop`."""
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

    def hurry(self) -> None:
        """End the rest after the current or last round now: the stream of commits paused, so
        what is pending is all the next round would get."""
        self._hurried.set()

    def stop(self) -> None:
        """Settle what is committed, then stop."""
        self._stopping = True
        self._hurried.set()
        self._wake.set()
        self._thread.join()
        self._round()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.period)
            self._wake.clear()
            self._hurried.clear()  # a pause before this round is over by now
            if not self._stopping:
                began = time.monotonic()
                self._round()
                self._hurried.wait(self.rest(time.monotonic() - began))

    def rest(self, took: float) -> float:
        """Seconds to wait after a round that took ``took`` seconds (wall clock) before the
        next one: ``gap``, or ``pace * took`` up to ``longest`` when that is longer."""
        return max(self.gap, min(self.longest, self.pace * took))

    def _round(self) -> None:
        try:
            settle(self.store, self.settings)
            with self.store.connect() as conn:
                atrest.keyring(conn).follow_erasures(conn)
            self.rounds += 1
        except Exception as exc:  # the next round tries again; nothing is lost
            log.error("dispatch failed: %s", trace_of(exc))
