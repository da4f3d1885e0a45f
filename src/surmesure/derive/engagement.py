"""Relational and transactional engagement per identified person.

Over the window of ``window_days`` days ending on ``as_of`` (activity dated after
``as_of - window_days`` and on or before ``as_of``):

- ``email_sent``: e-mails sent (``channel_activity`` rows of channel ``email``, kind ``sent``);
- ``email_opens`` / ``email_clicks``: distinct campaigns opened / clicked (an activity without
  a campaign counts alone), so repeated opens of one message count once;
- ``open_rate`` / ``click_rate``: opens / clicks over e-mails sent, NULL when none was sent (a
  message sent just before the window and opened in it can push a rate above 1);
- ``purchases_per_month``: purchase orders in the window per 30.4375 days.

Over the whole history up to ``as_of``:

- ``days_since_interaction``: days since the last order (purchase or return), e-mail open or
  click, or survey answer; NULL when there is none;
- ``gap_regularity``: coefficient of variation (population standard deviation over mean) of
  the gaps in days between consecutive purchase days; 0 is a metronome, NULL with fewer than
  two gaps.

People with no activity at all get no row. Category breadth, up-sell potential and the 0-100
engagement scores built on these columns are in :mod:`surmesure.derive.engagement_scores`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from surmesure.derive.source import days_between, identified_people, person_orders

DAYS_PER_MONTH = 30.4375
ENGAGEMENT_COLUMNS = (
    "person_id",
    "email_sent",
    "email_opens",
    "email_clicks",
    "open_rate",
    "click_rate",
    "purchases_per_month",
    "days_since_interaction",
    "gap_regularity",
)


def _activity(backend: Any, as_of: date) -> ir.Table:
    """E-mail activity of identified people on or before ``as_of``, with its day."""
    activity = backend.table("channel_activity")
    people = identified_people(backend).select("person_id")
    kept = activity.filter(
        activity.person_id.notnull(),
        activity.channel == "email",
        activity.occurred_at < ibis.timestamp(as_of + timedelta(days=1)),
    ).semi_join(people, "person_id")
    return kept.select(
        "person_id",
        "kind",
        day=kept.occurred_at.date(),
        message=kept.campaign.coalesce(kept.activity_id),
    )


def _last_answers(backend: Any, as_of: date) -> ir.Table:
    answers = backend.table("survey_answers")
    kept = answers.filter(
        answers.person_id.notnull(),
        answers.answered_at < ibis.timestamp(as_of + timedelta(days=1)),
    )
    return kept.group_by("person_id").aggregate(last_day=kept.answered_at.max().date())


def engagement(
    backend: Any, as_of: date, window_days: int = 90, orders: ir.Table | None = None
) -> ir.Table:
    """The engagement table (columns ``ENGAGEMENT_COLUMNS``); see the module docstring.
    ``orders`` is :func:`person_orders` when already at hand."""
    start = ibis.date(as_of - timedelta(days=window_days))
    activity = _activity(backend, as_of)
    recent = activity.day > start
    mail = activity.group_by("person_id").aggregate(
        email_sent=(recent & (activity.kind == "sent")).sum(),
        email_opens=activity.message.nunique(where=recent & (activity.kind == "opened")),
        email_clicks=activity.message.nunique(where=recent & (activity.kind == "clicked")),
        last_mail=activity.day.max(where=activity.kind.isin(["opened", "clicked"])),
    )
    orders = person_orders(backend, as_of) if orders is None else orders
    purchases = orders.filter(~orders.is_return)
    bought = orders.group_by("person_id").aggregate(
        last_order=orders.order_day.max(),
        recent_purchases=orders.order_id.nunique(
            where=~orders.is_return & (orders.order_day > start)
        ),
    )
    days = purchases.select("person_id", "order_day").distinct()
    previous = days.order_day.lag().over(group_by=days.person_id, order_by=days.order_day)
    gaps = days.mutate(gap=days_between(days.order_day, previous).cast("float64"))
    gaps = gaps.filter(gaps.gap.notnull())
    regular = gaps.group_by("person_id").aggregate(
        gap_count=gaps.gap.count(),
        gap_mean=gaps.gap.mean(),
        gap_std=gaps.gap.std(how="pop"),
    )
    answers = _last_answers(backend, as_of)
    people = identified_people(backend).select("person_id")
    joined = (
        people.left_join(mail, "person_id", rname="{name}_mail")
        .left_join(bought, "person_id", rname="{name}_bought")
        .left_join(regular, "person_id", rname="{name}_regular")
        .left_join(answers, "person_id", rname="{name}_answers")
    )
    sent = joined.email_sent.coalesce(0)
    last = ibis.greatest(
        joined.last_mail.coalesce(ibis.date("0001-01-01")),
        joined.last_order.coalesce(ibis.date("0001-01-01")),
        joined.last_day.coalesce(ibis.date("0001-01-01")),
    )
    any_activity = (
        joined.last_mail.notnull()
        | joined.last_order.notnull()
        | joined.last_day.notnull()
        | (sent > 0)
    )
    result = joined.filter(any_activity).select(
        person_id=joined.person_id,
        email_sent=sent.cast("int64"),
        email_opens=joined.email_opens.coalesce(0).cast("int64"),
        email_clicks=joined.email_clicks.coalesce(0).cast("int64"),
        open_rate=ibis.ifelse(
            sent > 0, joined.email_opens.coalesce(0) / sent, ibis.null("float64")
        ),
        click_rate=ibis.ifelse(
            sent > 0, joined.email_clicks.coalesce(0) / sent, ibis.null("float64")
        ),
        purchases_per_month=joined.recent_purchases.coalesce(0) * DAYS_PER_MONTH / window_days,
        days_since_interaction=ibis.ifelse(
            joined.last_mail.notnull() | joined.last_order.notnull() | joined.last_day.notnull(),
            days_between(ibis.date(as_of), last),
            ibis.null("int64"),
        ),
        gap_regularity=ibis.ifelse(
            (joined.gap_count >= 2) & (joined.gap_mean > 0),
            joined.gap_std / joined.gap_mean,
            ibis.null("float64"),
        ),
    )
    return result.select(*ENGAGEMENT_COLUMNS)
