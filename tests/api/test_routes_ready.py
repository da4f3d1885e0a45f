"""The app's routes are made when the app is: a first request finds them ready, so two first
requests at once, or one while another thread sets warnings filters, make nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import fastapi.routing
import httpx
import pytest
from api_helpers import settings_for

from surmesure.api.app import create_app
from surmesure.store import Store


def test_a_first_request_to_any_router_makes_no_route(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings_for(store), store)

    def made(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a route was made at request time")

    monkeypatch.setattr(fastapi.routing, "get_dependant", made)

    async def statuses() -> list[int]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            paths = ("/v1/journeys/welcome/status", "/v1/experiments/promo", "/v1/nowhere")
            gets = [(await client.get(path)).status_code for path in paths]
            return [*gets, (await client.post("/v1/decide", json={})).status_code]

    assert asyncio.run(statuses()) == [401, 401, 404, 401]  # no key: each route was found
