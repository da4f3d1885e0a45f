"""The routes that take no key (pages, unsubscribe and tracked links, the gateways'
callbacks) are limited per client address: 429 with Retry-After past the limit, a tracked link
still leading to its target; ``X-Forwarded-For`` is believed from the trusted proxies only,
and an attacker rotating addresses does not grow the server's memory. Before, one address
could ask for pages and callbacks as fast as the server answered."""

from __future__ import annotations

import asyncio
import re

import httpx
from api_helpers import TEST_SECRET, settings_for
from fastapi import FastAPI
from people_rows import activity_rows, add_people

from surmesure.api.app import create_app
from surmesure.api.clients import GROUPS, ClientLimits, client_address, counted_as, networks
from surmesure.config_parsing import CLIENT_GROUPS
from surmesure.deliver import tracking
from surmesure.store import Store

PROXIES = networks(["10.0.0.0/8", "fd00::1"])


def test_the_forwarded_address_is_believed_from_a_trusted_proxy_only() -> None:
    spoofed = ["198.51.100.1"]
    assert client_address("203.0.113.7", spoofed, ()) == "203.0.113.7"
    assert client_address("203.0.113.7", spoofed, PROXIES) == "203.0.113.7"
    assert client_address("10.1.2.3", spoofed, PROXIES) == "198.51.100.1"
    # the client wrote the left entry itself; our proxies appended the right ones
    chain = ["1.1.1.1, 203.0.113.9", "10.0.0.2"]
    assert client_address("10.1.2.3", chain, PROXIES) == "203.0.113.9"
    assert client_address("fd00::1", ["2001:db8::5"], PROXIES) == "2001:db8::5"
    assert client_address("10.1.2.3", ["10.0.0.9"], PROXIES) == "10.1.2.3"
    assert client_address("10.1.2.3", ["not-an-address"], PROXIES) == "unknown"
    assert set(GROUPS) == set(CLIENT_GROUPS)
    # an address per request within one IPv6 line is still one client
    assert (
        counted_as("2001:db8:1:2::5") == counted_as("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert counted_as("2001:db8:1:3::5") != counted_as("2001:db8:1:2::5")
    assert counted_as("::ffff:203.0.113.7") == "203.0.113.7" == counted_as("203.0.113.7")


def test_rotating_addresses_does_not_grow_the_memory() -> None:
    limits = ClientLimits({"pages": "2/minute"}, memory=100)
    for n in range(5000):
        assert limits.wait("pages", f"2001:db8::{n:x}") is None
    assert len(limits) == 100
    assert limits.wait("pages", "203.0.113.1") is None
    assert limits.wait("pages", "203.0.113.1") is None
    wait = limits.wait("pages", "203.0.113.1")
    assert wait is not None and 1 <= wait <= 60
    assert limits.wait("links", "203.0.113.1") is None  # a group without a limit


def test_keyless_routes_answer_429_past_the_clients_limit(duckdb_store: Store) -> None:
    add_people(duckdb_store, (7, None))
    limits = {"pages": "3/minute", "links": "2/minute", "gateways": "2/minute"}
    settings = settings_for(
        duckdb_store, client_rate_limits=limits, trusted_proxies=["10.0.0.0/8"], rate_limits={}
    )
    app = create_app(settings, duckdb_store)
    asyncio.run(_attack(app))
    paths = app.openapi()["paths"]
    assert "text/html" in paths["/p/{token}"]["get"]["responses"]["429"]["content"]
    assert "application/json" in paths["/v1/sms/inbound"]["get"]["responses"]["429"]["content"]
    assert "429" in paths["/v1/sms/inbound"]["get"]["responses"]
    assert activity_rows(duckdb_store, "kind") == [("clicked",)] * 2


def _from(app: FastAPI, host: str) -> httpx.AsyncClient:
    """A client of ``app`` whose connection comes from ``host``."""
    transport = httpx.ASGITransport(app=app, client=(host, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _attack(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        one = _from(app, "203.0.113.7")
        spoof = {"X-Forwarded-For": "198.51.100.1"}
        statuses = [(await one.get("/p/not-a-token", headers=spoof)).status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        # a page over the limit is a page in its language, for a person's browser
        refused = await one.post("/u/email/not-a-token")
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["content-type"].startswith("text/html")
        assert "Trop de demandes" in refused.text and refused.headers["cache-control"]
        english = await one.get("/preferences/x?lang=en")
        assert english.status_code == 429 and "Too many requests" in english.text
        assert english.headers["retry-after"]
        browser = await one.get("/preferences/x", headers={"Accept-Language": "en-GB,en"})
        assert "Too many requests" in browser.text
        personal = await one.get("/p/not-a-token")
        assert personal.status_code == 429 and "<html" in personal.text.lower()
        # the gateways' callbacks keep the API's JSON error
        gateway = [(await one.get("/v1/sms/inbound?key=x&from=1")).status_code for _ in range(3)]
        assert gateway == [404, 404, 429]
        bounce = await one.post("/v1/email/feedback", content=b"x")
        assert bounce.status_code == 429 and bounce.headers["retry-after"]
        assert bounce.json()["error"]["code"] == "rate_limited"
        assert "SURMESURE_CLIENT_RATE_LIMITS" in bounce.json()["error"]["hint"]
        html = "".join(f'<a href="https://shop.example/{n}">go</a>' for n in range(3))
        sent = tracking.track(html, 7, "spring", public_url="http://t", secret=TEST_SECRET)
        clicks = re.findall(r"/t/c/[^\"]+", sent)
        for n, click in enumerate(clicks):  # the third is over the limit: not recorded
            answer = await one.get(click)
            assert answer.status_code == 302
            assert answer.headers["location"] == f"https://shop.example/{n}"
        assert (await _from(app, "203.0.113.8").get("/p/not-a-token")).status_code == 404
        # behind a trusted proxy, each forwarded client has its own count
        proxy = _from(app, "10.1.2.3")
        forwarded = [
            (await proxy.get("/p/x", headers={"X-Forwarded-For": f"198.51.100.{n % 2}"}))
            for n in range(8)
        ]
        assert [r.status_code for r in forwarded] == [404] * 6 + [429] * 2
