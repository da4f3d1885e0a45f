"""A real server for the web script's tests: a DuckDB store with one known customer, the demo
shop's pages at /shop/, a public web key allowed from the server's own origin, and templates
(the shipped home banner, and a banner that takes over a second to render)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from api_helpers import serving
from fastapi import FastAPI

from surmesure.decide.library import EXAMPLES
from surmesure.protect.keys import create_key
from surmesure.store import Store, open_store
from surmesure.web.identity import key_identity_secret
from surmesure.web.shop import write_shop

#: the placements' budget of the test pages that must be filled: a test machine running other
#: tests beside may take longer than a shop's 300 ms for a new visitor's first decision
BUDGET_MS = 10_000

CUSTOMER = "C-4242"
FIRST_NAME = "Camille"
TRAITS = {"first_name": FIRST_NAME}
#: a banner whose render takes over a second (400 sorts of 1,000 numbers in the sandbox)
SLOW_BANNER = """name: slow_banner
placement: slow_banner
channel: web
format: html
variants:
  - name: default
    body: "{% for i in range(400) %}{{ (range(1000)|list|sort(reverse=true)|sum) % 7 }}{% endfor %}"
"""

#: a banner whose own text holds what could run in a page: the script takes it out
HOSTILE_BANNER = """name: hostile_banner
placement: hostile_banner
channel: web
format: html
variants:
  - name: default
    body: >-
      <b>Offre</b><img src="x" onerror="window.pwned = 1"><script>window.pwned = 2</script>
      <a href="javascript:window.pwned = 3" onclick="window.pwned = 4">voir</a>
      <iframe src="https://evil.example"></iframe>
"""
NEWSLETTER = '"Recevez nos nouveautés chaque semaine."'
#: the home banner's newsletter block with a link in it, to follow
LINKED = "'<a href=\"#newsletter\">Recevez nos nouveautés</a> chaque semaine.'"


@dataclass
class Shop:
    base: str
    store: Store
    app: FastAPI
    key: str
    key_id: str
    identity_secret: str
    folder: Path

    def decide(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.base}/v1/web/decide", json={"key": self.key, **body},
                          timeout=30, **kw)  # fmt: skip

    def events(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.base}/v1/web/events", json={"key": self.key, **body},
                          timeout=30, **kw)  # fmt: skip


@contextmanager
def shop_server(
    migrated: Path, folder: Path, *, templates: dict[str, str] | None = None, **settings: Any
) -> Iterator[Shop]:
    """The server of the module docstring, on a copy of the migrated store ``migrated``,
    with the more ``templates`` given (file name -> YAML)."""
    shutil.copyfile(migrated, folder / "store.duckdb")
    store = open_store(f"duckdb:///{folder / 'store.duckdb'}")
    library = folder / "templates"
    library.mkdir()
    for name, text in (templates or {}).items():
        (library / name).write_text(text, encoding="utf-8")
    shutil.copyfile(EXAMPLES / "welcome_email.yaml", library / "welcome_email.yaml")
    banner = (EXAMPLES / "home_banner.yaml").read_text(encoding="utf-8")
    assert NEWSLETTER in banner
    (library / "home_banner.yaml").write_text(banner.replace(NEWSLETTER, LINKED), "utf-8")
    (library / "slow_banner.yaml").write_text(SLOW_BANNER)
    (library / "hostile_banner.yaml").write_text(HOSTILE_BANNER)
    pages = folder / "shop"
    pages.mkdir()
    settings = {"templates_dir": library, "shop_dir": pages, "template_time_limit_ms": 10_000,
                **settings}  # fmt: skip
    try:
        with serving(store, **settings) as (base, app):
            key, row = create_key(store, "shop", ["web"], source="web", origins=[base])
            crm = create_key(store, "crm", ["collect"], source="crm")[0]
            known = httpx.post(
                f"{base}/v1/identify",
                json={
                    "messageId": "crm-1",
                    "userId": CUSTOMER,
                    "traits": {"first_name": FIRST_NAME},
                },
                auth=(crm, ""),
                timeout=30,
            )
            assert known.status_code == 200, known.text
            secret = key_identity_secret(app.state.settings.secret_key, row["key_id"])
            write_shop(pages, key, budget_ms=BUDGET_MS)
            shop = Shop(base, store, app, key, row["key_id"], secret, pages)
            # the server's first decision builds its serving view and compiles the templates
            assert shop.decide({"placements": ["home_banner"]}).status_code == 200
            yield shop
    finally:
        store.dispose()
