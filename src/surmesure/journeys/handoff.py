"""The sends journeys planned, handed to the channels, and the sends that failed for good.

:func:`send_due` hands each journey send step's planned outbox rows to the configured channels
through the deliver worker (:func:`surmesure.deliver.sender.run`, exactly once across a
crash); with ``settings`` whose ``send_workers`` is above 1, worker processes render and hand
them over as they do a campaign's (:mod:`surmesure.deliver.workers`). :func:`failures` moves
each person whose message failed for good (a template error, a channel's refusal) along the
step's ``error`` exit, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from surmesure.config import Settings
from surmesure.deliver import sender
from surmesure.deliver.channel import Channel
from surmesure.deliver.channels import urls as channel_urls
from surmesure.errors import Conflict
from surmesure.journeys import engine
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.published import Versions, catalog
from surmesure.journeys.rerouting import signal
from surmesure.journeys.sends import campaign_key, campaign_of
from surmesure.journeys.steps import SendStep
from surmesure.journeys.writes import Applied
from surmesure.store import schema
from surmesure.store.engine import Store


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
