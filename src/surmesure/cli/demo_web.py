"""The demo's shop: a public web key for the development server's pages, and the shop's home
page using it, written to ``--out/shop`` (served at ``/shop/`` by ``surmesure serve --dev``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from surmesure.cli.common import console
from surmesure.protect.keys import create_key
from surmesure.store import Store
from surmesure.web.shop import SHOP_FOLDER, write_shop

#: the development server's address, as a browser names it
DEMO_ORIGINS = ("http://127.0.0.1:8080", "http://localhost:8080")


def web_demo(store: Store, out: Path, keys_file: str) -> dict[str, Any]:
    """A new public web key (an earlier demo one revoked), appended to ``out/keys_file``, and
    the shop's page using it in ``out/shop``."""
    key, row = create_key(
        store, "demo-web", ["web"], source="web", origins=DEMO_ORIGINS, replace=True
    )
    with (out / keys_file).open("a") as keys:
        keys.write(f"SURMESURE_DEMO_WEB_KEY={key}\n")
    folder = write_shop(out / SHOP_FOLDER, key)
    return {
        "url": f"{DEMO_ORIGINS[0]}/shop/",
        "folder": str(folder),
        "origins": row["origins"],
        "served": folder.resolve() == (Path("demo") / SHOP_FOLDER).resolve(),
    }


def print_web(found: dict[str, Any]) -> None:
    where = "" if found["served"] else f" (with SURMESURE_SHOP_DIR={escape(found['folder'])})"
    console.print(
        f"Shop: [bold]surmesure serve --dev[/]{where}, then open [bold]{found['url']}[/]: its "
        "banner is filled in the browser by /web/surmesure.js with the public web key "
        "(SURMESURE_DEMO_WEB_KEY)"
    )
