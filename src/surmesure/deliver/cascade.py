"""Cascades: the next step of a campaign for those the previous step did not move.

A campaign with ``cascade:`` plans its step 0 on the first step's channel, as any campaign.
Step ``n`` (n >= 1) is planned, by each ``campaign send`` run (or the scheduler's), for the
people whose step ``n-1`` is settled:

- sent ``after_hours`` ago or more: the step runs unless the person responded since the
  campaign first reached them, as the step's ``unless`` lists: ``converted`` (an order since),
  ``clicked``, ``opened`` (the campaign's ``channel_activity``); a response gives a ``skipped``
  row with it as the reason;
- suppressed or failed at step ``n-1`` (no address, a refusal, a bounce...): the step runs
  at once, so a person e-mail cannot reach gets the SMS;
- skipped at step ``n-1``: skipped again, for the same reason;
- held out (control group, global holdout), or not settled yet: no row yet.

Everyone else goes through the whole of planning (:mod:`surmesure.deliver.plan`) on the
step's channel, so every guardrail is read again; a step with ``above_cost: true`` runs only
where the expected value exceeds the channel's cost (else ``skipped``, ``value_below_cost``).
Rows already planned for a step are never planned again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import documents, plan
from surmesure.domain.campaigns import CampaignDefinition, CascadeStep
from surmesure.store import schema
from surmesure.store.engine import Store

Ids = npt.NDArray[np.int64]
SETTLED = ("sent", "suppressed", "failed", "skipped")


def _first_sent(campaign: str) -> sa.Subquery:
    """When the campaign first reached each person: ``person_id``, ``first``."""
    m = schema.messages
    return (
        sa.select(m.c.person_id, sa.func.min(m.c.sent_at).label("first"))
        .where(m.c.campaign == campaign, m.c.status == "sent", m.c.person_id.is_not(None))
        .group_by(m.c.person_id)
        .subquery()
    )


def _responders(campaign: str, response: str) -> sa.Select[Any]:
    """``SELECT person_id`` of whom ``response`` came from since the campaign first reached
    them."""
    first = _first_sent(campaign)
    if response == "converted":
        o = schema.orders
        return (
            sa.select(o.c.person_id)
            .join(first, first.c.person_id == o.c.person_id)
            .where(o.c.is_return.is_(False), o.c.ordered_at >= first.c.first)
            .distinct()
        )
    a = schema.channel_activity
    return (
        sa.select(a.c.person_id)
        .join(first, first.c.person_id == a.c.person_id)
        .where(a.c.campaign == campaign, a.c.kind == response, a.c.occurred_at >= first.c.first)
        .distinct()
    )


def responses(
    conn: Connection, campaign: str, ids: Ids, unless: list[str]
) -> npt.NDArray[np.object_]:
    """Per person of ``ids``: the strongest response of ``unless`` since the campaign first
    reached them (``converted`` > ``clicked`` > ``opened``), else ``""``."""
    out = np.full(ids.size, "", dtype=object)
    if not ids.size:
        return out
    for response in ("converted", "clicked", "opened"):
        if response in unless:
            found = np.isin(ids, conn.execute(_responders(campaign, response)).scalars().all())
            out[found & (out == "")] = response
    return out


def candidates(
    conn: Connection, definition: CampaignDefinition, step: int, now: datetime
) -> tuple[Ids, npt.NDArray[np.object_]]:
    """The people step ``step`` is decided for now, ascending, and the reason already known
    for some (``""``: none; see the module)."""
    assert definition.cascade is not None
    rule: CascadeStep = definition.cascade[step]
    m = schema.messages
    rows = conn.execute(
        sa.select(m.c.person_id, m.c.status, m.c.reason, m.c.sent_at).where(
            m.c.campaign == definition.name,
            m.c.step == step - 1,
            m.c.status.in_(SETTLED),
            m.c.person_id.is_not(None),
        )
    ).all()
    wait = timedelta(hours=rule.after_hours)
    people: list[int] = []
    preset: list[str] = []
    waited: list[int] = []
    for p, status, reason, sent_at in rows:
        if status == "sent":
            if sent_at is not None and sent_at + wait <= now:
                waited.append(int(p))
            continue
        people.append(int(p))
        preset.append(str(reason) if status == "skipped" else "")
    sent = np.asarray(sorted(waited), dtype=np.int64)
    answered = responses(conn, definition.name, sent, list(rule.unless))
    ids = np.concatenate([np.asarray(people, dtype=np.int64), sent])
    reasons = np.concatenate([np.asarray(preset, dtype=object), answered])
    order = np.argsort(ids, kind="stable")
    return ids[order], reasons[order]


def advance(
    store: Store, definition: CampaignDefinition, version: int, now: datetime
) -> list[plan.Plan]:
    """Plan and record every later step whose people are due (one transaction per step);
    the plans, step by step (nothing without a cascade)."""
    if definition.cascade is None:
        return []
    plans = []
    for step in range(1, len(definition.cascade)):
        rule = definition.cascade[step]
        with store.begin() as conn:
            ids, preset = candidates(conn, definition, step, now)
            result = plan.plan(
                store,
                conn,
                definition,
                version,
                now,
                step,
                candidates=ids,
                order=[rule.channel],
                above_cost=rule.above_cost,
                preset=preset,
            )
            plan.record(store, conn, result, now)
        plans.append(result)
    return plans


def advance_all(store: Store, now: datetime) -> int:
    """:func:`advance` every campaign in force that has a cascade (the scheduler's job
    ``cascades``; the rows it plans leave with the next ``campaign send``); the rows planned."""
    with store.connect() as conn:
        names = [str(r[0]) for r in conn.execute(sa.select(schema.campaigns.c.name))]
    planned = 0
    for name in names:
        with store.connect() as conn:
            definition, version = documents.get(conn, name)
        if definition.cascade is not None:
            planned += sum(p.rows.num_rows for p in advance(store, definition, version, now))
    return planned
