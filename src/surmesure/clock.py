"""The one notion of "now": naive UTC, as every timestamp in the store."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time in UTC, without a time zone (the store's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)
