"""A console on a copy of the small demo world, served by a real uvicorn server, with one user
per role, and Debian's Chromium driven by Playwright (never a downloaded browser).

Screenshots go to ``test-screenshots/`` at the top of the checkout (the README names it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, sync_playwright

from surmesure.protect.users import ROLES, create_user
from surmesure.store import Store, schema
from surmesure.unify.profile import root_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a long enough test passphrase"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-screenshots"


def email_of(role: str) -> str:
    return f"{role}@console.test"


def absorbed(store: Store) -> tuple[int, int]:
    """A person id merged into another (the first of them), and the person it belongs to now."""
    p = schema.people
    with store.connect() as conn:
        node = conn.execute(
            sa.select(sa.func.min(p.c.person_id)).where(p.c.merged_into.is_not(None))
        ).scalar_one()
        assert node is not None, "the demo world merges nobody"
        root = root_of(conn, int(node))
    assert root is not None
    return int(node), root


def make_users(store: Store) -> None:
    for role in ROLES:
        create_user(store, email_of(role), PASSWORD, role, replace=True)
    create_user(store, "marie@console.test", PASSWORD, "marketer", language="fr", replace=True)


def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(browser: Browser, base: str, role: str, *, email: str | None = None) -> Page:
    """A new browser context (its own cookies) signed in as ``role``'s user."""
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console/login")
    page.get_by_label(re.compile("E-mail|Adresse")).fill(email or email_of(role))
    page.get_by_label(re.compile("Password|Mot de passe")).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in|Se connecter")).click()
    page.wait_for_url(re.compile(r".*/console/.*"))
    return page


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot in :data:`SCREENSHOTS`."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextmanager
def session_client(base: str, role: str, **kwargs: Any) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client signed in as ``role``'s user (through the sign-in form, as a browser
    does), and its session's CSRF token."""
    with httpx.Client(base_url=base, timeout=30, **kwargs) as client:
        yield client, _signed_in(client, role)


def _signed_in(client: httpx.Client, role: str) -> str:
    form = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post(
        "/console/login",
        data={"csrf": token.group(1), "email": email_of(role), "password": PASSWORD},
    )
    assert done.status_code == 303, done.text
    home = client.get("/console/")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert csrf is not None, home.text[:500]
    return csrf.group(1)
