"""When a message happened, as stored: naive UTC, whatever zone its time was sent in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from surmesure.collect.segment import Message, validate_messages

RECEIVED = datetime(2026, 3, 1, 12, 0, 0)


def _occurred(**times: object) -> datetime:
    raw = {"type": "page", "messageId": "m-1", "anonymousId": "d-1", **times}
    accepted, refused = validate_messages([raw])
    assert refused == []
    return accepted[0].message.occurred_at(RECEIVED)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, 0)),
        ("2026-03-01T10:00:00+02:00", datetime(2026, 3, 1, 8, 0)),
        ("2026-03-01T01:30:00+05:30", datetime(2026, 2, 28, 20, 0)),
        ("2026-12-31T20:00:00.250-05:00", datetime(2027, 1, 1, 1, 0, 0, 250_000)),
        ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10, 0)),  # no zone: UTC
        ("2200-12-31T23:30:00+01:00", datetime(2200, 12, 31, 22, 30)),
    ],
)
def test_a_time_is_stored_as_naive_utc(sent: str, stored: datetime) -> None:
    assert _occurred(timestamp=sent) == stored
    assert _occurred(timestamp=sent).tzinfo is None


def test_original_timestamp_then_the_reception_stand_in_for_a_missing_timestamp() -> None:
    assert _occurred(originalTimestamp="2026-03-01T10:00:00+01:00") == datetime(2026, 3, 1, 9, 0)
    assert _occurred() == RECEIVED


def test_a_python_caller_s_zone_is_read_at_that_date() -> None:
    paris = ZoneInfo("Europe/Paris")
    summer = Message(type="page", messageId="m", anonymousId="d",
                     timestamp=datetime(2026, 7, 1, 12, 0, tzinfo=paris))  # fmt: skip
    winter = Message(type="page", messageId="m", anonymousId="d",
                     timestamp=datetime(2026, 1, 1, 12, 0, tzinfo=paris))  # fmt: skip
    west = timezone(timedelta(hours=-3))
    fixed = Message(type="page", messageId="m", anonymousId="d",
                    timestamp=datetime(2026, 1, 1, 12, 0, tzinfo=west))  # fmt: skip
    assert summer.occurred_at(RECEIVED) == datetime(2026, 7, 1, 10, 0)
    assert winter.occurred_at(RECEIVED) == datetime(2026, 1, 1, 11, 0)
    assert fixed.occurred_at(RECEIVED) == datetime(2026, 1, 1, 15, 0)
