"""Channel appetence: how readily a person responds on each channel, smoothed toward the crowd.

Per identified person and channel, over everything on or before ``as_of``:

- ``email``, ``sms``, ``phone``, ``paper``: exposures are the distinct messages (campaign, or the
  activity itself when it has none) ``sent`` or ``delivered`` on that channel
  (``channel_activity``); responses are the distinct messages ``opened`` or ``clicked``, at most
  as many as the exposures;
- ``web``: exposures are the distinct days with a ``page``, ``screen`` or ``track`` event of the
  person; responses are the days with a ``track`` event (an action beyond reading a page).

A raw rate over three sends says little, so each rate is shrunk toward its channel's population
rate (empirical Bayes, Beta-Binomial). Per channel, over the people exposed at least once
(``n_i`` exposures, ``k_i`` responses, ``p_i = k_i / n_i``), the prior ``Beta(a, b)`` is fitted
by the method of moments:

    m = mean(p_i);  S = population variance of p_i;  E = m (1 - m) mean(1 / n_i)
    strength = a + b = m (1 - m) / (S - E) - 1, clipped to [MIN_STRENGTH, MAX_STRENGTH]
    (MAX_STRENGTH when S - E <= 0: no spread beyond sampling noise)
    a = m * strength,  b = (1 - m) * strength

``E`` removes the binomial noise from the observed spread. A person's appetence is the
posterior mean ``(a + k) / (a + b + n)``; it is NULL on a channel where the person was never
exposed. ``best_channel`` is the channel of highest appetence among those where the person was
exposed (ties: the order of ``CHANNELS``), NULL when none.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from surmesure.derive.source import identified_people

CHANNELS = ("email", "sms", "phone", "paper", "web")
MESSAGE_CHANNELS = CHANNELS[:-1]
MIN_STRENGTH = 1.0
MAX_STRENGTH = 10_000.0
APPETENCE_COLUMNS = ("person_id", *(f"appetence_{c}" for c in CHANNELS), "best_channel")


class ChannelPrior(BaseModel):
    """The fitted Beta prior of one channel."""

    channel: str
    people: int
    exposures: int
    responses: int
    mean_rate: float
    a: float
    b: float


def exposures(backend: Any, as_of: date) -> ir.Table:
    """Long form: one row per identified person and channel with at least one exposure:
    ``person_id``, ``channel``, ``exposures``, ``responses`` (capped at exposures)."""
    cutoff = ibis.timestamp(as_of + timedelta(days=1))
    people = identified_people(backend).select("person_id")
    activity = backend.table("channel_activity")
    kept = activity.filter(
        activity.person_id.notnull(),
        activity.channel.isin(MESSAGE_CHANNELS),
        activity.occurred_at < cutoff,
    ).semi_join(people, "person_id")
    message = kept.campaign.coalesce(kept.activity_id)
    mail = kept.group_by("person_id", "channel").aggregate(
        exposures=message.nunique(where=kept.kind.isin(["sent", "delivered"])),
        responses=message.nunique(where=kept.kind.isin(["opened", "clicked"])),
    )
    events = backend.table("events")
    web = events.filter(
        events.person_id.notnull(),
        events.type.isin(["page", "screen", "track"]),
        events.occurred_at < cutoff,
    ).semi_join(people, "person_id")
    day = web.occurred_at.date()
    visits = web.group_by("person_id").aggregate(
        exposures=day.nunique(), responses=day.nunique(where=web.type == "track")
    )
    both = _uniform(mail).union(_uniform(visits.mutate(channel=ibis.literal("web"))))
    both = both.filter(both.exposures > 0)
    return both.select(
        person_id=both.person_id,
        channel=both.channel,
        exposures=both.exposures.cast("int64"),
        responses=ibis.least(both.responses, both.exposures).cast("int64"),
    )


def _uniform(table: ir.Table) -> ir.Table:
    # a set operation wants equal types, and PostgreSQL's varchar(16) is not a string
    return table.select(
        person_id=table.person_id.cast("int64"),
        channel=table.channel.cast("string"),
        exposures=table.exposures.cast("int64"),
        responses=table.responses.cast("int64"),
    )


def fit_prior(channel: str, n: np.ndarray, k: np.ndarray) -> ChannelPrior:
    """The method-of-moments Beta prior (see the module docstring) from exposures ``n`` > 0 and
    responses ``k`` of the people exposed on ``channel``."""
    n = np.asarray(n, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if len(n) == 0:
        return ChannelPrior(
            channel=channel, people=0, exposures=0, responses=0, mean_rate=0.0, a=0.0, b=0.0
        )
    rate = k / n
    m = float(rate.mean())
    spread = float(rate.var()) - m * (1 - m) * float((1 / n).mean())
    if spread <= 0:
        strength = MAX_STRENGTH
    else:
        strength = float(np.clip(m * (1 - m) / spread - 1, MIN_STRENGTH, MAX_STRENGTH))
    return ChannelPrior(
        channel=channel,
        people=len(n),
        exposures=int(n.sum()),
        responses=int(k.sum()),
        mean_rate=m,
        a=m * strength,
        b=(1 - m) * strength,
    )


def smooth(long: pa.Table) -> tuple[pa.Table, list[ChannelPrior]]:
    """From :func:`exposures` (as Arrow), the wide table (columns ``APPETENCE_COLUMNS``, one
    row per person exposed anywhere) and the prior of every channel."""
    people = pc.unique(long.column("person_id")).sort()
    position = pc.index_in(long.column("person_id"), people).to_numpy(zero_copy_only=False)
    channel = long.column("channel").to_numpy(zero_copy_only=False)
    n_all = long.column("exposures").to_numpy(zero_copy_only=False).astype(np.float64)
    k_all = long.column("responses").to_numpy(zero_copy_only=False).astype(np.float64)
    values = np.full((len(people), len(CHANNELS)), np.nan)
    priors = []
    for j, name in enumerate(CHANNELS):
        on = channel == name
        prior = fit_prior(name, n_all[on], k_all[on])
        priors.append(prior)
        if on.any():
            values[position[on], j] = (prior.a + k_all[on]) / (prior.a + prior.b + n_all[on])
    ranked = np.where(np.isnan(values), -np.inf, values)
    best = ranked.argmax(axis=1) if len(people) else np.zeros(0, np.int64)
    columns: dict[str, pa.Array] = {"person_id": people}
    for j, name in enumerate(CHANNELS):
        columns[f"appetence_{name}"] = pa.array(
            values[:, j], pa.float64(), mask=np.isnan(values[:, j])
        )
    columns["best_channel"] = pa.array([CHANNELS[i] for i in best], pa.string())
    return pa.table(columns), priors


def appetence(backend: Any, as_of: date) -> tuple[pa.Table, list[ChannelPrior]]:
    """Per person exposed on some channel by ``as_of``: smoothed appetence per channel and the
    best channel (columns ``APPETENCE_COLUMNS``), with the fitted priors."""
    return smooth(exposures(backend, as_of).to_pyarrow())
