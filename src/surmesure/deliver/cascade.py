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


def _first_sent(conn: Connection, campaign: str) -> dict[int, datetime]:
    m = schema.messages
    rows = conn.execute(
        sa.select(m.c.person_id, sa.func.min(m.c.sent_at))
        .where(m.c.campaign == campaign, m.c.status == "sent", m.c.person_id.is_not(None))
        .group_by(m.c.person_id)
    )
    return {int(p): at for p, at in rows}


def responses(
    conn: Connection, campaign: str, ids: Ids, unless: list[str]
) -> npt.NDArray[np.object_]:
    """Per person of ``ids``: the strongest response of ``unless`` since the campaign first
    reached them (``converted`` > ``clicked`` > ``opened``), else ``""``."""
    out = np.full(ids.size, "", dtype=object)
    if not ids.size or not unless:
        return out
    since = _first_sent(conn, campaign)
    wanted = set(ids.tolist())
    found: dict[int, set[str]] = {}
    a = schema.channel_activity
    kinds = [k for k in unless if k in ("opened", "clicked")]
    if kinds:
        acts = conn.execute(
            sa.select(a.c.person_id, a.c.kind, a.c.occurred_at).where(
                a.c.campaign == campaign, a.c.kind.in_(kinds), a.c.person_id.is_not(None)
            )
        )
        for p, kind, at in acts:
            p = int(p)
            if p in wanted and (p not in since or at >= since[p]):
                found.setdefault(p, set()).add(str(kind))
    if "converted" in unless and since:
        o = schema.orders
        first = min(since.values())
        rows = conn.execute(
            sa.select(o.c.person_id, o.c.ordered_at).where(
                o.c.person_id.is_not(None), o.c.is_return.is_(False), o.c.ordered_at >= first
            )
        )
        for p, at in rows:
            p = int(p)
            if p in wanted and p in since and at >= since[p]:
                found.setdefault(p, set()).add("converted")
    for i, p in enumerate(ids.tolist()):
        kinds_seen = found.get(p)
        if kinds_seen:
            out[i] = next(k for k in ("converted", "clicked", "opened") if k in kinds_seen)
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
