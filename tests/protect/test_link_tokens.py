"""A signed link's token is the one itsdangerous makes, and reads back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from surmesure.errors import NotFound
from surmesure.protect.links import make_token, read_payload

NOW = datetime(2026, 3, 2, 10)
SECRET = "a-secret-for-link-tokens"


def test_a_token_is_spelled_as_itsdangerous_spells_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_772_445_600)
    monkeypatch.setattr("surmesure.protect.links.time.time", lambda: 1_772_445_600.7)
    ours = make_token(
        42, salt="unsubscribe:email", days=730, now=NOW, secret=SECRET, max_days=3650, campaign="x"
    )
    payload = {"p": 42, "e": 1_835_517_600, "c": "x"}
    assert ours == URLSafeTimedSerializer(SECRET, salt="unsubscribe:email").dumps(payload)


def test_a_token_reads_back_under_its_salt_only() -> None:
    token = make_token(7, salt="page", days=30, now=NOW, secret=SECRET, max_days=365)
    read = read_payload(token, salt="page", now=NOW, secret=SECRET, max_days=365)
    assert read["p"] == 7 and read["e"] == int(NOW.replace(tzinfo=UTC).timestamp()) + 30 * 86400
    with pytest.raises(NotFound):
        read_payload(token, salt="preferences", now=NOW, secret=SECRET, max_days=365)
    with pytest.raises(NotFound):
        read_payload(token, salt="page", now=NOW, secret=SECRET + "!", max_days=365)
