"""The worker that empties a campaign's outbox: claim a batch, check again, render, hand over.

Each batch is claimed (``sending``) and committed before anything leaves; each channel is then
handed its part of the batch at once (it spreads it over its own pool of connections) and
tells the worker of each message the moment it is accepted, which journals it there
(:mod:`surmesure.deliver.outbox` explains why this sends once across a kill -9).
Addresses are opened from the identifiers sealed at rest in one batch, and never stored
with the message; the content is rendered here, never stored.
"""

from __future__ import annotations

import subprocess
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.decide.personal import Recommending
from surmesure.decide.recommend.guardrails import Stock
from surmesure.decide.recommend.inventory import snapshot
from surmesure.decide.recommend.model import get_model
from surmesure.deliver import guards, next_best, outbox, postal, video, web, written
from surmesure.deliver.addresses import usable_email
from surmesure.deliver.channel import Channel, Delivery, Message
from surmesure.deliver.content import ChannelTemplates, templates_of
from surmesure.deliver.handover import Done, Draft, compose, hand_over
from surmesure.deliver.value import values_of
from surmesure.deliver.workers import Workers, wait_for_workers
from surmesure.domain.campaigns import CONSENT_CHANNEL, REACHED_BY, CampaignDefinition
from surmesure.errors import SurmesureError
from surmesure.protect import blind, consent, marketing, suppression
from surmesure.store import schema
from surmesure.store.among import among_ids, among_texts
from surmesure.store.engine import Store

Claimed = sa.Row[tuple[str, int | None, str, int, int, str | None, str | None]]
"""A claimed outbox row: message id, person id, channel, step, version."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Sent:
    """What one run of the worker did, by outcome."""

    settled: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    """Channels of the campaign without a configured channel: their messages stay planned."""

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def addresses(
    store: Store, conn: Connection, person_ids: Sequence[int], kind: str
) -> dict[int, str]:
    """Each person's most recent identifier of ``kind``, opened (an e-mail address that
    hard-bounced is skipped); people without one (or whose key was destroyed) are left out."""
    ident = schema.identifiers
    rows = list(
        conn.execute(
            sa.select(ident.c.person_id, ident.c.node_id, ident.c.sealed)
            .where(ident.c.kind == kind, among_ids(ident.c.person_id, person_ids))
            .where(usable_email(ident.c.value) if kind == "email" else sa.true())
            .order_by(ident.c.person_id, ident.c.first_seen_at)
        )
    )
    opened = blind.ring(store).open_many(
        conn,
        [int(r.node_id) for r in rows],
        [None if r.sealed is None else bytes(r.sealed) for r in rows],
    )
    return {int(r.person_id): v for r, v in zip(rows, opened, strict=True) if v is not None}


def reach(
    store: Store,
    conn: Connection,
    person_ids: Sequence[int],
    channel: str,
    now: datetime,
    campaign: str,
    settings: Settings,
) -> dict[int, str]:
    """Where each person is reached on ``channel``: an address, a number, a postal block,
    the link of their page (or video page) for ``campaign``."""
    if REACHED_BY[channel] == "page":
        make = video.video_link if channel == video.CHANNEL else web.page_link
        return {p: make(campaign, p, now, settings) for p in person_ids}
    if REACHED_BY[channel] == "postal":
        return postal.blocks(conn, person_ids, now)
    return addresses(store, conn, person_ids, REACHED_BY[channel])


def _guarded(
    conn: Connection,
    definition: CampaignDefinition,
    rows: Sequence[Claimed],
    now: datetime,
    hours: int,
) -> dict[int, str]:
    """Bounces, complaints and recent purchases, read again (:func:`guards.at_send`);
    ``hours``: how long a complaint keeps the person's channel quiet."""
    channel_of = {int(r.person_id): str(r.channel) for r in rows if r.person_id is not None}
    return guards.at_send(conn, definition, channel_of, now, hours)


def _expected(
    conn: Connection, definition: CampaignDefinition, channel: str, people: Sequence[int]
) -> dict[int, float]:
    """The expected value of each call task (the call list's priority); nothing elsewhere."""
    if channel != "phone" or not people:
        return {}
    ids = np.asarray(sorted(set(people)), dtype=np.int64)
    worth = values_of(conn, definition, ids, [channel]).expected(definition, channel)
    return dict(zip(ids.tolist(), worth.tolist(), strict=True))


def _current(conn: Connection, person_ids: Sequence[int]) -> set[int]:
    p = schema.people
    rows = conn.execute(sa.select(p.c.person_id).where(among_ids(p.c.person_id, person_ids)))
    return {int(r[0]) for r in rows}


def gather(
    store: Store,
    conn: Connection,
    definition: CampaignDefinition,
    templates: Mapping[str, ChannelTemplates],
    rows: Sequence[Claimed],
    now: datetime,
    carriers: dict[str, tuple[int, str, int]] | None = None,
    defer: Collection[str] = (),
    *,
    settings: Settings,
    shown: dict[str, tuple[int, str, int]] | None = None,
) -> tuple[list[Draft], list[dict[str, object]]]:
    """The drafts of claimed ``rows`` that may leave, and the rows that must not (with the
    status and reason they take): the guardrails read again at send time (see
    :mod:`surmesure.deliver.outbox`). ``carriers`` is told each message that prints the
    person's page link: (person, channel, step) by message id; ``shown`` each one that
    prints their video page's link or poster. On the channels of ``defer``, the products are
    left to the worker that renders the draft."""
    ids = [int(r.person_id) for r in rows if r.person_id is not None]
    alive = _current(conn, ids) if ids else set()
    ready: list[Draft] = []
    skipped: list[dict[str, object]] = []
    by_channel: dict[str, list[Claimed]] = {}
    held: dict[int, str] = {}
    if definition.purpose == "marketing" and ids:
        paused = {int(x[0]) for x in conn.execute(marketing.held_back_people(None, now))}
        held = {p: marketing.PAUSED for p in ids if p in paused}
        if definition.topic is not None:
            left = {
                int(x[0]) for x in conn.execute(marketing.held_back_people(definition.topic, now))
            }
            held.update({p: marketing.TOPIC_REFUSED for p in ids if p in left and p not in held})
    for p, why in _guarded(conn, definition, rows, now, settings.complaint_quiet_hours).items():
        held.setdefault(p, why)
    for r in rows:
        if r.person_id is None or int(r.person_id) not in alive:
            skipped.append({"message_id": r.message_id, "status": "suppressed", "reason": "erased"})
        elif int(r.person_id) in held:
            why = held[int(r.person_id)]
            skipped.append({"message_id": r.message_id, "status": "suppressed", "reason": why})
        else:
            by_channel.setdefault(str(r.channel), []).append(r)
    for channel, group in by_channel.items():
        people = [int(r.person_id) for r in group]
        refused: set[int] = set()
        if definition.purpose == "marketing":
            scope = np.asarray(people, dtype=np.int64).tolist()
            refused = {
                int(x[0])
                for x in conn.execute(
                    consent.refused_people(
                        "marketing", CONSENT_CHANNEL.get(channel, channel), now, scope
                    )
                )
            }
        kind = REACHED_BY[channel]
        found = reach(store, conn, people, channel, now, definition.name, settings)
        links = (
            found
            if channel == web.CHANNEL
            else reach(store, conn, people, web.CHANNEL, now, definition.name, settings)
            if templates[channel].prints_page_link
            else {}
        )
        films: dict[int, str] = {}
        unready: dict[int, str] = {}
        if channel == video.CHANNEL or templates[channel].prints_video_link:
            films = reach(store, conn, people, video.CHANNEL, now, definition.name, settings)
            unready = _films(store, conn, definition, people, now, settings)
        worth = _expected(conn, definition, channel, people)
        seen = templates[channel].audiences(conn, people, now)
        found_for = templates[channel].personal(store, conn, seen, now, defer=channel in defer)
        barred = suppression.barred(
            store, conn, [(kind, a) for a in found.values()], key=settings.suppression_key
        )
        for r in group:
            person = int(r.person_id)
            to = found.get(person)
            if person in refused:
                why = consent.OPTED_OUT_MARKETING
            elif to is None:
                why = "unreachable"
            elif (kind, to) in barred:
                why = "suppressed_address"
            else:
                why = ""
            if not why and person in unready:  # tried again later, as a render stopped short
                retry = {"message_id": r.message_id, "status": "retry", "reason": unready[person]}
                skipped.append(retry)
                continue
            if why:
                skipped.append({"message_id": r.message_id, "status": "suppressed", "reason": why})
                continue
            assert to is not None
            headers = {"X-Campaign": definition.name}
            if definition.purpose == "service":
                headers["X-Purpose"] = "transactional"
            if person in worth:
                headers["X-Expected-Value"] = f"{worth[person]:.2f}"
            if carriers is not None and channel != web.CHANNEL and person in links:
                carriers[str(r.message_id)] = (person, channel, int(r.step))
            if shown is not None and channel != video.CHANNEL and person in films:
                shown[str(r.message_id)] = (person, channel, int(r.step))
            film = video.printed(films[person]) if person in films else None
            draft = Draft(
                str(r.message_id), channel, to, person, seen[person], found_for[person],
                links.get(person), headers, next_best.chosen(r.action, r.variant), film,
            )  # fmt: skip
            ready.append(draft)
    return ready, skipped


def _films(
    store: Store,
    conn: Connection,
    definition: CampaignDefinition,
    people: Sequence[int],
    now: datetime,
    settings: Settings,
) -> dict[int, str]:
    """Render the films of ``people`` still missing (``campaign send`` renders them all
    first: these were planned since); those whose film could not be made, with why."""
    missing = video.without_film(conn, definition.name, people)
    if not missing:
        return {}
    try:
        video.render(store, definition, missing, settings=settings, now=now)
    except (SurmesureError, OSError, subprocess.SubprocessError) as exc:
        why = f"video: {exc}"[:200]
        return dict.fromkeys(missing, why)
    return {}


@dataclass
class _Batch:
    """A batch handed over: its parts (one per worker, or the sending process's own), the
    rows that did not leave, and the messages that carry the person's page link."""

    parts: list[Future[Done]]
    skipped: list[dict[str, object]]
    carried: dict[str, tuple[int, str, int]]
    version: int
    shown: dict[str, tuple[int, str, int]] = field(default_factory=dict)


def run(
    store: Store,
    definition: CampaignDefinition,
    channels: Mapping[str, Channel],
    *,
    batch: int = 200,
    parallel: int = 4,
    folder: Path | None = None,
    clock: Callable[[], datetime] = utcnow,
    on_progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
    workers: int = 1,
    urls: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> Sent:
    """Send the campaign's due messages until none is left (or ``limit`` are handed over);
    ``on_progress(done, total)`` after each batch. With ``workers`` above 1, the channels
    ``urls`` names (channel -> settings URL) are rendered and handed over by that many worker
    processes (:mod:`surmesure.deliver.workers`, which open them with ``settings``, default
    the store's), the others here."""
    settings = settings or store.settings
    folder = folder or settings.outbox_dir
    templates = templates_of(definition, settings)
    result = Sent()
    handed = 0
    pending: deque[_Batch] = deque()
    remote = {c: u for c, u in (urls or {}).items() if c in channels} if workers > 1 else {}
    # a batch is prepared while the last ones are handed over: one with the sending process's
    # own thread, two with workers (each then has a part waiting when it finishes one)
    depth = 2 if remote else 1

    def settle_batch(done: _Batch) -> None:
        """Record the batch once its channels have answered."""
        deliveries: list[Delivery] = []
        waiting = list(done.skipped)
        for part in done.parts:
            sent, failed = part.result()
            deliveries += sent
            waiting += failed
        # a render to try again (:func:`compose`) is retried as a channel's transient failure
        deliveries += [
            Delivery(str(s["message_id"]), "retry", detail=str(s["reason"]))
            for s in waiting
            if s["status"] == "retry"
        ]
        waiting = [s for s in waiting if s["status"] != "retry"]
        with store.begin() as conn:
            attempts = _attempts(conn, [d.message_id for d in deliveries])
            outbox.mark(conn, deliveries, waiting, attempts, clock())
            written.record(conn, deliveries, clock())  # which person is in which file
            # a page link that left delivers the web message, in the same transaction
            links = [
                done.carried[d.message_id]
                for d in deliveries
                if d.outcome == "sent" and d.message_id in done.carried
            ]
            web.delivered(conn, definition.name, done.version, links, clock())
            films = [
                done.shown[d.message_id]
                for d in deliveries
                if d.outcome == "sent" and d.message_id in done.shown
            ]
            web.delivered(conn, definition.name, done.version, films, clock(), video.CHANNEL)
        for d in deliveries:
            result.add(d.outcome)
        for s in waiting:
            result.add(f"{s['status']}:{s['reason']}")
        if on_progress is not None:
            on_progress(handed, total)

    with (
        outbox.only_sender(store, definition.name),
        outbox.journal_of(folder, definition.name) as journal,
        ThreadPoolExecutor(max(parallel, 1), thread_name_prefix="outbox") as pool,
        ThreadPoolExecutor(1, thread_name_prefix="handover") as ahead,
        ExitStack() as stack,
    ):
        wait_for_workers(folder, definition.name)  # a killed run's workers, if any, are done
        result.settled = outbox.settle(
            store,
            definition.name,
            journal,
            clock(),
            lambda conn, ids: _links_settled(conn, definition, templates, ids, clock()),
        )
        total = _due(store, definition.name, list(channels), clock())
        if limit is not None:
            total = min(total, limit)
        processes = None
        # the channels whose products the workers recommend, from the model and the stock
        deferred = frozenset(c for c in remote if templates[c].products)
        stock: Stock | None = None
        if remote and total:
            recommending = None
            if deferred:
                recommending, stock = _recommending(store)
            processes = Workers(workers, definition, remote, settings, folder, recommending)
            stack.callback(processes.close)

        def here(ready: list[Message]) -> Done:
            return hand_over(channels, ready, journal, parallel, pool), []

        # the next batch is claimed and read while the last ones are handed over
        while limit is None or handed < limit:
            now = clock()
            size = batch if limit is None else min(batch, limit - handed)
            with store.begin() as conn:
                rows = outbox.claim(store, conn, definition.name, now, size, list(channels))
            if not rows:
                break
            carriers: dict[str, tuple[int, str, int]] = {}
            shown: dict[str, tuple[int, str, int]] = {}
            defer = deferred if processes is not None else frozenset()
            with store.connect() as conn:
                drafts, skipped = gather(
                    store,
                    conn,
                    definition,
                    templates,
                    rows,
                    now,
                    carriers,
                    defer,
                    settings=settings,
                    shown=shown,
                )
            parts: list[Future[Done]] = []
            if processes is not None:
                if stock is not None and (current := snapshot(store, None, None)) is not stock:
                    stock = current  # the stock changed: the workers recommend from it now
                    processes.restock(Stock(current.quantities))
                parts = processes.submit([d for d in drafts if d.channel in remote], now)
                drafts = [d for d in drafts if d.channel not in remote]
            if drafts or not parts:
                ready, failed = compose(templates, drafts, now)
                skipped += failed
                parts.append(ahead.submit(here, ready))
            handed += len(rows)
            version = max(int(r.version) for r in rows)
            pending.append(_Batch(parts, skipped, carriers, version, shown))
            while len(pending) > depth:
                settle_batch(pending.popleft())
        while pending:
            settle_batch(pending.popleft())
        stack.close()  # the workers are done (and their journal files closed)
        with store.connect() as conn:
            left = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.messages)
                .where(
                    schema.messages.c.campaign == definition.name,
                    schema.messages.c.status == "sending",
                )
            ).scalar_one()
        if not left:
            journal.clear()
    return result


def _recommending(store: Store) -> tuple[Recommending, Stock]:
    """What the workers recommend from (the model and the stock now, without what is worked
    out from them in this process: it is keyed by this process's objects; nor what grows
    with the people, which each draft carries of its person), and the stock snapshot it was
    taken from."""
    model = get_model(store, None, None)
    stock = snapshot(store, None, None)
    learned = None if model.learned is None else model.learned.without_people()
    handed = replace(model, people={}, memo={}, learned=learned)
    return Recommending(handed, Stock(stock.quantities)), stock


def _links_settled(
    conn: Connection,
    definition: CampaignDefinition,
    templates: Mapping[str, ChannelTemplates],
    ids: Sequence[str],
    now: datetime,
) -> None:
    """The messages a crashed run handed over (found in its journal) delivered the web
    message when their channel's template prints the page link (the video message, its
    video link), as if the run had lived."""
    pages = ((web.CHANNEL, "prints_page_link"), (video.CHANNEL, "prints_video_link"))
    for channel, prints in pages:
        linking = [c for c, t in templates.items() if c != channel and getattr(t, prints)]
        if linking:
            _carried_settled(conn, definition, linking, ids, now, channel)


def _carried_settled(
    conn: Connection,
    definition: CampaignDefinition,
    linking: Sequence[str],
    ids: Sequence[str],
    now: datetime,
    channel: str,
) -> None:
    """:func:`_links_settled` for the page channel ``channel``, carried by ``linking``."""
    m = schema.messages
    rows = conn.execute(
        sa.select(m.c.person_id, m.c.channel, m.c.step, m.c.version).where(
            among_texts(m.c.message_id, list(ids)),
            m.c.channel.in_(linking),
            m.c.person_id.is_not(None),
        )
    ).all()
    by_version: dict[int, list[tuple[int, str, int]]] = {}
    for r in rows:
        by_version.setdefault(int(r.version), []).append(
            (int(r.person_id), str(r.channel), int(r.step))
        )
    for version, carried in by_version.items():
        web.delivered(conn, definition.name, version, carried, now, channel)


def _due(store: Store, campaign: str, channels: Sequence[str], now: datetime) -> int:
    m = schema.messages
    with store.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(m)
                .where(
                    m.c.campaign == campaign,
                    m.c.status == "planned",
                    m.c.next_attempt_at <= now,
                    m.c.channel.in_(list(channels)),
                )
            ).scalar_one()
        )


def _attempts(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    if not ids:
        return {}
    m = schema.messages
    query = sa.select(m.c.message_id, m.c.attempts).where(among_texts(m.c.message_id, ids))
    rows = conn.execute(query)
    return {str(r[0]): int(r[1]) for r in rows}
