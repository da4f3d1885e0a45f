"""Signing in to the console, roles, CSRF and sessions: in Chromium as a user would, and with a
plain HTTP client as an attacker would."""

from __future__ import annotations

import importlib
import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from console_helpers import PASSWORD, email_of, session_client, shot, sign_in
from playwright.sync_api import Browser, expect

from surmesure.colours import contrast
from surmesure.console import SECTIONS
from surmesure.console.charts import INK, PALETTE
from surmesure.console.words import WORDS
from surmesure.protect.users import create_user, disable_user
from surmesure.store import Store, schema

World = tuple[str, Store]


def test_every_language_has_every_word() -> None:
    for name in SECTIONS:  # each section adds its own words
        importlib.import_module(f"surmesure.console.{name}")
    assert len(WORDS["en"]) > 100
    assert set(WORDS["fr"]) == set(WORDS["en"])


def test_chart_colours_pass_wcag_aa_on_white() -> None:
    assert contrast(INK, "#ffffff") >= 4.5
    for colour in PALETTE:
        assert contrast(colour, "#ffffff") >= 4.5, colour


def test_sign_in_shows_the_key_figures(console_world: World, chromium: Browser) -> None:
    base, store = console_world
    page = sign_in(chromium, base, "viewer")
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    customers = page.locator('[data-kpi="customers"]').inner_text()
    with store.connect() as conn:
        people = conn.execute(
            sa.select(sa.func.count()).where(schema.people.c.merged_into.is_(None))
        ).scalar_one()
    assert int(customers.replace(",", "")) == people
    assert page.locator("figure svg[role=img]").count() >= 2  # the trends, as charts
    # a viewer's menu offers no people and no data
    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu.get_by_role("link", name="People")).to_have_count(0)
    expect(menu.get_by_role("link", name="Data")).to_have_count(0)
    shot(page, "home")
    page.context.close()


def test_a_wrong_password_is_refused_and_says_so(console_world: World, chromium: Browser) -> None:
    base, _ = console_world
    context = chromium.new_context(base_url=base)
    page = context.new_page()
    page.goto("/console/")  # no session: the sign-in page, then back where it was going
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.get_by_label("E-mail address").fill(email_of("admin"))
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong")
    shot(page, "sign-in-refused")
    context.close()


def test_french_user_gets_french_pages(console_world: World, chromium: Browser) -> None:
    base, _ = console_world
    page = sign_in(chromium, base, "marketer", email="marie@console.test")
    expect(page.get_by_role("heading", name="Accueil")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "fr"
    page.context.close()


def test_keyboard_reaches_the_menu_and_the_content(console_world: World, chromium: Browser) -> None:
    base, _ = console_world
    page = sign_in(chromium, base, "admin")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to the content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.context.close()


def test_a_role_without_the_scope_gets_403(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "viewer") as (client, _):
        refused = client.get("/console/data")
        assert refused.status_code == 403
        assert "may not open this page" in refused.text


def test_no_session_no_page_and_no_api_key_opens_it(console_world: World) -> None:
    base, store = console_world
    from api_helpers import server_key

    key = server_key(store, "admin")
    with httpx.Client(base_url=base, timeout=30) as client:
        for headers in ({}, {"Authorization": f"Bearer {key}"}):
            got = client.get("/console/", headers=headers)
            assert got.status_code == 303
            assert got.headers["location"].startswith("/console/login")


def test_forged_and_ended_sessions_are_refused(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "analyst") as (client, csrf):
        cookie = client.cookies.get("surmesure_console")
        assert cookie is not None
        forged = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
        with httpx.Client(base_url=base, cookies={"surmesure_console": forged}) as other:
            assert other.get("/console/").status_code == 303
        # signing out ends the session server-side: the old cookie is refused afterwards
        out = client.post("/console/logout", data={"csrf": csrf})
        assert out.status_code == 303
        with httpx.Client(base_url=base, cookies={"surmesure_console": cookie}) as replay:
            assert replay.get("/console/").status_code == 303


def test_disabling_a_user_ends_its_sessions(console_world: World) -> None:
    base, store = console_world
    create_user(store, "leaver@console.test", PASSWORD, "analyst", replace=True)
    client = httpx.Client(base_url=base, timeout=30)
    with client:
        form = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        client.post(
            "/console/login",
            data={"csrf": token.group(1), "email": "leaver@console.test", "password": PASSWORD},
        )
        assert client.get("/console/").status_code == 200
        disable_user(store, "leaver@console.test")
        assert client.get("/console/").status_code == 303


def test_forms_need_the_csrf_token_and_the_same_origin(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "admin") as (client, csrf):
        assert client.post("/console/logout", data={}).status_code == 403
        assert client.post("/console/logout", data={"csrf": "0" * 64}).status_code == 403
        other_site = client.post(
            "/console/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
        )
        assert other_site.status_code == 403
        assert client.get("/console/").status_code == 200  # still signed in
        # a sign-in form sent without its own cookie (from another site) is refused
        with httpx.Client(base_url=base) as bare:
            sent = bare.post(
                "/console/login",
                data={"csrf": "x", "email": email_of("admin"), "password": PASSWORD},
            )
            assert sent.status_code == 400
            assert "sign-in form has expired" in sent.text


def test_sign_in_never_redirects_to_another_site(console_world: World) -> None:
    base, _ = console_world
    with httpx.Client(base_url=base, timeout=30) as client:
        for target in ("https://evil.example/", "//evil.example/console/", "/console/\\\\evil"):
            form = client.get("/console/login", params={"next": target})
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            done = client.post(
                "/console/login",
                data={
                    "csrf": token.group(1),
                    "email": email_of("viewer"),
                    "password": PASSWORD,
                    "next": target,
                },
            )
            assert done.headers["location"] == "/console/", target
            client.cookies.clear()


def test_pages_carry_security_headers_and_cookie_flags(console_world: World) -> None:
    base, _ = console_world
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/console/login")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert "<script>" not in page.text  # no inline script: the policy forbids them


def test_repeated_failures_are_slowed_down(console_world: World) -> None:
    base, _ = console_world
    statuses: list[int] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(12):
            form = client.get("/console/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            got = client.post(
                "/console/login",
                data={"csrf": token.group(1), "email": "nobody@console.test", "password": "x"},
            )
            statuses.append(got.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


def test_users_are_managed_from_the_command_line(
    monkeypatch: pytest.MonkeyPatch, store: Store
) -> None:
    from conftest import invoke, invoke_json

    monkeypatch.setenv("SURMESURE_USER_PASSWORD", "short")
    refused = invoke(monkeypatch, store.url, "user", "create", "a@shop.example", "--role", "admin")
    assert refused.exit_code != 0 and "at least 12 characters" in refused.output
    monkeypatch.setenv("SURMESURE_USER_PASSWORD", PASSWORD)
    bad_role = invoke(monkeypatch, store.url, "user", "create", "a@shop.example", "--role", "boss")
    assert bad_role.exit_code != 0 and "choose among viewer" in bad_role.output
    made: dict[str, Any] = invoke_json(
        monkeypatch, store.url, "user", "create", "A@Shop.example", "--role", "analyst"
    )
    assert made["email"] == "a@shop.example" and made["role"] == "analyst"
    listed = invoke_json(monkeypatch, store.url, "user", "list")
    assert [u["email"] for u in listed["users"]] == ["a@shop.example"]
    with store.connect() as conn:
        hashed = conn.execute(sa.select(schema.console_users.c.password_hash)).scalar_one()
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    gone = invoke_json(monkeypatch, store.url, "user", "disable", "a@shop.example")
    assert gone["disabled_at"] is not None
    with store.connect() as conn:
        actions = (
            conn.execute(
                sa.select(schema.audit_log.c.action).order_by(schema.audit_log.c.occurred_at)
            )
            .scalars()
            .all()
        )
    assert actions[-2:] == ["user.create", "user.disable"]


def test_the_demo_prints_a_console_user_who_can_sign_in(
    demo_world: tuple[Any, dict[str, Any]], console_world: World
) -> None:
    folder, report = demo_world
    base, _ = console_world
    keys = dict(
        line.split("=", 1) for line in (folder / "world" / "keys.env").read_text().splitlines()
    )
    email = keys["SURMESURE_DEMO_CONSOLE_EMAIL"]
    assert report["console"]["email"] == email
    with httpx.Client(base_url=base, timeout=30) as client:
        form = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        done = client.post(
            "/console/login",
            data={
                "csrf": token.group(1),
                "email": email,
                "password": keys["SURMESURE_DEMO_CONSOLE_PASSWORD"],
            },
        )
        assert done.status_code == 303
        assert "Signed in as" in client.get("/console/").text


def test_home_figures_are_computed_once_then_again_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from surmesure.console import home

    made: list[home.Figures] = []

    def figures(_: Any) -> home.Figures:
        made.append(home.Figures(None, len(made), 0, [], [], []))
        return made[-1]

    monkeypatch.setattr(home, "figures", figures)
    cache = home.FigureCache()
    first = cache.get(None)  # type: ignore[arg-type]
    assert cache.get(None) is first and len(made) == 1  # type: ignore[arg-type]
    monkeypatch.setattr(home, "FIGURES_SECONDS", -1.0)  # every figure is now too old
    assert cache.get(None) is first  # type: ignore[arg-type]  # the page does not wait
    assert cache._computing is not None
    cache._computing.join(timeout=10)
    monkeypatch.setattr(home, "FIGURES_SECONDS", 300.0)
    assert len(made) == 2 and cache.get(None) is made[1]  # type: ignore[arg-type]


def test_the_public_sign_in_form_refuses_a_huge_body_at_once(console_world: World) -> None:
    from api_helpers import gigabyte_answer

    base, _ = console_world
    answer = gigabyte_answer(
        base, "/console/login", "application/x-www-form-urlencoded", b"email=a"
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer
