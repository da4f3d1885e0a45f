"""Rendering console pages: one Jinja2 environment (HTML escaped by default), the page's
language, numbers and dates formatted for it (Babel), and the pages every error gets.

A page is rendered by :func:`render` with what its route computed; a template holds no
business rule, only layout. The words of both languages are in :mod:`surmesure.console.words`.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from surmesure.api.guard import without_paths
from surmesure.console.words import WORDS, language_of
from surmesure.errors import SurmesureError, TooManyRequests
from surmesure.protect.users import User

#: the console's sections, in the order of its menu: (path, word, scope needed)
SECTIONS: tuple[tuple[str, str, str | None], ...] = (
    ("/console/", "home", None),
    ("/console/people", "people", "read"),
    ("/console/segments", "segments", None),
    ("/console/content", "content", "read"),
    ("/console/campaigns", "campaigns", None),
    ("/console/journeys", "journeys", None),
    ("/console/experiments", "experiments", None),
    ("/console/data", "data", "admin"),
)
SECURITY_HEADERS = {
    # the console's own scripts and styles only: no inline script, no other origin
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    folder = str(files("surmesure.console") / "templates")
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = lambda v, lang="en", fmt=None: (
        "—" if v is None else format_decimal(v, format=fmt, locale=lang)
    )
    env.filters["percent"] = lambda v, lang="en": (
        "—" if v is None else format_percent(v, format="#,##0.0%", locale=lang)
    )
    env.filters["money"] = lambda v, cur, lang="en": (
        "—"
        if v is None
        else format_currency(v, cur, locale=lang)
        if cur
        else format_decimal(v, format="#,##0.00", locale=lang)
    )
    env.filters["day"] = lambda v, lang="en": (
        "—" if v is None else format_date(v, format="medium", locale=lang)
    )
    env.filters["moment"] = lambda v, lang="en": (
        "—"
        if v is None
        else format_datetime(v, format="medium", locale=lang)
        if isinstance(v, datetime)
        else format_date(v, format="medium", locale=lang)
        if isinstance(v, date)
        else str(v)
    )
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    return env


def render(
    request: Request,
    template: str,
    *,
    user: User | None,
    status: int = 200,
    title: str = "",
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` for ``user`` (``None`` on the sign-in page)."""
    lang = user.language if user is not None else language_of(request)
    words = WORDS[lang]
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            user=user,
            lang=lang,
            w=words,
            title=title,
            csrf=getattr(request.state, "console_csrf", ""),
            sections=[s for s in SECTIONS if user is not None and user.allows(s[2])],
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def fragment(request: Request, template: str, *, user: User, **context: Any) -> HTMLResponse:
    """A piece of a page that htmx swaps in (no layout)."""
    return render(request, template, user=user, **context)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})


def error_page(request: Request, exc: SurmesureError) -> Response:
    """A console error as a page in the user's language (the sign-in page for no session)."""
    from surmesure.console.session import SignInNeeded

    if isinstance(exc, SignInNeeded):
        if request.method == "GET" and "hx-request" not in request.headers:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return see_other(f"/console/login?next={quote(target, safe='')}")
        return HTMLResponse("", 401, headers={"HX-Redirect": "/console/login"})
    user = getattr(request.state, "console_user", None)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}
    page = render(
        request,
        "error.html",
        user=user,
        status=exc.http_status,
        title=WORDS[user.language if user else language_of(request)]["error"],
        message=without_paths(exc.message),
        field=exc.field,
        hint=exc.hint,
    )
    page.headers.update(headers)
    return page
