"""Every page the console links to, opened in Chromium as an admin: it answers 200, breaks no
rule of the content security policy and logs no script error, has one main heading, its
language, a name on every form control and on every chart; and the keyboard reaches every link
and button in the page's order."""

from __future__ import annotations

import re

from console_helpers import sign_in
from playwright.sync_api import Browser, ConsoleMessage

from surmesure.store import Store

World = tuple[str, Store]
#: links a crawl does not follow: they act (sign out) or send files
SKIP = re.compile(r"/console/(logout|static/)|/export|/erase|/download|\.json$")
MAX_PAGES = 40

CONTROLS = "input:not([type=hidden]), select, textarea, button"
UNNAMED = (
    """() => [...document.querySelectorAll('CONTROLS')].filter(e => {
  const label = e.labels && e.labels.length && e.labels[0].textContent.trim();
  return !(label || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
           || (e.tagName === 'BUTTON' && e.textContent.trim())
           || (e.type === 'submit' && e.value));
}).map(e => e.outerHTML.slice(0, 120))"""
).replace("CONTROLS", CONTROLS)
LINKS = "a => a.map(x => x.getAttribute('href'))"
CHARTS_WITHOUT_NAME = """() => [...document.querySelectorAll('svg')].filter(s =>
  !(s.getAttribute('role') === 'img' && s.getAttribute('aria-label'))).length"""


def test_every_page_is_whole_and_accessible(console_world: World, chromium: Browser) -> None:
    base, _ = console_world
    page = sign_in(chromium, base, "admin")
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    queue, seen = ["/console/"], {"/console/"}
    visited = 0
    while queue and visited < MAX_PAGES:
        path = queue.pop(0)
        answer = page.goto(path)
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        visited += 1
        assert page.locator("html").get_attribute("lang") in ("en", "fr"), path
        assert page.locator("h1").count() == 1, path
        assert page.evaluate(UNNAMED) == [], path
        assert page.evaluate(CHARTS_WITHOUT_NAME) == 0, path
        for href in page.eval_on_selector_all("a[href^='/console/']", LINKS):
            link = href.split("#")[0]
            if link not in seen and not SKIP.search(link):
                seen.add(link)
                queue.append(link)
    assert visited >= 6  # home and each section of the menu at least
    assert problems == []
    page.context.close()


def test_tab_order_follows_the_page(console_world: World, chromium: Browser) -> None:
    base, _ = console_world
    page = sign_in(chromium, base, "admin")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    # the skip link first, then the brand and the menu in order
    assert reached[0] == "Skip to the content"
    menu = page.eval_on_selector_all(
        "nav[aria-label='Main menu'] a", "a => a.map(x => x.textContent.trim())"
    )
    assert reached[2 : 2 + len(menu)] == menu
    page.context.close()
