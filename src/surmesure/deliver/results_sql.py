"""The store's side of campaign results: per-person figures summed per arm, channel (and
segment) in one SQL statement, the same on DuckDB and PostgreSQL.

The rules (who is treated, control or held out; the window; what counts as delivered, opened,
converted; the cost) are written in :mod:`surmesure.deliver.results`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.campaigns import REACHED_BY, CampaignDefinition
from surmesure.learn.moments import Moments

TREATED, CONTROL, HOLDOUT = "message", "control", "global_holdout"
ALL = "all"
REPORTED = frozenset({"sms", "web", "video"})
"""Channels whose delivery is confirmed by a report: delivered only once reported so (a web
or video message: once its link left on another channel, or its page was opened)."""
FAILED_REPORTS = ("failed", "rejected", "bounced")
COUNTS = ("people", "sent", "delivered", "opened", "clicked", "converted")


@dataclass(frozen=True, slots=True)
class Group:
    """Sums over the people of one arm (and channel, and segment)."""

    arm: str
    channel: str
    people: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0
    cost: float = 0.0

    def __add__(self, other: Group) -> Group:
        sums = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("arm", "channel")
        }
        return Group(self.arm, self.channel, **sums)

    def conversion(self) -> Moments:
        return Moments(self.people, float(self.converted), float(self.converted), "binomial")

    def revenue_moments(self) -> Moments:
        return Moments(self.people, self.revenue, self.revenue_squares, "mean")

    def to_dict(self) -> dict[str, Any]:
        n = self.people
        out: dict[str, Any] = {"arm": self.arm, "channel": self.channel}
        out.update({k: getattr(self, k) for k in COUNTS})
        out["conversion_rate"] = self.converted / n if n else None
        out["revenue"] = round(self.revenue, 6)
        out["revenue_per_person"] = self.revenue / n if n else None
        out["cost"] = round(self.cost, 6)
        return out


def _sql(definition: CampaignDefinition, by: bool, variants: bool = False) -> str:
    """Sums per arm and channel (and segment, with ``by``; and variant and action, with
    ``variants``); binds ``:campaign``, a ``:cost_<channel>`` per channel, and with ``by`` the
    expanding ``:segments``."""
    days = f"INTERVAL '{int(definition.attribution_days)} days'"
    cost = " ".join(
        f"WHEN '{c}' THEN CAST(:cost_{c} AS DOUBLE PRECISION)" for c in sorted(REACHED_BY)
    )
    reported = ", ".join(f"'{c}'" for c in sorted(REPORTED))
    failed = ", ".join(f"'{s}'" for s in FAILED_REPORTS)
    segment = "s.segment, " if by else "pp.variant, pp.action, " if variants else ""
    members = (
        "JOIN segment_members s ON s.person_id = pp.person_id AND s.segment IN :segments "
        if by
        else ""
    )
    return f"""
WITH f0 AS (
  SELECT person_id, channel, planned_at, variant, action,
    CASE WHEN status = 'held_out' AND reason = 'control' THEN '{CONTROL}'
         WHEN status = 'held_out' THEN '{HOLDOUT}' ELSE '{TREATED}' END AS arm,
    row_number() OVER (PARTITION BY person_id ORDER BY planned_at,
      CASE WHEN reason LIKE 'link:%' THEN 1 ELSE 0 END, message_id) AS rn
  FROM messages
  WHERE campaign = :campaign AND step = 0 AND person_id IS NOT NULL
    AND NOT (status = 'suppressed' AND attempts = 0)
),
f AS (SELECT person_id, channel, planned_at, variant, action, arm FROM f0 WHERE rn = 1),
r AS (
  SELECT message_id, status, row_number() OVER (
    PARTITION BY message_id ORDER BY received_at DESC, report_id DESC) AS rn
  FROM delivery_reports
  WHERE message_id IN (SELECT message_id FROM messages WHERE campaign = :campaign)
),
l AS (
  SELECT m.person_id,
    max(CASE WHEN m.status = 'sent' THEN 1 ELSE 0 END) AS sent,
    max(CASE WHEN m.status = 'sent' AND (CASE WHEN m.channel IN ({reported})
      THEN coalesce(r.status, '') = 'delivered'
      ELSE coalesce(r.status, '') NOT IN ({failed}) END) THEN 1 ELSE 0 END) AS delivered,
    sum(CASE WHEN m.status = 'sent' THEN coalesce(m.units, 1)
      * (CASE m.channel {cost} ELSE 0 END) ELSE 0 END) AS cost
  FROM messages m LEFT JOIN r ON r.message_id = m.message_id AND r.rn = 1
  WHERE m.campaign = :campaign AND m.person_id IS NOT NULL
  GROUP BY m.person_id
),
a AS (
  SELECT person_id, max(CASE WHEN kind = 'clicked' THEN 1 ELSE 0 END) AS clicked
  FROM channel_activity
  WHERE campaign = :campaign AND kind IN ('opened', 'clicked') AND person_id IS NOT NULL
  GROUP BY person_id
),
b AS (
  SELECT f.person_id, max(CASE WHEN o.is_return THEN 0 ELSE 1 END) AS converted,
    sum(CASE WHEN o.is_return THEN -abs(o.total_amount) ELSE o.total_amount END) AS revenue
  FROM f JOIN orders o ON o.person_id = f.person_id
    AND o.ordered_at >= f.planned_at AND o.ordered_at < f.planned_at + {days}
  GROUP BY f.person_id
),
pp AS (
  SELECT f.person_id, f.arm, f.channel, f.variant, f.action, coalesce(l.sent, 0) AS sent,
    coalesce(l.delivered, 0) AS delivered,
    CASE WHEN a.person_id IS NULL THEN 0 ELSE 1 END AS opened,
    coalesce(a.clicked, 0) AS clicked, coalesce(b.converted, 0) AS converted,
    CAST(coalesce(b.revenue, 0) AS DOUBLE PRECISION) AS revenue,
    CAST(coalesce(l.cost, 0) AS DOUBLE PRECISION) AS cost
  FROM f LEFT JOIN l ON l.person_id = f.person_id LEFT JOIN a ON a.person_id = f.person_id
    LEFT JOIN b ON b.person_id = f.person_id
)
SELECT {segment}pp.arm, pp.channel, count(*), sum(pp.sent), sum(pp.delivered), sum(pp.opened),
  sum(pp.clicked), sum(pp.converted), sum(pp.revenue), sum(pp.revenue * pp.revenue),
  sum(pp.cost)
FROM pp {members}GROUP BY {segment}pp.arm, pp.channel
"""


def groups_of(
    conn: Connection, definition: CampaignDefinition, segments: Sequence[str] = ()
) -> list[tuple[str | None, Group]]:
    """Sums per arm and channel, each with its segment (with ``segments``)."""
    return [(None if k is None else k[0], g) for k, g in _groups(conn, definition, segments)]


def groups_by_variant(
    conn: Connection, definition: CampaignDefinition
) -> list[tuple[tuple[str | None, str | None], Group]]:
    """Sums per arm and channel, each with its ``(variant, action)``: what the template's
    next best action chose (held-out people: what it would have chosen)."""
    return [
        ((k[0], k[1]) if k else (None, None), g) for k, g in _groups(conn, definition, (), True)
    ]


def _groups(
    conn: Connection,
    definition: CampaignDefinition,
    segments: Sequence[str] = (),
    variants: bool = False,
) -> list[tuple[tuple[str | None, ...] | None, Group]]:
    by = bool(segments)
    query = sa.text(_sql(definition, by, variants))
    params: dict[str, Any] = {"campaign": definition.name}
    params.update({f"cost_{c}": float(definition.costs.get(c, 0.0)) for c in REACHED_BY})  # type: ignore[call-overload]
    if by:
        query = query.bindparams(sa.bindparam("segments", expanding=True))
        params["segments"] = list(segments)
    keys = 1 if by else 2 if variants else 0
    out: list[tuple[tuple[str | None, ...] | None, Group]] = []
    for row in conn.execute(query, params):
        values = list(row)
        key = tuple(None if v is None else str(v) for v in values[:keys]) if keys else None
        arm, channel, *sums = values[keys:]
        counts = [int(v or 0) for v in sums[:6]]
        money = [float(v or 0.0) for v in sums[6:]]
        out.append((key, Group(str(arm), str(channel), *counts, *money)))
    return out
