"""The demo shop: a small home page with a ``home_banner`` placement, as a shop would write it.

The page (``shop/index.html``) holds its neutral default inside the placement and includes
the web script with the public web key; a logged-in page also carries the user signed by
the shop's server (:func:`surmesure.web.identity.sign_user`). :func:`write_shop` writes it
to a folder the server serves at ``/shop/`` (``SURMESURE_SHOP_DIR``, ``surmesure demo``'s
``demo/shop`` in development mode).
"""

from __future__ import annotations

from html import escape
from importlib import resources
from pathlib import Path

from surmesure.web.script import script_url

SHOP_FOLDER = "shop"


def shop_page(
    key: str,
    *,
    script: str | None = None,
    user: str | None = None,
    account: str = "",
    budget_ms: int | None = None,
    placement: str = "home_banner",
) -> str:
    """The shop's home page using the web ``key``; ``script``: the script's URL (default:
    this server's, versioned); ``user``: a signed user (the page of a logged-in customer,
    ``account`` naming them in the header); ``budget_ms``: the placements' budget;
    ``placement``: the banner's."""
    page = resources.files("surmesure.web").joinpath("shop/index.html").read_text("utf-8")
    values = {
        "{{script}}": escape(script or script_url()),
        "{{key}}": escape(key),
        "{{user}}": "" if user is None else f' data-surmesure-user="{escape(user)}"',
        "{{budget}}": "" if budget_ms is None else f' data-surmesure-budget="{budget_ms}"',
        "{{account}}": escape(account),
        "{{placement}}": escape(placement),
    }
    for name, value in values.items():
        page = page.replace(name, value)
    return page


def write_shop(
    folder: Path, key: str, pages: dict[str, str] | None = None, budget_ms: int | None = None
) -> Path:
    """Write the shop's home page (``index.html``) with ``key`` (and the placements' budget
    ``budget_ms``, the script's default if None) to ``folder``, and ``pages`` (file name ->
    HTML) beside it; the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(shop_page(key, budget_ms=budget_ms), encoding="utf-8")
    for name, html in (pages or {}).items():
        (folder / name).write_text(html, encoding="utf-8")
    return folder
