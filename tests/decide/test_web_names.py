"""A name a person typed on the web site (the public key's ``web`` source, reliability 0.6)
greets her with the templates' default threshold, for as long as ``person show`` says, and no
longer. On both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from math import log2

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, serving

from conftest import invoke
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.store import Store

SEEN = (datetime.now(UTC) - timedelta(days=30)).replace(second=0, microsecond=0)


def _typed_on_the_web(store: Store) -> int:
    identify = {
        "type": "identify",
        "messageId": "web-name",
        "anonymousId": "device-léa",
        "traits": {"firstName": "Léa"},
        "timestamp": SEEN.isoformat(),
    }
    with serving(store) as (url, _):
        answer = httpx.post(f"{url}/v1/identify", json=identify, auth=(WRITE_KEY, ""))
    assert answer.status_code == 200, answer.text
    with store.connect() as conn:
        return int(conn.execute(sa.text("SELECT person_id FROM events")).scalar_one())


def _greeting(store: Store, person: int, days: int) -> tuple[str, str]:
    banner = Library(EXAMPLES).named("home_banner")
    now = SEEN.replace(tzinfo=None) + timedelta(days=days, hours=2)
    result = decide(store, DecideRequest(placement="home_banner", person_id=person), banner,
                    now=now)  # fmt: skip
    (field,) = result["explanation"]["content"]["fields"]
    return result["content"]["body"], field.get("reason", "used")


def test_a_name_typed_on_the_web_greets_her_until_person_show_says(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = _typed_on_the_web(store)
    text, _ = _greeting(store, person, days=30)
    assert "Léa" in text  # 0.6 decayed over a month is still above the default 0.5

    monkeypatch.setenv("COLUMNS", "250")
    shown = invoke(monkeypatch, store.url, "person", "show", str(person))
    assert shown.exit_code == 0, shown.output
    # 0.6 * 0.5 ** (days / 730) = 0.5  <=>  days = 730 * log2(1.2), about 192
    until = SEEN + timedelta(days=730 * log2(0.6 / 0.5))
    assert f"until {until:%Y-%m-%d}" in shown.output, shown.output

    late, why = _greeting(store, person, days=193)
    assert "Léa" not in late and why == "unreliable"
