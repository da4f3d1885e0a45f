"""The journey worker: entries that come with time, due timers, and the sends they planned.

One round (:func:`run_once`) at ``now``:

1. entries that are not events (those come through the dispatcher, :mod:`.signals`): people who
   entered (or left) a segment since the journey last looked (``segment_changes``), everyone
   on a schedule, people whose date trait falls today; each journey's row is locked while it is
   read (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: one worker does it);
2. every person whose pause has ended, a batch per transaction (:func:`.runner.tick`), until
   none is due;
3. the outbox rows the steps planned, handed to the configured channels by the deliver worker
   (:func:`surmesure.deliver.sender.run`, exactly once across a crash), when ``channels`` are
   given; with ``settings`` whose ``send_workers`` is above 1, worker processes render and
   hand them over as they do a campaign's (:mod:`surmesure.deliver.workers`);
4. the webhook calls the steps planned, or left to retry (:func:`.webhooks.deliver`).

``now`` comes from a clock (:func:`surmesure.clock.utcnow`, or a simulated one), so a journey
can run through days in seconds. On PostgreSQL several workers may run side by side; on DuckDB
one process holds the file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.deliver import sender
from surmesure.deliver.channel import Channel
from surmesure.deliver.channels import urls as channel_urls
from surmesure.errors import Conflict, trace_of
from surmesure.journeys import engine, webhooks
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.entering import enter_people
from surmesure.journeys.entries import DateEntryNode, ScheduleEntryNode, SegmentEntryNode
from surmesure.journeys.published import Versions, catalog
from surmesure.journeys.rerouting import signal
from surmesure.journeys.runner import BATCH, tick
from surmesure.journeys.sends import campaign_key, campaign_of
from surmesure.journeys.steps import SendStep
from surmesure.journeys.writes import Applied
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json

log = logging.getLogger("surmesure.journeys")


def _schedule_slot(
    conn: Connection, name: str, entry: ScheduleEntryNode, last: datetime | None, now: datetime
) -> datetime | None:
    """The scheduled time (``at``, UTC) whose entries are due now, if any: the latest at or
    before ``now``, after ``last`` (the previous slot, or the publication), and ``every_days``
    after the previous slot (the first slot after publication always runs)."""
    hour, minute = (int(x) for x in entry.schedule.at.split(":"))
    today = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    slot = today if now >= today else today - timedelta(days=1)
    if last is not None and slot <= last:
        return None
    p = schema.journey_people
    ran = conn.execute(sa.select(p.c.person_id).where(p.c.journey == name).limit(1)).first()
    if (
        ran is not None
        and last is not None
        and slot - last < timedelta(days=entry.schedule.every_days)
    ):
        return None
    return slot


def dated_people(conn: Connection, entry: DateEntryNode, today: date) -> dict[int, str | None]:
    """People whose date trait (ISO ``YYYY-MM-DD...``) falls today: its anniversary minus
    ``days_before``, or ``after_days`` after it."""
    t = schema.traits
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(t.c.person_id, t.c.node_id, t.c.value, t.c.sealed).where(
                t.c.name == entry.date.trait, t.c.person_id.is_not(None)
            )
        )
    ]
    atrest.open_rows(conn, t, rows)  # a birth date is sealed at rest
    out: dict[int, str | None] = {}
    for row in rows:
        person, text = row["person_id"], decode_json(row["value"])
        try:
            day = date.fromisoformat(str(text)[:10])
        except ValueError:
            continue
        if entry.date.after_days is not None:
            hit = day + timedelta(days=entry.date.after_days) == today
        else:
            target = today + timedelta(days=entry.date.days_before)
            hit = (day.month, day.day) == (target.month, target.day)
        if hit:
            out[int(person)] = None
    return out


def _candidates(
    conn: Connection, definition: JourneyDefinition, last: datetime | None, now: datetime
) -> tuple[dict[int, str | None], datetime] | None:
    """Who enters the journey by time now, and how far that reads (``None``: nobody is due,
    or its entry does not come with time)."""
    entry = definition.entry
    if isinstance(entry, SegmentEntryNode):
        c = schema.segment_changes
        change = "entered" if entry.segment.on == "enter" else "exited"
        query = sa.select(c.c.person_id).where(
            c.c.segment == entry.segment.name, c.c.change == change, c.c.changed_at <= now
        )
        if last is not None:
            query = query.where(c.c.changed_at > last)
        return {int(r[0]): None for r in conn.execute(query.distinct())}, now
    if isinstance(entry, ScheduleEntryNode):
        slot = _schedule_slot(conn, definition.name, entry, last, now)
        if slot is None:
            return None
        p = schema.people
        rows = conn.execute(sa.select(p.c.person_id).where(p.c.merged_into.is_(None)))
        return {int(r[0]): None for r in rows}, slot
    if isinstance(entry, DateEntryNode):
        if last is not None and last.date() >= now.date():
            return None
        return dated_people(conn, entry, now.date()), now
    return None


def entries(store: Store, now: datetime, versions: Versions) -> Applied:
    """Step 1 of a round (see the module)."""
    result = Applied()
    j = schema.journeys
    with store.connect() as conn:
        names = catalog(conn, ("active",))
    for name in names:
        with store.begin() as conn:
            query = sa.select(j).where(j.c.name == name, j.c.status == "active")
            if not store.is_duckdb:
                query = query.with_for_update(skip_locked=True)
            row = conn.execute(query).first()
            if row is None:
                continue
            definition = versions.get(conn, name, int(row.version))
            found = _candidates(conn, definition, row.entries_read_at, now)
            if found is None:
                continue
            people, read_at = found
            result.add(enter_people(store, conn, definition, int(row.version), people, now))
            conn.execute(j.update().where(j.c.name == name).values(entries_read_at=read_at))
    return result


def send_due(
    store: Store,
    channels: Mapping[str, Channel],
    now: datetime,
    versions: Versions,
    *,
    folder: Any = None,
    settings: Settings | None = None,
) -> dict[str, int]:
    """Hand the planned journey messages to ``channels``: ``{outcome: count}``; by
    ``settings.send_workers`` worker processes when above 1 (the channels opened again there
    from the settings' URLs)."""
    m = schema.messages
    with store.connect() as conn:
        rows = list(
            conn.execute(
                sa.select(m.c.campaign, sa.func.max(m.c.version))
                .where(
                    m.c.campaign.like("j\\_%", escape="\\"),
                    m.c.status.in_(("planned", "sending")),
                )
                .group_by(m.c.campaign)
            )
        )
        known = catalog(conn)
        steps: dict[str, tuple[JourneyDefinition, SendStep]] = {}
        for campaign, version in rows:
            for name in known:
                if not str(campaign).startswith(f"j_{name}_"):
                    continue
                definition = versions.get(conn, name, int(version))
                for step in definition.steps:
                    if isinstance(step, SendStep) and campaign_key(name, step.id) == campaign:
                        steps[str(campaign)] = (definition, step)
    counts: dict[str, int] = {}
    workers = 1 if settings is None else settings.send_workers
    urls = channel_urls(settings) if settings is not None and workers > 1 else None
    for definition, step in steps.values():
        try:
            sent = sender.run(
                store, campaign_of(definition, step), channels, clock=lambda: now,
                folder=folder, workers=workers, urls=urls, settings=settings,
            )  # fmt: skip
        except Conflict:
            continue  # another worker is sending this step now: it sends these too
        for key, n in sent.counts.items():
            counts[key] = counts.get(key, 0) + n
    return counts


def stock_outs(store: Store, now: datetime, versions: Versions) -> Applied:
    """A stock change signal for each person in flight whose product is out of stock now
    (its total quantity over every store is 0 or less): the engine re-routes those pausing
    before a send with an ``out_of_stock`` exit; the others are left as they are."""
    p, st = schema.journey_people, schema.stock
    out = (
        sa.select(st.c.product_code)
        .group_by(st.c.product_code)
        .having(sa.func.sum(st.c.quantity) <= 0)
    )
    with store.begin() as conn:
        rows = list(
            conn.execute(
                sa.select(p.c.person_id, p.c.product)
                .where(p.c.status == "running", p.c.product.in_(out))
                .distinct()
            )
        )
        signals = [
            (int(r.person_id), engine.StockChange(str(r.product), in_stock=False), "stock out")
            for r in rows
        ]
        return signal(store, conn, signals, now, versions)


FAILED_AT = "failed at "
"""How the log marks the move a failed send caused (so it is taken once)."""


def failures(store: Store, now: datetime, versions: Versions) -> Applied:
    """A failed-step signal for each message of a send step that failed for good (a template
    error, a channel's refusal) whose person is still in that entry of the journey and was
    not moved for it yet: they take the step's ``error`` exit, or leave (``failed``)."""
    m, p, log = schema.messages, schema.journey_people, schema.journey_log
    result = Applied()
    with store.connect() as conn:
        known = catalog(conn, ("active", "archived"))
    for name, (_, latest) in known.items():
        with store.connect() as conn:
            steps = {
                campaign_key(name, step.id): step.id
                for version in range(1, latest + 1)
                for step in versions.get(conn, name, version).steps
                if isinstance(step, SendStep)
            }
        if not steps:
            continue
        moved = sa.select(log.c.person_id).where(
            log.c.journey == name,
            log.c.person_id == m.c.person_id,
            log.c.entry == m.c.step,
            log.c.what.like(FAILED_AT + "%"),
        )
        query = (
            sa.select(m.c.person_id, m.c.campaign, m.c.reason)
            .select_from(
                m.join(
                    p,
                    sa.and_(
                        p.c.journey == name,
                        p.c.person_id == m.c.person_id,
                        p.c.entry == m.c.step,
                    ),
                )
            )
            .where(
                m.c.campaign.in_(sorted(steps)),
                m.c.status == "failed",
                p.c.status == "running",
                ~sa.exists(moved),
            )
        )
        with store.begin() as conn:
            rows = conn.execute(query).all()
            signals: list[tuple[int, engine.Signal, str]] = []
            for person, campaign, reason in rows:
                step = steps[str(campaign)]
                signals.append(
                    (int(person), engine.StepFailed(step, str(reason or "")), FAILED_AT + step)
                )
            result.add(signal(store, conn, signals, now, versions, journey=name))
    return result


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
