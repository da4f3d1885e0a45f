"""The answer of a page opened by a signed link (personal page, preference centre, unsubscribe).

Its address is its credential, and it shows a person's name, choices or purchases, so the page
is kept by no cache (``Cache-Control: no-store``: not a shared proxy's, not the browser's
history on a shared computer), names itself to no site it links to (``Referrer-Policy:
no-referrer``: the link's token would travel in the ``Referer``), and is shown inside no other
site's frame (``frame-ancestors 'none'``: no button of it clicked through a decoy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import HTMLResponse

PRIVATE = {
    "Cache-Control": "no-store, private",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


class PersonalPage(HTMLResponse):
    """An HTML answer with the :data:`PRIVATE` headers."""

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(content, status_code, {**PRIVATE, **(headers or {})}, **options)
