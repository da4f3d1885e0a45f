"""The web script in Debian's Chromium, on the demo shop's page served by a real server: what a
visitor sees (filled, or the page's own default), the id their browser keeps, and the views
and clicks that reach the store for them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page
from web_helpers import BUDGET_MS, CUSTOMER, FIRST_NAME, Shop, shop_server

from surmesure.protect import blind
from surmesure.store import schema
from surmesure.web.identity import sign_user
from surmesure.web.shop import shop_page

DEFAULT = "Bienvenue chez Maison Démo."
PLACED = "[data-surmesure-placement][data-surmesure-state]"


@pytest.fixture(scope="module")
def shop(migrated_duckdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("web_browser")
    with shop_server(migrated_duckdb, folder, web_new_visitor_rate_limit="1000/second") as running:
        user = sign_user(running.identity_secret, CUSTOMER, seconds=3600)
        forged = sign_user("not the key's identity secret", CUSTOMER, seconds=3600)
        pages = {
            "customer.html": shop_page(
                running.key, user=user, account=CUSTOMER, budget_ms=BUDGET_MS
            ),
            "forged.html": shop_page(
                running.key, user=forged, account=CUSTOMER, budget_ms=BUDGET_MS
            ),
            "missing.html": shop_page(running.key, script="/web/gone.js"),
            "slow.html": shop_page(running.key, placement="slow_banner", budget_ms=200),
            "hostile.html": shop_page(running.key, placement="hostile_banner", budget_ms=BUDGET_MS),
        }
        for name, html in pages.items():
            (running.folder / name).write_text(html, encoding="utf-8")
        yield running


def _page(browser: Browser, base: str) -> Page:
    return browser.new_context(base_url=base).new_page()


def _placed(page: Page) -> dict[str, Any]:
    found = page.wait_for_selector(PLACED, timeout=15_000)
    assert found is not None
    return {
        "state": found.get_attribute("data-surmesure-state"),
        "reason": found.get_attribute("data-surmesure-reason"),
        "text": found.inner_text(),
        "html": found.inner_html(),
    }


def _person(shop: Shop, kind: str, value: str) -> int:
    """The person known by ``kind`` = ``value``, once the page's events made them (10 s).

    The script sends its events in the background, so the first of them may still be on its
    way when the test asks.
    """
    i = schema.identifiers
    deadline = time.monotonic() + 10
    while True:
        with shop.store.connect() as conn:
            found = conn.execute(
                sa.select(i.c.person_id).where(
                    i.c.kind == kind, i.c.value == blind.index(shop.store, kind, value)
                )
            ).scalar_one_or_none()
        if found is not None:
            return int(found)
        assert time.monotonic() < deadline, f"no person known by {kind} after 10 s"
        time.sleep(0.1)


def _events(shop: Shop, person_id: int, wanted: int) -> list[str]:
    """The promotion events stored for ``person_id``, once ``wanted`` of them are (10 s)."""
    e = schema.events
    deadline = time.monotonic() + 10
    while True:
        with shop.store.connect() as conn:
            found = sorted(
                r.event
                for r in conn.execute(
                    sa.select(e.c.event).where(
                        e.c.person_id == person_id, e.c.event.like("Promotion %")
                    )
                )
            )
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_an_anonymous_visitor_is_filled_keeps_their_id_and_is_counted(
    shop: Shop, chromium: Browser
) -> None:
    page = _page(chromium, shop.base)
    page.goto("/shop/")
    first = _placed(page)
    assert first["state"] == "filled", first
    assert DEFAULT not in first["text"] and (
        "Bonjour !" in first["text"] or "Bonsoir !" in first["text"]
    )
    assert "Soldes de printemps" in first["text"]
    [cookie] = [c for c in page.context.cookies() if c["name"] == "sm_aid"]
    assert cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    days = (cookie["expires"] - time.time()) / 86_400
    assert 394 < days <= 395
    with page.expect_request("**/v1/web/decide") as asked:
        page.reload()
    assert asked.value.post_data_json["aid"] == cookie["value"]  # the same visitor comes back
    assert _placed(page)["state"] == "filled"
    [kept] = [c for c in page.context.cookies() if c["name"] == "sm_aid"]
    assert kept["value"] == cookie["value"]
    page.click("[data-surmesure-placement] a[href='#newsletter']")
    person = _person(shop, "anonymous_id", cookie["value"].split(".")[0])
    found = _events(shop, person, 3)
    assert found == ["Promotion Clicked", "Promotion Viewed", "Promotion Viewed"], found
    page.context.close()


def test_a_logged_in_customer_sees_their_name_and_their_events_are_theirs(
    shop: Shop, chromium: Browser
) -> None:
    page = _page(chromium, shop.base)
    page.goto("/shop/customer.html")
    shown = _placed(page)
    assert shown["state"] == "filled" and FIRST_NAME in shown["text"], shown
    page.click("[data-surmesure-placement] a[href='#newsletter']")
    found = _events(shop, _person(shop, "customer_id", CUSTOMER), 2)
    assert "Promotion Viewed" in found and "Promotion Clicked" in found
    page.context.close()


def test_a_forged_user_gets_the_neutral_content_never_the_claimed_customer(
    shop: Shop, chromium: Browser
) -> None:
    page = _page(chromium, shop.base)
    page.goto("/shop/forged.html")
    shown = _placed(page)
    assert shown["state"] == "filled" and FIRST_NAME not in shown["text"], shown
    assert "Bonjour !" in shown["text"] or "Bonsoir !" in shown["text"]
    page.context.close()


def test_the_page_keeps_its_default_when_the_script_is_missing(
    shop: Shop, chromium: Browser
) -> None:
    page = _page(chromium, shop.base)
    with page.expect_response("**/web/gone.js") as gone:
        page.goto("/shop/missing.html")
    assert gone.value.status == 404
    page.wait_for_load_state("load")
    banner = page.locator("[data-surmesure-placement]")
    assert DEFAULT in banner.inner_text()
    assert banner.get_attribute("data-surmesure-state") is None
    page.context.close()


def test_a_decision_over_its_budget_leaves_the_default_even_once_it_comes(
    shop: Shop, chromium: Browser
) -> None:
    page = _page(chromium, shop.base)
    with page.expect_response("**/v1/web/decide", timeout=30_000) as late:
        page.goto("/shop/slow.html")
        shown = _placed(page)  # marked at the budget, before the answer
    assert shown["state"] == "default" and shown["reason"] == "late", shown
    assert late.value.status == 200 and late.value.json()["placements"][0]["html"]
    after = _placed(page)
    assert after["state"] == "default" and DEFAULT in after["text"]
    page.context.close()


def test_a_page_of_another_origin_keeps_its_default(shop: Shop, chromium: Browser) -> None:
    foreign = shop.base.replace("127.0.0.1", "localhost")  # another origin, the same server
    page = _page(chromium, foreign)
    page.goto("/shop/")
    shown = _placed(page)
    assert shown["state"] == "default" and shown["reason"] == "error", shown
    assert DEFAULT in shown["text"]
    assert not [c for c in page.context.cookies() if c["name"] == "sm_aid"]
    page.context.close()


def test_what_could_run_in_an_answer_is_taken_out(shop: Shop, chromium: Browser) -> None:
    page = _page(chromium, shop.base)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/shop/hostile.html")
    shown = _placed(page)
    assert shown["state"] == "filled" and "Offre" in shown["text"]
    page.click("[data-surmesure-placement] a")
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None
    for left in ("onerror", "onclick", "<script", "javascript:", "<iframe"):
        assert left not in shown["html"], left
    assert errors == []
    page.context.close()
