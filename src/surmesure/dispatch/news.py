"""The news of changed people, shared by the API workers of one store through Redis.

Each worker keeps its own serving cache (:mod:`surmesure.decide.serving`), and the dispatcher
delivers each change once, to whichever worker settles the outbox first: the others would not
hear of it; with NATS, deliveries run in the ``dispatch run`` workers, which hold no cache.
With ``SURMESURE_SERVING_CACHE_URL`` (``redis://host:6379/0``) the process told publishes the
people's ids (orjson) on one channel per store, and every API worker re-reads those it holds;
an empty list (an erasure) makes them forget everyone; a derive run's news (``metrics``)
makes them re-read the derived metrics of those they hold; the people who bought
(``buyers``) have what recommendations know of them read again; the exposures a worker's
decision log wrote (``exposures``: person, contents, time) enter the others' ledgers, so
that each worker knows what the others showed (frequency and repeat rules). A message lost
while a worker reconnects is caught by its whole-store check
(``SURMESURE_SERVING_REFRESH_SECONDS``), but for exposures: a lost one leaves that worker a
ledger one exposure short until the person is read again.
The workers also share the people they read through the same Redis (:mod:`.shared_entries`):
the process told takes the changed people's entries out before it publishes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import orjson

from surmesure.errors import trace_of

log = logging.getLogger("surmesure.dispatch.news")
News = Callable[[frozenset[int]], None]
MetricsNews = Callable[[], None]
Exposed = list[tuple[int, list[str], datetime]]
"""Exposures: the person, the contents shown, when."""
ExposuresNews = Callable[[Exposed], None]


class SharedNews:
    """Publish the ids of changed people to the other workers; hear theirs (:meth:`start`)."""

    def __init__(
        self,
        url: str,
        store_url: str,
        on_news: News,
        on_metrics: MetricsNews | None = None,
        *,
        on_buyers: News | None = None,
        on_exposures: ExposuresNews | None = None,
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
        self.channel = f"surmesure:serving:{digest}"  # workers of one store, not of another
        self.token = uuid.uuid4().hex  # this worker: its own messages are not news to it
        self.on_news = on_news
        self.on_metrics = on_metrics
        self.on_buyers = on_buyers
        self.on_exposures = on_exposures
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self._pubsub.subscribe(self.channel)
        self._thread = threading.Thread(target=self._run, name="serving-news", daemon=True)
        self._thread.start()

    def tell(self, people: Iterable[int]) -> None:
        """Tell the other workers these people changed (none: forget everyone)."""
        message = {"from": self.token, "people": sorted(people)}
        self.client.publish(self.channel, orjson.dumps(message))

    def tell_metrics(self) -> None:
        """Tell the other workers a derive run stored metrics."""
        message = {"from": self.token, "metrics": True}
        self.client.publish(self.channel, orjson.dumps(message))

    def tell_buyers(self, people: Iterable[int]) -> None:
        """Tell the other workers these people bought."""
        message = {"from": self.token, "buyers": sorted(people)}
        self.client.publish(self.channel, orjson.dumps(message))

    def tell_exposures(self, exposed: Exposed) -> None:
        """Tell the other workers the exposures this one wrote (once committed)."""
        if not exposed:
            return
        rows = [[pid, contents, at.isoformat()] for pid, contents, at in exposed]
        self.client.publish(self.channel, orjson.dumps({"from": self.token, "exposures": rows}))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pubsub.close()
        self.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.2)
                if message is None:
                    continue
                news = orjson.loads(message["data"])
                if news.get("from") == self.token:
                    continue
                if news.get("metrics"):
                    if self.on_metrics is not None:
                        self.on_metrics()
                elif "exposures" in news:
                    if self.on_exposures is not None:
                        self.on_exposures(
                            [
                                (int(pid), [str(c) for c in contents], _naive(at))
                                for pid, contents, at in news["exposures"]
                            ]
                        )
                elif "buyers" in news:
                    if self.on_buyers is not None:
                        self.on_buyers(frozenset(int(p) for p in news["buyers"]))
                else:
                    self.on_news(frozenset(int(p) for p in news.get("people", ())))
            except Exception as exc:  # a lost message is caught by the whole-store check
                log.error("serving news: %s", trace_of(exc))
                self._stop.wait(1.0)


def _naive(text: str) -> datetime:
    """A time as the decision log keeps it (naive UTC)."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is None else at.replace(tzinfo=None) - (at.utcoffset() or timedelta())
