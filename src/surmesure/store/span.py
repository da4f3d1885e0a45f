"""Where the data ends: the present a command measures from when none is given.

An imported history is measured where it ends, not months later, when every window
(``within_days``, recency) would be empty and every customer would look long gone. A store fed
live has data from today, and its present is now.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from surmesure.store import schema
from surmesure.store.engine import Store


def default_as_of(store: Store, today: date) -> tuple[date, str | None]:
    """The reference date when none is given, and a note when it is not ``today``: the day
    after the latest order or event when the data ends before that day, else ``today``."""
    with store.connect() as conn:
        latest = [
            conn.execute(sa.select(sa.func.max(column))).scalar()
            for column in (schema.orders.c.ordered_at, schema.events.c.occurred_at)
        ]
    known = [d.date() if hasattr(d, "date") else d for d in latest if d is not None]
    if not known or max(known) >= today:
        return today, None
    as_of = min(max(known) + timedelta(days=1), today)
    if as_of == today:
        return today, None
    return as_of, (
        f"as of {as_of}, the day after the latest order or event: the data ends before "
        f"today ({today}); pass --as-of to choose another day"
    )


def present(store: Store, now: datetime) -> tuple[datetime, str | None]:
    """The instant to evaluate at when none is given: ``now``, or the start of the day after
    the latest order or event when the data ends before today (with a note saying so)."""
    as_of, note = default_as_of(store, now.date())
    if note is None:
        return now, None
    return datetime.combine(as_of, time()), note.replace("--as-of", "--at")
