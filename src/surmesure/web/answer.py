"""What a web page is answered for one placement: what it shows, and nothing it does not.

A decision (:mod:`surmesure.decide.answer`) holds whom it was for, its context (the nearest
store, the local time) and its explanation (traits used, thresholds, reasons): all of that
stays on the server. A page gets, per placement, :data:`SHOWN`: the ``decision_id`` its events
name, the ``content_id``, the content's ``html`` (the template's body, every value escaped by
the sandbox; a template written as text, ``format: text``, is escaped here whole, so a page
shows what it printed as text, never as markup), the offers' ``content_id``, ``title`` and
``text`` (escaped alike), and the products' catalogue fields (:data:`PRODUCT_FIELDS`). A
decision held back (a refusal of marketing) shows nothing: ``html`` is ``null`` and the page
keeps its own default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import escape

SHOWN = ("placement", "decision_id", "content_id", "html", "offers", "products")
OFFER_FIELDS = ("content_id", "title", "text")
PRODUCT_FIELDS = ("product_code", "name", "category", "price")
"""A product's catalogue fields (never its score nor the reason it was recommended)."""


def shown(placement: str, result: Mapping[str, Any], *, text: bool = False) -> dict[str, Any]:
    """The page's share of the decision ``result`` for ``placement``; ``text``: its template
    is written as text, and what it printed is escaped."""
    content = result.get("content")

    def html(value: Any) -> Any:
        return str(escape(value)) if text and isinstance(value, str) else value

    return {
        "placement": placement,
        "decision_id": result["decision_id"],
        "content_id": content["content_id"] if content else None,
        "html": html(content["body"]) if content else None,
        "offers": [
            {
                k: offer[k] if k == "content_id" else html(offer[k])
                for k in OFFER_FIELDS
                if k in offer
            }
            for offer in result.get("offers", [])
        ],
        "products": [
            {k: product[k] for k in PRODUCT_FIELDS if k in product}
            for product in result.get("products", [])
        ],
    }


def missing(placement: str) -> dict[str, Any]:
    """The answer for a placement no template serves: the page keeps its default."""
    return {"placement": placement, "decision_id": None, "content_id": None, "html": None,
            "offers": [], "products": []}  # fmt: skip
