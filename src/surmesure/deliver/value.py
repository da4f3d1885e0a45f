"""The expected value of reaching a person on a channel: appetence x value of a response - cost.

- appetence: the person's ``appetence_<channel>`` of the latest derive run
  (:mod:`surmesure.derive.appetence`, table ``derived_metrics``); a person never exposed on the
  channel takes the channel's mean over the people who were, else :data:`DEFAULT_APPETENCE`;
- value of a response: the campaign's ``value``, an offer's value, or ``clv``, the person's
  ``expected_value`` (CLV over the derive horizon); a person without one takes the mean CLV of
  those who have one;
- cost: the campaign's ``costs`` (e-mail, SMS per segment of its text as written, paper per
  letter, phone per minute x ``call_minutes``).

Read once for the whole audience and computed with NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import gsm
from surmesure.domain.campaigns import CampaignDefinition
from surmesure.store import backends, schema

Floats = npt.NDArray[np.float64]
Ids = npt.NDArray[np.int64]
DEFAULT_APPETENCE = 0.02
"""Appetence on a channel nobody was exposed on yet."""


@dataclass
class Values:
    """Per person of ``ids`` (same order): appetence per channel and value of a response."""

    ids: Ids
    appetence: dict[str, Floats] = field(default_factory=dict)
    value: Floats = field(default_factory=lambda: np.zeros(0))
    known: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    """Whether the person's own appetence was known (else the channel's mean)."""

    def expected(self, definition: CampaignDefinition, channel: str) -> Floats:
        return self.appetence[channel] * self.value - cost_of(definition, channel)

    def explain(self, definition: CampaignDefinition, at: int, channels: list[str]) -> list[str]:
        """One line per channel for the person at index ``at``."""
        lines = []
        for c in channels:
            a = float(self.appetence[c][at])
            own = "" if self.known[c][at] else " (channel mean: never exposed)"
            cost = cost_of(definition, c)
            ev = a * float(self.value[at]) - cost
            lines.append(
                f"{c}: appetence {a:.3f}{own} x value {float(self.value[at]):.2f} "
                f"- cost {cost:.3f} = {ev:.2f}"
            )
        return lines


def cost_of(definition: CampaignDefinition, channel: str) -> float:
    """What one message costs on ``channel``; an SMS written inline costs its text's
    segments (counted on the text as written, fields unfilled)."""
    cost = definition.cost(channel)
    content = definition.channels.get(channel)  # type: ignore[call-overload]
    if channel == "sms" and content is not None and content.text:
        cost *= gsm.segments(content.text)
    return cost


def _latest(conn: Connection, channels: list[str]) -> dict[str, Floats]:
    """The latest derive run's ``person_id``, ``value`` (CLV) and appetence columns, as
    arrays (NaN for NULL; fetched as NumPy on DuckDB)."""
    d = schema.derived_metrics
    latest = sa.select(sa.func.max(d.c.computed_on)).scalar_subquery()
    columns = [
        sa.cast(d.c.expected_value, sa.Double).label("value"),
        *(sa.cast(d.c[f"appetence_{c}"], sa.Double).label(f"appetence_{c}") for c in channels),
    ]
    query = sa.select(d.c.person_id, *columns).where(d.c.computed_on == latest)
    return backends.of(conn).fetch_numbers(conn, query, ("person_id",))


def values_of(
    conn: Connection, definition: CampaignDefinition, ids: Ids, channels: list[str]
) -> Values:
    """The appetences and values of ``ids`` (ascending) on ``channels`` (see the module)."""
    table = _latest(conn, channels)
    n = ids.size
    out = Values(ids)
    order = np.argsort(table["person_id"], kind="stable")
    found = table["person_id"][order]
    at = np.searchsorted(found, ids)
    at_clipped = np.minimum(at, max(found.size - 1, 0))
    hit = (at < found.size) & (found[at_clipped] == ids) if found.size else np.zeros(n, bool)

    def column(name: str) -> Floats:
        mine = np.full(n, np.nan)
        if found.size:
            mine[hit] = table[name][order][at_clipped[hit]]
        return mine

    for c in channels:
        mine = column(f"appetence_{c}")
        known = ~np.isnan(mine)
        mean = float(np.nanmean(mine)) if known.any() else DEFAULT_APPETENCE
        out.appetence[c] = np.where(known, mine, mean)
        out.known[c] = known
    if definition.value == "clv":
        clv = column("value")
        known = ~np.isnan(clv)
        out.value = np.where(known, clv, float(np.nanmean(clv)) if known.any() else 0.0)
    else:
        out.value = np.full(n, float(definition.value))
    return out
