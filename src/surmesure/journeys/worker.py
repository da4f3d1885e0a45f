"""The journey worker: entries that come with time, due timers, and the sends they planned.

One round (:func:`run_once`) at ``now``:

1. entries that are not events (those come through the dispatcher, :mod:`.signals`): segment
   entries and exits, schedules, date traits (:mod:`.timed_entries`);
2. every person whose pause has ended, a batch per transaction (:func:`.runner.tick`), until
   none is due;
3. the outbox rows the steps planned, handed to the configured channels, and the sends that
   failed for good taken along their step's error exit, when ``channels`` are given
   (:mod:`.handoff`; by worker processes when ``settings.send_workers`` is above 1);
4. the webhook calls the steps planned, or left to retry (:func:`.webhooks.deliver`).

``now`` comes from a clock (:func:`surmesure.clock.utcnow`, or a simulated one), so a journey
can run through days in seconds. On PostgreSQL several workers may run side by side; on DuckDB
one process holds the file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.deliver.channel import Channel
from surmesure.errors import trace_of
from surmesure.journeys import engine, webhooks
from surmesure.journeys.facts import sold_out
from surmesure.journeys.handoff import failures, send_due
from surmesure.journeys.published import Versions
from surmesure.journeys.rerouting import signal
from surmesure.journeys.runner import BATCH, tick
from surmesure.journeys.timed_entries import entries
from surmesure.journeys.writes import Applied
from surmesure.store import schema
from surmesure.store.engine import Store

log = logging.getLogger("surmesure.journeys")


def stock_outs(store: Store, now: datetime, versions: Versions) -> Applied:
    """A stock change signal for each person in flight whose product is out of stock now
    (its total quantity over every store is 0 or less): the engine re-routes those pausing
    before a send with an ``out_of_stock`` exit; the others are left as they are."""
    p = schema.journey_people
    with store.begin() as conn:
        rows = list(
            conn.execute(
                sa.select(p.c.person_id, p.c.product)
                .where(p.c.status == "running", p.c.product.in_(sold_out()))
                .distinct()
            )
        )
        signals = [
            (int(r.person_id), engine.StockChange(str(r.product), in_stock=False), "stock out")
            for r in rows
        ]
        return signal(store, conn, signals, now, versions)


def run_once(
    store: Store,
    now: datetime,
    *,
    versions: Versions | None = None,
    channels: Mapping[str, Channel] | None = None,
    batch: int = BATCH,
    folder: Any = None,
    settings: Settings | None = None,
) -> Applied:
    """One round at ``now`` (see the module)."""
    versions = versions or Versions()
    result = entries(store, now, versions)
    result.add(stock_outs(store, now, versions))
    while True:
        done = tick(store, now, versions, batch)
        result.add(done)
        if done.stepped < batch:
            break
    if channels:
        result.sent = send_due(store, channels, now, versions, folder=folder, settings=settings)
        result.add(failures(store, now, versions))
    webhooks.deliver(store, now, versions=versions)
    return result


class JourneyWorker:
    """The worker as a thread of a server process: a round every ``period`` seconds."""

    def __init__(
        self,
        store: Store,
        *,
        period: float = 5.0,
        channels: Mapping[str, Channel] | None = None,
        clock: Callable[[], datetime] = utcnow,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.period = period
        self.channels = channels
        self.clock = clock
        self.rounds = 0
        self._stop = threading.Event()
        self._versions = Versions()
        self._thread = threading.Thread(target=self._run, name="journeys", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the round under way, then close the channels."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for channel in (self.channels or {}).values():
            channel.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_once(
                    self.store, self.clock(), versions=self._versions, channels=self.channels,
                    settings=self.settings,
                )  # fmt: skip
                self.rounds += 1
            except Exception as exc:  # the next round tries again; the state is committed
                log.error("journey round failed: %s", trace_of(exc))
            self._stop.wait(self.period)
