"""Campaigns launched from the console leave from a thread of the server, not from the request.

A launch plans the campaign's newcomers and records their messages in the request
(:func:`surmesure.deliver.service.prepare`), so that what refuses it (a paused campaign, no
channel configured, a control share changed) is said at once; the messages then leave from
this thread (:func:`surmesure.deliver.service.deliver`), on the channels the settings
configure, by their number of worker processes. The page that follows shows the send under way
and refreshes itself until it ends.

The outbox is the record: a message is recorded before it leaves and leaves once, so a server
that stops during a send leaves the rest planned, and launching again sends only those. What
this process launched last of each campaign (running, its report or its error) is kept in
memory for the campaign's page.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.deliver import service
from surmesure.errors import Conflict, trace_of
from surmesure.store.engine import Store

log = logging.getLogger("surmesure.deliver")


@dataclass
class Launch:
    """A campaign's send launched from this process."""

    campaign: str
    actor: str
    started_at: datetime
    finished_at: datetime | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def running(self) -> bool:
        return self.finished_at is None


class Launcher:
    """One per server process: :meth:`start`, :meth:`launch`, :meth:`stop`."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._queue: queue.Queue[tuple[Launch, service.Prepared] | None] = queue.Queue()
        self._launches: dict[str, Launch] = {}
        self._lock = threading.Lock()
        # held while a launch plans: two at once would plan the same people in two
        # transactions (one refused by the other's, or both queued to send)
        self._planning = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="launcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def launch(self, name: str, actor: str, now: datetime | None = None) -> Launch:
        """Plan and record campaign ``name``'s messages now, then send them from the thread;
        the launch under way when this process is sending that campaign already (nothing
        more is planned). :class:`~surmesure.errors.Conflict` and the other refusals of
        :func:`~surmesure.deliver.service.prepare` come from here."""
        with self._planning:  # two launches at once: the second gets the first's
            with self._lock:
                current = self._launches.get(name)
            if current is not None and current.running:
                return current
            return self._plan(name, actor, now)

    def _plan(self, name: str, actor: str, now: datetime | None) -> Launch:
        from surmesure.deliver.channels import configured

        channels = configured(self.settings)
        try:
            prepared = service.prepare(self.store, name, now or utcnow(), channels=channels)
        except BaseException:
            for channel in channels.values():
                channel.close()
            raise
        for kept in set(channels) - set(prepared.channels):
            channels[kept].close()
        launch = Launch(prepared.definition.name, actor, utcnow())
        with self._lock:
            self._launches[launch.campaign] = launch
        self._queue.put((launch, prepared))
        return launch

    def last(self, name: str) -> Launch | None:
        """What this process launched last of campaign ``name``."""
        with self._lock:
            return self._launches.get(name)

    def stop(self, wait: float = 5.0) -> None:
        """Stop taking launches; wait up to ``wait`` seconds for the send under way (what it
        leaves stays planned, sent by the next launch)."""
        self._queue.put(None)
        self._thread.join(wait)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            launch, prepared = item
            try:
                report = service.deliver(
                    self.store,
                    prepared,
                    launch.started_at,
                    folder=self.settings.outbox_dir,
                    workers=self.settings.send_workers,
                    urls=_urls(self.settings),
                    settings=self.settings,
                )
                launch.report = report.to_dict()
            except Conflict as exc:  # the product's own words (paused meanwhile, say)
                launch.error = exc.message
            except Exception as exc:  # the rest stays planned: launching again sends it; the
                # detail (a template engine's text may quote a message) goes to the log only
                launch.error = f"{type(exc).__name__}; what did not leave stays planned"
                log.error("send of campaign %s failed\n%s", launch.campaign, trace_of(exc))
            finally:
                for channel in prepared.channels.values():
                    channel.close()
                launch.finished_at = utcnow()
                launch.done.set()


def _urls(settings: Settings) -> dict[str, str]:
    from surmesure.deliver.channels import urls

    return urls(settings)
