"""Planning a campaign: for everyone in its audience, a message to send or the reason not to.

Set-based: the audience is one array of person ids, and each guardrail is one query over
everyone (who refused, who is held back, who can be reached, who reached a cap), applied with
NumPy; no per-person loop but the keyed hash of each message id. In this order, the first rule
that holds gives a person's row:

1. ``paused`` / ``topic_refused``: marketing paused, or the campaign's topic left
   (:mod:`surmesure.protect.marketing`), for a marketing campaign;
2. ``complained`` (a complaint within ``SURMESURE_COMPLAINT_QUIET_HOURS``) and
   ``just_bought`` (a featured product or category bought lately), for a marketing campaign
   (:mod:`surmesure.deliver.guards`);
3. the channel (:mod:`surmesure.deliver.choice`): among those the person can be reached on,
   has not refused marketing on and whose e-mail did not bounce or complain, the first of the
   policy's order or, with ``policy: {choose: best}``, the one of highest expected value; else
   ``unreachable``, ``bounced``, ``complained``, ``opted_out_marketing`` (or ``not_granted``);
   a cascade's step that needs its value above its cost: ``value_below_cost`` (``skipped``);
4. ``frequency_cap``: as many messages sent in the last day (week) as ``caps`` allows, across
   campaigns and channels (:func:`surmesure.deliver.guards.capped`, read again at send time);
   a person at the cap ``caps.channels`` sets for the chosen channel gets the policy's next
   channel they can be reached on instead, and ``frequency_cap`` only when none is left;
5. ``global_holdout`` / ``control`` (status ``held_out``): the experiment engine's assignment
   (:mod:`surmesure.experiments.assign`) of the people left, recorded as an experiment named
   ``campaign_<name>`` so that results compare the control group with the rest;
6. ``next_best_action``: the campaign's saved model gives the person "do nothing"
   (:mod:`surmesure.deliver.next_best`);
7. otherwise ``planned`` on the chosen channel, due now or, in quiet hours, when they end in
   the person's time zone (the trait ``time_zone``, else the quiet hours' own).

When the channel's template has a ``next_best_action``, each planned or held-out row also
records the action its model chose and the variant that carries it (``action``, ``variant``);
the message is rendered with that variant, and the choice's explanation is written to the
decision log (:mod:`surmesure.deliver.next_best`).

People who already have a row for the campaign and step keep it: planning again adds only the
newcomers, so a campaign is resumable and nobody is planned twice.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.context import zone_named
from surmesure.deliver import choice, guards, next_best
from surmesure.domain.campaigns import CampaignDefinition, QuietHours
from surmesure.experiments.assign import holdout_mask, variants_of
from surmesure.experiments.definitions import ExperimentDefinition
from surmesure.protect import marketing
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.people import bulk_audience, ids_of
from surmesure.unify.profile import decode_json

Ids = npt.NDArray[np.int64]
VALUE_BELOW_COST = "value_below_cost"
SKIP_REASONS = ("opened", "clicked", "converted", VALUE_BELOW_COST)
"""Why a cascade's step did not run for a person (status ``skipped``)."""
MEMBERS = (
    "SELECT m.person_id FROM segment_members m JOIN people p ON p.person_id = m.person_id "
    "WHERE m.segment = :segment AND p.merged_into IS NULL ORDER BY m.person_id"
)


@dataclass
class Plan:
    """What planning decided for the people not planned before: the rows, and counts."""

    campaign: str
    version: int
    audience: int
    already: int
    rows: pa.Table
    counts: dict[str, int] = field(default_factory=dict)
    """By status, and ``status:reason`` for the rows that are not planned."""
    by_channel: dict[str, int] = field(default_factory=dict)
    experiment: ExperimentDefinition | None = None
    assigned: tuple[Ids, list[str]] | None = None
    explanations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By message id: why its template's next best action gave the person their variant."""


def message_id(secret_key: str, campaign: str, person_id: int, channel: str, step: int) -> str:
    """The outbox's id of a message: a hash of its idempotency key keyed by ``secret_key``
    (stable across runs and retries; the person's id cannot be read back from it)."""
    key = secret_key.encode()
    text = f"{campaign}:{person_id}:{channel}:{step}".encode()
    return hmac.new(key, text, hashlib.blake2b).hexdigest()[:32]


def due_at(now: datetime, quiet: QuietHours | None, zone_name: str | None = None) -> datetime:
    """``now``, or when the quiet hours around ``now`` end in the time zone ``zone_name``
    (default: the quiet hours' own), naive UTC in and out."""
    if quiet is None or quiet.start == quiet.end:
        return now
    zone = zone_named(zone_name) or ZoneInfo(quiet.timezone)
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    hour = local.hour
    inside = (
        quiet.start <= hour < quiet.end
        if quiet.start < quiet.end
        else hour >= quiet.start or hour < quiet.end
    )
    if not inside:
        return now
    end = local.replace(hour=quiet.end, minute=0, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def zones_of(conn: Connection, ids: Ids) -> dict[int, str]:
    """Each person's ``time_zone`` trait, the latest observed, for those who have one."""
    t = schema.traits
    rows = conn.execute(
        sa.select(t.c.person_id, t.c.value)
        .where(t.c.name == "time_zone", t.c.person_id.is_not(None))
        .order_by(t.c.observed_at)
    )
    wanted = set(ids.tolist()) if ids.size < 100_000 else None
    return {
        int(p): str(decode_json(v))
        for p, v in rows
        if v is not None and (wanted is None or int(p) in wanted)
    }


def _array(conn: Connection, query: sa.Select[Any]) -> Ids:
    return np.asarray(conn.execute(query).scalars().all(), dtype=np.int64)


def audience_of(store: Store, conn: Connection, definition: CampaignDefinition) -> Ids:
    """The current person ids of the audience, ascending."""
    if definition.segment is not None:
        return ids_of(store, conn, MEMBERS, {"segment": definition.segment})
    return bulk_audience(store, conn)


def experiment_of(definition: CampaignDefinition) -> ExperimentDefinition | None:
    """The control group as an experiment (``None`` without a control group)."""
    c = definition.control
    if c <= 0:
        return None
    return ExperimentDefinition(
        name=definition.experiment,
        description=f"control group of campaign {definition.name}",
        salt=f"campaign:{definition.name}",
        variants=[
            {"name": "control", "weight": c, "capacity": c},
            {"name": "message", "weight": 1 - c, "capacity": 1 - c},
        ],
        control="control",
        holdout=definition.holdout,
        primary="conversion",
        guardrails=["revenue", "unsubscribe"],
        attribution_days=definition.attribution_days,
        channel=definition.order[0],
        topic=definition.topic,
    )


def plan(
    store: Store,
    conn: Connection,
    definition: CampaignDefinition,
    version: int,
    now: datetime,
    step: int = 0,
    *,
    candidates: Ids | None = None,
    order: list[str] | None = None,
    above_cost: bool = False,
    preset: npt.NDArray[np.object_] | None = None,
) -> Plan:
    """Decide the row of everyone in the audience without a row yet (see the module);
    ``candidates``: these people instead of the audience (a cascade's later step), ``order``:
    these channels instead of the campaign's, ``above_cost``: only where the expected value
    exceeds the channel's cost (else ``value_below_cost``); ``preset``: a reason already known
    per candidate (``""``: none)."""
    m = schema.messages
    everyone = audience_of(store, conn, definition) if candidates is None else candidates
    order = order or definition.first_order
    done = _array(
        conn,
        sa.select(m.c.person_id).where(
            m.c.campaign == definition.name, m.c.step == step, m.c.person_id.is_not(None)
        ),
    )
    new = ~np.isin(everyone, done)
    ids = everyone[new]
    n = ids.size
    reason = np.full(n, "", dtype=object) if preset is None else preset[new].copy()
    status = np.full(n, "suppressed", dtype=object)
    marketing_purpose = definition.purpose == "marketing"

    def mark(where: npt.NDArray[np.bool_], why: str) -> None:
        reason[where & (reason == "")] = why

    if marketing_purpose:
        paused = _array(conn, marketing.held_back_people(None, now))
        mark(np.isin(ids, paused), marketing.PAUSED)
        if definition.topic is not None:
            left = _array(conn, marketing.held_back_people(definition.topic, now))
            mark(np.isin(ids, left), marketing.TOPIC_REFUSED)

    for where, why in choice.held_back(conn, definition, ids, now):
        mark(where, why)
    picked = choice.choose(
        conn, definition, ids, order, now, best=definition.best, need_values=above_cost
    )
    channel = picked.channel
    reason[(reason == "") & (picked.reason != "")] = picked.reason[
        (reason == "") & (picked.reason != "")
    ]
    expected = picked.expected
    capped_on: dict[str, npt.NDArray[np.bool_]] = {}
    for on, query in guards.capped(definition.caps, now):
        hit = np.isin(ids, _array(conn, query))
        if on is None:
            mark(hit, guards.FREQUENCY_CAP)
        else:
            capped_on[on] = hit
    if capped_on:
        expected = _around_caps(conn, definition, ids, order, now, above_cost, capped_on, channel,
                                expected, reason)  # fmt: skip
    if above_cost:
        mark(~(expected > 0), VALUE_BELOW_COST)

    eligible = reason == ""
    experiment = experiment_of(definition) if step == 0 else None
    assigned: tuple[Ids, list[str]] | None = None
    if experiment is not None:
        variant = variants_of(experiment, ids[eligible])
        in_holdout = holdout_mask(ids[eligible], definition.holdout)
        held = np.full(n, "", dtype=object)
        held[eligible] = np.where(in_holdout, "global_holdout", "")
        held[np.flatnonzero(eligible)[(variant == 0) & ~in_holdout]] = "control"
        inside = variant >= 0
        names = np.array(["control", "message"], dtype=object)
        assigned = (ids[eligible][inside], names[variant[inside]].tolist())
    else:
        held = np.full(n, "", dtype=object)
        if step == 0:
            held[eligible] = np.where(
                holdout_mask(ids[eligible], definition.holdout), "global_holdout", ""
            )
    is_held = eligible & (held != "")
    status[is_held] = "held_out"
    reason[is_held] = held[is_held]
    planned = eligible & ~is_held
    if definition.next_best_action is not None and step == 0:
        nothing = np.zeros(n, dtype=bool)
        nothing[planned] = next_best.given_nothing(conn, definition, ids[planned], now)
        reason[nothing] = next_best.REASON
        planned &= ~nothing
    status[planned] = "planned"
    reason[planned] = None
    status[np.isin(reason.astype(str), SKIP_REASONS)] = "skipped"
    # the control group and the holdout get the action too: results compare like with like
    chooses = planned | (status == "held_out")
    actions = next_best.template_actions(conn, definition, ids[chooses], channel[chooses], now)
    action = np.full(n, None, dtype=object)
    chosen_variant = np.full(n, None, dtype=object)
    action[chooses], chosen_variant[chooses] = actions.action, actions.variant

    quiet = definition.window.quiet_hours
    zones = zones_of(conn, ids[planned]) if quiet is not None else {}
    default = due_at(now, quiet)
    by_zone = {z: due_at(now, quiet, z) for z in set(zones.values())}
    due = [by_zone[zones[p]] if p in zones else default for p in ids.tolist()]
    secret = Store.of(conn).settings.secret_key
    ids_of_messages = [
        message_id(secret, definition.name, int(p), str(c), step)
        for p, c in zip(ids.tolist(), channel.tolist(), strict=True)
    ]
    rows = pa.table(
        {
            "message_id": pa.array(ids_of_messages, pa.string()),
            "campaign": pa.array([definition.name] * n, pa.string()),
            "version": pa.array(np.full(n, version, dtype=np.int32)),
            "person_id": pa.array(ids, pa.int64()),
            "channel": pa.array(channel.tolist(), pa.string()),
            "step": pa.array(np.full(n, step, dtype=np.int16)),
            "status": pa.array(status.tolist(), pa.string()),
            "reason": pa.array(reason.tolist(), pa.string()),
            "attempts": pa.array(np.zeros(n, dtype=np.int16)),
            "next_attempt_at": pa.array(
                [d if p else None for d, p in zip(due, planned, strict=True)], pa.timestamp("us")
            ),
            "planned_at": pa.array([now] * n, pa.timestamp("us")),
            "updated_at": pa.array([now] * n, pa.timestamp("us")),
            "action": pa.array(action.tolist(), pa.string()),
            "variant": pa.array(chosen_variant.tolist(), pa.string()),
        }
    )
    at = np.flatnonzero(chooses).tolist()
    explained = {ids_of_messages[at[k]]: note for k, note in actions.explanations.items()}
    counts: dict[str, int] = {}
    for s, r in zip(status.tolist(), reason.tolist(), strict=True):
        key = s if r is None else f"{s}:{r}"
        counts[key] = counts.get(key, 0) + 1
    by_channel = {str(c): int(((channel == c) & planned).sum()) for c in order}
    result = Plan(
        definition.name,
        version,
        int(everyone.size),
        int(everyone.size - n),
        rows,
        dict(sorted(counts.items())),
        by_channel,
        experiment,
    )
    result.assigned = assigned
    result.explanations = explained
    return result


def _around_caps(
    conn: Connection,
    definition: CampaignDefinition,
    ids: Ids,
    order: list[str],
    now: datetime,
    above_cost: bool,
    capped_on: dict[str, npt.NDArray[np.bool_]],
    channel: npt.NDArray[np.object_],
    expected: npt.NDArray[np.float64],
    reason: npt.NDArray[np.object_],
) -> npt.NDArray[np.float64]:
    """A person whose chosen channel reached its own cap (``caps.channels``) gets the policy's
    next channel they can be reached on and are not capped on (``channel`` and ``reason``
    updated in place); ``frequency_cap`` when none is left. The expected values, updated."""
    names = sorted(capped_on)
    held = np.stack([capped_on[c] for c in names], axis=1)
    expected = expected.copy()
    for key in {tuple(row) for row in held.tolist() if any(row)}:
        barred = {c for c, on in zip(names, key, strict=True) if on}
        group = (held == np.asarray(key)).all(axis=1) & np.isin(channel, list(barred))
        group &= reason == ""
        if not group.any():
            continue
        rest = [c for c in order if c not in barred]
        if not rest:
            reason[group] = guards.FREQUENCY_CAP
            continue
        again = choice.choose(conn, definition, ids[group], rest, now, best=definition.best,
                              need_values=above_cost)  # fmt: skip
        at = np.flatnonzero(group)
        found = again.reason == ""
        channel[at[found]] = again.channel[found]
        expected[at[found]] = again.expected[found]
        reason[at[~found]] = guards.FREQUENCY_CAP
    return expected


def record(store: Store, conn: Connection, result: Plan, now: datetime) -> int:
    """Write the plan's rows (and the control group's assignments); the number of new rows.
    The control group's experiment must be saved first (:func:`experiments.catalog.save`)."""
    from surmesure.experiments import catalog

    if result.experiment is not None and result.assigned is not None:
        ids, variants = result.assigned
        assignments = pa.table(
            {
                "experiment": pa.array([result.experiment.name] * ids.size, pa.string()),
                "person_id": pa.array(ids, pa.int64()),
                "variant": pa.array(variants, pa.string()),
                "assigned_at": pa.array([now] * ids.size, pa.timestamp("us")),
            }
        )
        if store.bulk_insert(conn, schema.experiment_assignments, assignments):
            catalog.mark_running(conn, result.experiment.name, now)
    written = store.bulk_insert(conn, schema.messages, result.rows)
    if result.explanations:
        next_best.log(store, conn, result.campaign, result.rows, result.explanations, now)
    return written
