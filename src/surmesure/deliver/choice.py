"""Which channel reaches each person, or why none does; set-based, for everyone at once.

A channel is open to a person who can be reached on it (holds an identifier of its kind; for
``paper``, a postal address: the traits ``street``, ``postcode`` and ``city``; for ``web``,
everyone: a personal page needs no address), has not refused
marketing on it (with ``consent: granted``: granted it), for a marketing campaign, and whose
e-mail did not complain (``complained``) nor bounce on every address they hold (``bounced``,
:mod:`surmesure.deliver.addresses`: a bounce closes that address only), and whose postal
address did not come back undeliverable (``undeliverable_address``, paper). Among the open
channels, ``policy: first`` takes the first of the order; ``policy: best`` the one of highest
expected value (:mod:`surmesure.deliver.value`; ties: the order).

Nobody can be reached: ``unreachable``; reached only where the e-mail bounced or complained:
``bounced`` / ``complained``; otherwise only where refused: ``opted_out_marketing`` (or
``not_granted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import addresses, guards
from surmesure.deliver.value import Values, values_of
from surmesure.domain.campaigns import (
    CONSENT_CHANNEL,
    POSTAL_TRAITS,
    REACHED_BY,
    CampaignDefinition,
)
from surmesure.protect import consent
from surmesure.store import schema
from surmesure.store.engine import Store

Ids = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


@dataclass
class Choice:
    channel: npt.NDArray[np.object_]
    reason: npt.NDArray[np.object_]
    """Empty where a channel was chosen."""
    expected: npt.NDArray[np.float64]
    """Expected value on the chosen channel (NaN without values or without a channel)."""
    values: Values | None


def _array(conn: Connection, query: sa.Select[Any]) -> Ids:
    return np.asarray(conn.execute(query).scalars().all(), dtype=np.int64)


def reachable(conn: Connection, ids: Ids, channel: str) -> Mask:
    """Who of ``ids`` can be reached on ``channel`` (see the module)."""
    kind = REACHED_BY[channel]
    if kind == "page":  # everyone has a personal page
        return np.ones(ids.size, dtype=bool)
    if kind == "postal":
        t = schema.traits
        query = (
            sa.select(t.c.person_id)
            .where(t.c.name.in_(POSTAL_TRAITS), t.c.person_id.is_not(None))
            .group_by(t.c.person_id)
            .having(sa.func.count(sa.distinct(t.c.name)) == len(POSTAL_TRAITS))
        )
    else:
        ident = schema.identifiers
        query = sa.select(ident.c.person_id).where(ident.c.kind == kind).distinct()
    return np.isin(ids, _array(conn, query))


def held_back(
    conn: Connection, definition: CampaignDefinition, ids: Ids, now: datetime
) -> list[tuple[Mask, str]]:
    """The guardrails on every channel: a recent complaint, a recent purchase of the featured
    products (marketing campaigns only)."""
    if definition.purpose != "marketing":
        return []
    hours = Store.of(conn).settings.complaint_quiet_hours
    out = [(np.isin(ids, _array(conn, guards.complained_lately(now, hours))), guards.COMPLAINED)]
    if definition.featured is not None:
        query = guards.just_bought(definition.featured, now)
        if query is not None:
            out.append((np.isin(ids, _array(conn, query)), guards.JUST_BOUGHT))
    return out


def choose(
    conn: Connection,
    definition: CampaignDefinition,
    ids: Ids,
    order: list[str],
    now: datetime,
    *,
    best: bool = False,
    need_values: bool = False,
) -> Choice:
    """The channel of each person of ``ids`` among ``order`` (see the module)."""
    n = ids.size
    marketing_purpose = definition.purpose == "marketing"
    bounced = np.isin(ids, _array(conn, addresses.bounced_people()))
    returned = (
        np.isin(ids, _array(conn, addresses.undeliverable_people()))
        if "paper" in order
        else np.zeros(n, dtype=bool)
    )
    complained = np.isin(ids, _array(conn, guards.reported_people(guards.COMPLAINED)))
    values = values_of(conn, definition, ids, order) if best or need_values else None
    channel = np.full(n, order[0], dtype=object)
    chosen = np.zeros(n, dtype=bool)
    score = np.full(n, -np.inf)
    reached_any = np.zeros(n, dtype=bool)
    barred_by = np.full(n, "", dtype=object)
    for name in order:
        reached = reachable(conn, ids, name)
        allowed = reached.copy()
        asked = CONSENT_CHANNEL.get(name, name)
        if marketing_purpose:
            if definition.consent == "granted":
                allowed &= np.isin(
                    ids, _array(conn, consent.granted_people("marketing", asked, now))
                )
            else:
                allowed &= ~np.isin(
                    ids, _array(conn, consent.refused_people("marketing", asked, now))
                )
        if name == "email":
            barred_by[reached & complained] = guards.COMPLAINED
            barred_by[reached & bounced & ~complained] = guards.BOUNCED
            allowed &= ~(bounced | complained)
        if name == "paper":
            barred_by[reached & returned & (barred_by == "")] = addresses.UNDELIVERABLE_ADDRESS
            allowed &= ~returned
        reached_any |= reached
        if best and values is not None:
            ev = values.expected(definition, name)
            take = allowed & (ev > score)
            score[take] = ev[take]
        else:
            take = allowed & ~chosen
        channel[take] = name
        chosen |= take
    reason = np.full(n, "", dtype=object)
    refusal = "not_granted" if definition.consent == "granted" else consent.OPTED_OUT_MARKETING
    reason[~chosen] = refusal
    barred = ~chosen & (barred_by != "")
    reason[barred] = barred_by[barred]
    reason[~reached_any] = "unreachable"
    expected = np.full(n, np.nan)
    if values is not None:
        for name in order:
            here = chosen & (channel == name)
            expected[here] = values.expected(definition, name)[here]
    return Choice(channel, reason, expected, values)


def explain(conn: Connection, definition: CampaignDefinition, person: int, now: datetime) -> str:
    """Why the person gets the channel they get (or none), in one sentence."""
    ids = np.asarray([person], dtype=np.int64)
    order = definition.first_order
    picked = choose(conn, definition, ids, order, now, best=definition.best, need_values=True)
    assert picked.values is not None
    lines = picked.values.explain(definition, 0, order)
    if picked.reason[0]:
        return f"no channel ({picked.reason[0]}); expected values: " + "; ".join(lines)
    rule = "highest expected value" if definition.best else "first reachable channel of the order"
    if definition.cascade:
        rule = "first step of the cascade"
    return f"{picked.channel[0]}: {rule}; " + "; ".join(lines)
