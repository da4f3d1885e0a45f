"""The settings' readers: a bad value is refused with a message naming the setting, the value
and how to write it; a good one is read and normalised, from the environment as from code."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from surmesure.config import Settings

REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"dispatch": "http://127.0.0.1:4222"}, "dispatch is 'http://127.0.0.1:4222'; write inline"),
    ({"rate_limits": {"decide": "fast"}}, "rate_limits['decide'] is 'fast'; write e.g."),
    ({"client_rate_limits": {"api": "1/second"}}, "client_rate_limits has the group 'api'"),
    ({"client_rate_limits": {"pages": "1/fortnight"}}, "client_rate_limits['pages'] is"),
    ({"trusted_proxies": ["10.0.0.0/33"]}, "trusted_proxies has '10.0.0.0/33'"),
    ({"retention_days": {"events": 40_000}}, "retention_days['events'] = 40000; use kinds"),
    ({"retention_days": {"emails": 30}}, "retention_days['emails'] = 30"),
    ({"source_reliability": {"crm": 1.5}}, "source_reliability['crm'] is 1.5; use a number"),
    ({"consent_categories": {"ads": ["marketing:fax"]}}, "consent_categories['ads'] has"),
    ({"preference_topics": {"Offers": {"fr": "a", "en": "b"}}}, "the topic 'Offers'"),
    ({"preference_topics": {"offers": {"fr": "Offres"}}}, "['offers'] has no label in en"),
    ({"rates": "GBP=1.17,usd=0.92"}, "rates has 'usd=0.92' is not CUR=RATE"),
    ({"rates": {"GBP": -1.0}}, "rates has 'GBP=-1.0' is not CUR=RATE"),
    ({"schedule": "daily"}, "schedule is 'daily'; write a JSON object"),
]


@pytest.mark.parametrize(("values", "message"), REFUSED)
def test_a_bad_value_is_refused_naming_the_setting_and_the_fix(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**values)
    assert message in str(raised.value)
    assert str(raised.value).split("\n")[1] == next(iter(values))  # the field at fault


def test_good_values_are_read_and_normalised_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SURMESURE_RATES", " GBP=1.17 , USD=0.92,")
    monkeypatch.setenv("SURMESURE_SCHEDULE", "OFF")
    monkeypatch.setenv("SURMESURE_SOURCE_TRUST", '{"CRM": "low"}')
    monkeypatch.setenv("SURMESURE_SOURCE_RELIABILITY__Call_Centre", "0.65")
    monkeypatch.setenv("SURMESURE_TRUSTED_PROXIES", '["10.0.0.5", "10.0.0.0/8"]')
    monkeypatch.setenv("SURMESURE_DISPATCH", "nats://127.0.0.1:4222")
    settings = Settings()
    assert settings.rates == {"GBP": 1.17, "USD": 0.92}
    assert settings.schedule == {}
    assert settings.source_trust == {"crm": "low"}
    assert settings.trusts("Crm") is False
    assert settings.reliability_of("CALL_CENTRE") == 0.65
    assert settings.trusted_proxies == ["10.0.0.5", "10.0.0.0/8"]
    assert settings.dispatch == "nats://127.0.0.1:4222"


def test_a_schedule_is_read_as_json_and_its_rules_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURMESURE_SCHEDULE", '{"derive": "every 2h"}')
    assert Settings().schedule == {"derive": "every 2h"}
    monkeypatch.setenv("SURMESURE_SCHEDULE", '{"derive": "hourly"}')
    with pytest.raises(ValidationError, match="derive"):
        Settings()
