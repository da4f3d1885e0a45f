"""``create_app(settings)`` governs what the services behind the API do, not the environment:
the services read the settings the app was made with (through its store), never the process's
configured ones. Each test makes the app with settings the environment does not hold."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import WRITE_KEY, server_key, settings_for

from surmesure.api.app import create_app
from surmesure.config import get_settings
from surmesure.errors import ConfigError
from surmesure.store import Store

PHONE = "0470 12 34 56"
"""A Belgian mobile number written without its country code."""


def _identify(message_id: str, traits: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"C-{message_id}",
        "traits": traits,
        "timestamp": "2026-03-01T10:00:00.000Z",
    }


async def _calls(store: Store, settings: Any, calls: list[tuple[str, str, Any, str]]) -> list[Any]:
    """Run the app made with ``settings`` on ``store`` in this process (its start-up and
    shut-down included) and send ``calls`` (method, path, JSON body, key) in turn."""
    app = create_app(settings, store)
    transport = httpx.ASGITransport(app=app)
    out = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        for method, path, body, key in calls:
            out.append(await client.request(method, path, json=body, auth=(key, "")))
    return out


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment holds none of the settings the tests give their app."""
    for name in ("SURMESURE_DEFAULT_COUNTRY", "SURMESURE_PREFERENCE_TOPICS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SURMESURE_TEMPLATES_DIR", "/nonexistent/templates")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_person_is_looked_up_with_the_apps_country(store: Store, environment: None) -> None:
    assert get_settings().default_country == "FR"
    read = server_key(store, "read")
    settings = settings_for(store, default_country="BE")
    sent, found, other = asyncio.run(
        _calls(
            store,
            settings,
            [
                ("POST", "/v1/identify", _identify("m-1", {"phone": PHONE}), WRITE_KEY),
                ("GET", f"/v1/people/phone:{PHONE.replace(' ', '')}/segments", None, read),
                ("GET", "/v1/people/phone:+33470123456/segments", None, read),
            ],
        )
    )
    assert sent.status_code == 200, sent.text
    # read as a Belgian number, as the app's settings say: the person collected above; read
    # with the environment's country (France), the number would name nobody
    assert found.status_code == 200, found.text
    assert found.json()["person_id"] == 1
    assert other.status_code == 404


TEMPLATE = """\
name: wine_news
placement: wine_banner
topic: wine
variants:
  - name: only
    body: "Our cellar's new bottles."
"""


def test_templates_may_name_the_apps_own_topics(
    store: Store, environment: None, tmp_path: Path
) -> None:
    assert "wine" not in get_settings().preference_topics
    (tmp_path / "wine_news.yaml").write_text(TEMPLATE)
    topics = {"wine": {"fr": "Vins", "en": "Wine"}}
    decide = server_key(store, "decide")
    settings = settings_for(store, preference_topics=topics, templates_dir=tmp_path)
    (made,) = asyncio.run(
        _calls(store, settings, [("POST", "/v1/decide", {"placement": "wine_banner"}, decide)])
    )
    # the environment's topics would refuse the template ("wine" is not one of them)
    assert made.status_code == 200, made.text
    assert made.json()["content"]["template"] == "wine_news"


def test_an_app_with_another_encryption_key_refuses_to_start_naming_the_setting(
    store: Store, environment: None
) -> None:
    settings = settings_for(store)
    (sent,) = asyncio.run(
        _calls(store, settings, [("POST", "/v1/identify", _identify("m-1", {}), WRITE_KEY)])
    )
    assert sent.status_code == 200, sent.text
    other = settings_for(store, encryption_key="not-the-key-the-data-was-sealed-under")
    with pytest.raises(ConfigError) as refused:
        asyncio.run(_calls(store, other, []))
    assert refused.value.field == "SURMESURE_ENCRYPTION_KEY"
    # the right key still starts, and reads the person collected above
    (found,) = asyncio.run(
        _calls(
            store,
            settings,
            [("GET", "/v1/people/customer_id:C-m-1/segments", None, server_key(store, "read"))],
        )
    )
    assert found.status_code == 200, found.text
