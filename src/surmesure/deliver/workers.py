"""Worker processes that render and hand over a campaign's messages, so a send uses more
than one core (``campaign send --workers N``, ``SURMESURE_SEND_WORKERS``).

The sending process stays the only one that touches the store (an embedded DuckDB file has
one writer; on PostgreSQL the campaign's advisory lock keeps one sender too): it claims each
batch, reads what its messages need (guardrails, addresses, the person's fields and
what is read of the people for their recommended products: :func:`surmesure.deliver.sender.gather`)
and records what became of them. The batch's drafts are then shared out between the workers,
each recommending its people's products and rendering its part
(:func:`surmesure.deliver.handover.compose`), and handing it to its own channel, opened from the
channel's settings URL; a message is in one part only, so it leaves once. Each worker is handed
the recommendation model once, when it starts, and the stock again only when it changed during
the send (:class:`~surmesure.decide.personal.Recommending`): a person gets the products the
sending process would have given them, and the per-person work of choosing them is spread over
the workers. Each worker appends
the messages its provider accepts to the campaign's send journal, as the sending process does
(one ``write`` of one line, in append mode: lines of several processes never mix), so a kill
-9 of any process is settled by the next run as before (:mod:`surmesure.deliver.outbox`). A
worker whose sending process is gone finishes the part it is handing over, if any, then exits;
until then it holds the campaign's worker lock (``<outbox_dir>/<campaign>.workers``, shared),
which the next run takes whole (:func:`wait_for_workers`) before it settles the journal, so
what that worker still sent is in the journal by then.

Workers are forked from a server process started once (``forkserver``), which has imported
what they need (:data:`PRELOAD`): no lock or thread of the sending process is inherited, and a
worker starts in a moment. (So a script that sends with workers runs its work under ``if
__name__ == "__main__":``, as :mod:`multiprocessing` requires.)
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from multiprocessing import forkserver
from multiprocessing.util import Finalize
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surmesure.config import Settings
from surmesure.decide.personal import Recommending
from surmesure.deliver import outbox
from surmesure.deliver.channel import Channel, Delivery
from surmesure.deliver.channels import open_channel
from surmesure.deliver.handover import Done, compose, hand_over
from surmesure.domain.campaigns import CampaignDefinition

if TYPE_CHECKING:
    from surmesure.decide.recommend.guardrails import Stock

PRELOAD = ["surmesure.deliver.workers", "surmesure.deliver.email"]
"""What the worker server imports once, before forking each worker."""

_state: dict[str, Any] = {}


def _start(
    definition: CampaignDefinition,
    urls: Mapping[str, str],
    settings: Settings,
    folder: Path,
    parent: int,
    recommending: Recommending | None,
) -> None:
    """In each worker: the campaign's templates, its channels, the send journal, and the
    model and stock its products are recommended from."""
    from surmesure.deliver.content import templates_of

    channels = {name: open_channel(url, settings) for name, url in urls.items()}
    lock = os.open(_lock_path(folder, definition.name), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_SH)
    _state.update(
        lock=lock,
        templates=templates_of(definition, settings),
        channels=channels,
        journal=outbox.Journal(folder, definition.name),
        parent=parent,
        recommending=recommending,
        stock_version=0,
    )
    Finalize(None, _stop, exitpriority=10)
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()


def _stop() -> None:
    channels: dict[str, Channel] = _state.pop("channels", {})
    for channel in channels.values():
        channel.close()
    journal: outbox.Journal | None = _state.pop("journal", None)
    if journal is not None:
        journal.close()
    lock: int | None = _state.pop("lock", None)
    if lock is not None:
        os.close(lock)


def _lock_path(folder: Path, campaign: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{campaign}.workers"


def wait_for_workers(folder: Path, campaign: str) -> None:
    """Wait until no worker of an earlier run of ``campaign`` is still handing messages over
    (see the module); at once when there is none."""
    path = folder / f"{campaign}.workers"
    if not path.exists():  # no run of the campaign had workers here
        return
    lock = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
    finally:
        os.close(lock)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_busy = threading.Lock()
"""Held while a part is handed over."""


def _watch(parent: int) -> None:
    """Exit once the sending process is gone and no part is being handed over."""
    while _alive(parent):
        time.sleep(0.2)
    with _busy:
        os._exit(0)


def _work(drafts: Sequence[Any], now: datetime, stock: tuple[int, Stock] | None) -> Done:
    """Recommend, render and hand over one part (in a worker); ``stock``: the stock now and
    its version, when it changed since the worker started."""
    with _busy:
        if not _alive(_state["parent"]):  # the sending process is gone: nothing leaves
            return [Delivery(d.message_id, "retry", detail="sender stopped") for d in drafts], []
        recommending: Recommending | None = _state["recommending"]
        if stock is not None and recommending is not None and stock[0] != _state["stock_version"]:
            recommending = _state["recommending"] = Recommending(recommending.model, stock[1])
            _state["stock_version"] = stock[0]
        ready, failed = compose(_state["templates"], drafts, now, recommending)
        return hand_over(_state["channels"], ready, _state["journal"], 1), failed


class Workers:
    """``count`` worker processes for one run of a campaign's sending."""

    def __init__(
        self,
        count: int,
        definition: CampaignDefinition,
        urls: Mapping[str, str],
        settings: Settings,
        folder: Path,
        recommending: Recommending | None = None,
    ) -> None:
        self.count = count
        self.channels = frozenset(urls)
        #: the stock the workers recommend from, when it changed during the send: (version,
        #: stock), handed over with every part from then on
        self._stock: tuple[int, Stock] | None = None
        initargs = (definition, dict(urls), settings, folder, os.getpid(), recommending)
        # the server imports and the workers start on a thread of their own, while this
        # process claims and reads the first batch (a worker's fork waits for the imports)
        self._opening: Future[ProcessPoolExecutor] = Future()
        threading.Thread(
            target=self._open, args=(initargs,), name="workers-start", daemon=True
        ).start()

    def _open(self, initargs: tuple[Any, ...]) -> None:
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            forkserver.ensure_running()
            pool = ProcessPoolExecutor(
                self.count, mp_context=context, initializer=_start, initargs=initargs
            )
            for started in [pool.submit(os.getpid) for _ in range(self.count)]:
                started.result()
        except Exception as exc:  # told to the sending process by the first part it submits
            self._opening.set_exception(exc)
            return
        self._opening.set_result(pool)

    @property
    def _pool(self) -> ProcessPoolExecutor:
        """The worker processes, once started (an error in starting them is raised here)."""
        return self._opening.result()

    def restock(self, stock: Stock) -> None:
        """The stock changed: the workers recommend from ``stock`` from the next part on."""
        version = 1 if self._stock is None else self._stock[0] + 1
        self._stock = (version, stock)

    def submit(self, drafts: Sequence[Any], now: datetime) -> list[Future[Done]]:
        """Share ``drafts`` out in one part per worker; each part's future."""
        size = -(-len(drafts) // self.count)
        parts = [list(drafts[i : i + size]) for i in range(0, len(drafts), size)] if size else []
        return [self._pool.submit(_work, part, now, self._stock) for part in parts]

    def close(self) -> None:
        if self._opening.exception() is None:  # (once they started, or failed to)
            self._pool.shutdown(wait=True)
