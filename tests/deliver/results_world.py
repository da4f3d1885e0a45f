"""A campaign with a control group, sent, with reports, opens, clicks and orders inside and
outside its window; and the figures recomputed per person in plain Python to check results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from campaign_world import HOUR, T0, add_people, document, refuse

from surmesure.deliver import documents, plan
from surmesure.experiments import catalog
from surmesure.store import Store, schema

DAY = timedelta(days=1)
SENT_AT = T0 + HOUR
COSTS = {"email": 0.5, "sms": 2.0}
DAYS = 14


@dataclass
class World:
    ids: dict[int, int]
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    """person_id -> its step-0 message row after sending."""
    orders: list[tuple[int, datetime, bool, float]] = field(default_factory=list)
    opened: set[int] = field(default_factory=set)
    clicked: set[int] = field(default_factory=set)
    bounced: set[int] = field(default_factory=set)
    sms_delivered: set[int] = field(default_factory=set)


def build(store: Store, folder: Path, n: int = 80) -> World:
    """People 1..n: 1..50 with an e-mail, 51..n a phone alone (so SMS); person 3 refused
    e-mail (excluded before assignment). Control 30%, costs e-mail 0.5, SMS 2.0 a segment."""
    ids = add_people(store, folder, n, no_email=set(range(51, n + 1)), phones=set(range(51, n + 1)))
    refuse(store, ids[3], "email")
    doc = document(control=0.3, costs=COSTS, attribution_days=DAYS)
    documents.save(store, documents.parse(doc), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        result = plan.plan(store, conn, definition, version, T0)
    assert result.experiment is not None
    catalog.save(store, result.experiment, T0)
    with store.begin() as conn:
        plan.record(store, conn, result, T0)
    world = World(ids)
    _send(store, world)
    _outcomes(store, world)
    return world


def _send(store: Store, world: World) -> None:
    """Every planned message sent (an SMS as 2 segments), but one failed and one suppressed
    at send time; reports: an e-mail bounced, some SMS delivered, others only accepted."""
    m = schema.messages
    with store.begin() as conn:
        planned = sorted(
            conn.execute(sa.select(m.c.person_id, m.c.channel).where(m.c.status == "planned")).all()
        )
        failed, late = planned[0][0], planned[1][0]
        for person, channel in planned:
            values: dict[str, Any] = {"attempts": 1, "updated_at": SENT_AT}
            if person == failed:
                values.update(status="failed", reason="550 no such user")
            elif person == late:
                values.update(status="suppressed", reason="opted_out_marketing")
            else:
                units = 2 if channel == "sms" else 1
                values.update(status="sent", sent_at=SENT_AT, units=units)
            conn.execute(m.update().where(m.c.person_id == person).values(**values))
        rows = conn.execute(sa.select(m)).mappings().all()
    world.rows = {int(r["person_id"]): dict(r) for r in rows}
    sent = [p for p, r in sorted(world.rows.items()) if r["status"] == "sent"]
    emails = [p for p in sent if world.rows[p]["channel"] == "email"]
    sms = [p for p in sent if world.rows[p]["channel"] == "sms"]
    world.bounced = set(emails[:2])
    world.sms_delivered = set(sms[::2])
    reports = [(p, "bounced") for p in sorted(world.bounced)]
    for p in sms:  # accepted first, then delivered for every other one
        reports.append((p, "accepted"))
        if p in world.sms_delivered:
            reports.append((p, "delivered"))
    with store.begin() as conn:
        for i, (p, status) in enumerate(reports):
            conn.execute(
                schema.delivery_reports.insert().values(
                    report_id=f"r{i:04d}",
                    message_id=world.rows[p]["message_id"],
                    channel=world.rows[p]["channel"],
                    status=status,
                    received_at=SENT_AT + (i + 1) * timedelta(seconds=1),
                )
            )


def _outcomes(store: Store, world: World) -> None:
    """Opens and clicks of some e-mails sent; orders of treated and control people inside the
    window, before it, after it, and a return."""
    emails = [p for p, r in sorted(world.rows.items()) if r["channel"] == "email" and r["sent_at"]]
    world.opened = set(emails[::3])
    world.clicked = {emails[1], emails[3]} | set(emails[::6])  # two without a tracked open
    activity = [(p, "opened") for p in sorted(world.opened)]
    activity += [(p, "clicked") for p in sorted(world.clicked)]
    activity.append((emails[2], "unsubscribed"))  # neither an open nor a click
    people = sorted(world.rows)
    for k, p in enumerate(people):
        if k % 3 == 0:
            world.orders.append((p, T0 + (k % 10 + 1) * DAY, False, 20.0 + 7 * (k % 5)))
        if k % 4 == 1:
            world.orders.append((p, T0 + 2 * HOUR, False, 35.0 + k))
        if k % 7 == 2:
            world.orders.append((p, T0 + (DAYS + 1) * DAY, False, 99.0))  # after the window
        if k % 9 == 4:
            world.orders.append((p, T0 - DAY, False, 50.0))  # before the campaign
    world.orders.append((people[0], T0 + 3 * DAY, True, 15.0))  # a return, in the window
    with store.begin() as conn:
        for i, (p, kind) in enumerate(activity):
            conn.execute(
                schema.channel_activity.insert().values(
                    activity_id=f"a{i:04d}",
                    person_id=p,
                    node_id=p,
                    channel="email",
                    kind=kind,
                    campaign="spring",
                    occurred_at=SENT_AT + HOUR,
                    source="tracking",
                )
            )
        rows = [
            {
                "order_id": f"o{i:04d}",
                "person_id": p,
                "node_id": p,
                "ordered_at": at,
                "is_return": ret,
                "total_amount": amount,
                "currency": "EUR",
                "source": "shop",
            }
            for i, (p, at, ret, amount) in enumerate(world.orders)
        ]
        store.bulk_insert(conn, schema.orders, pa.Table.from_pylist(rows))


def arm_of(row: dict[str, Any]) -> str | None:
    if row["status"] == "held_out":
        return "control" if row["reason"] == "control" else "global_holdout"
    if row["status"] == "suppressed" and row["attempts"] == 0:
        return None
    return "message"


def per_person(world: World) -> dict[int, dict[str, Any]]:
    """Each assigned person's figures, by the rules of :mod:`surmesure.deliver.results`."""
    out: dict[int, dict[str, Any]] = {}
    for p, row in world.rows.items():
        arm = arm_of(row)
        if arm is None:
            continue
        start, end = row["planned_at"], row["planned_at"] + DAYS * DAY
        mine = [o for o in world.orders if o[0] == p and start <= o[1] < end]
        sent = row["status"] == "sent"
        if row["channel"] == "sms":
            delivered = sent and p in world.sms_delivered
        else:
            delivered = sent and p not in world.bounced
        out[p] = {
            "arm": arm,
            "channel": row["channel"],
            "sent": int(sent),
            "delivered": int(delivered),
            "opened": int(p in world.opened or p in world.clicked),
            "clicked": int(p in world.clicked),
            "converted": int(any(not o[2] for o in mine)),
            "revenue": sum(-abs(o[3]) if o[2] else o[3] for o in mine),
            "cost": COSTS[row["channel"]] * (row["units"] or 0) if sent else 0.0,
        }
    return out
