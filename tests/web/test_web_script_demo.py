"""``surmesure demo`` makes the shop: a public web key for the development server's pages,
written to keys.env, and the shop's page using it, which the server serves at /shop/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from api_helpers import serving

from conftest import copy_demo
from surmesure.store import open_store
from surmesure.web.script import script_url


def test_the_demo_writes_a_shop_page_with_its_public_web_key(
    demo_world: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, report = demo_world
    shop = report["shop"]
    assert shop["url"] == "http://127.0.0.1:8080/shop/"
    assert shop["origins"] == ["http://127.0.0.1:8080", "http://localhost:8080"]
    assert "web" in report["keys"]["scopes"]
    lines = (folder / "world" / "keys.env").read_text().splitlines()
    [key] = [line.split("=", 1)[1] for line in lines if line.startswith("SURMESURE_DEMO_WEB_KEY=")]
    store = open_store(copy_demo(folder, tmp_path))
    try:
        with serving(store, shop_dir=tmp_path / "world" / "shop") as (base, _):
            page = httpx.get(f"{base}/shop/")
            filled = httpx.post(
                f"{base}/v1/web/decide",
                content=f'{{"key": "{key}", "placements": ["home_banner"]}}',
                headers={"Origin": "http://127.0.0.1:8080", "Content-Type": "text/plain"},
                timeout=30,
            )
            elsewhere = httpx.post(
                f"{base}/v1/web/decide",
                json={"key": key, "placements": ["home_banner"]},
                headers={"Origin": "https://elsewhere.example"},
                timeout=30,
            )
            read = httpx.get(f"{base}/v1/people/1/why", auth=(key, ""))
    finally:
        store.dispose()
    assert page.status_code == 200
    assert f'data-surmesure-key="{key}"' in page.text and script_url() in page.text
    assert 'data-surmesure-placement="home_banner"' in page.text
    assert filled.status_code == 200, filled.text
    assert filled.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
    assert filled.json()["placements"][0]["html"]
    assert elsewhere.status_code == 403 and read.status_code == 403
