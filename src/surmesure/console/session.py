"""Who is signed in to the console, and whether a form really comes from the console.

The session cookie holds the session's random token, signed (:mod:`itsdangerous`) with a key
derived from ``SURMESURE_SECRET_KEY``, so a forged cookie is refused before any query; it is
HTTP-only, ``SameSite=Lax``, and ``Secure`` unless the console is reached over plain HTTP on
the machine itself. Every form carries a CSRF token derived from the session token (HMAC),
checked on every POST (htmx sends it as the ``X-CSRF-Token`` header); the sign-in form, before
any session, carries one tied to a signed cookie of its own. A POST whose ``Origin`` is another
site is refused too.

A page declares what it needs with :func:`page` (``None``: any signed-in user, or one of the
API's scopes, :data:`surmesure.protect.users.ROLE_SCOPES`): a visitor without a session is sent
to the sign-in page; a user whose role lacks the scope gets a 403 page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from itsdangerous import BadSignature, URLSafeSerializer

from surmesure.api.body import read_bytes
from surmesure.errors import Forbidden, InvalidInput, PayloadTooLarge, SurmesureError
from surmesure.protect.users import User, session_user

COOKIE = "surmesure_console"
LOGIN_COOKIE = "surmesure_sign_in"
MAX_FORM_BYTES = 256 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class SignInNeeded(SurmesureError):
    """No live session: the console answers with the sign-in page."""

    http_status = 401
    code = "sign_in"


def _key(request: Request, purpose: str) -> bytes:
    secret = request.app.state.settings.secret_key.encode()
    return hmac.new(secret, f"surmesure console {purpose}".encode(), hashlib.sha256).digest()


def _signer(request: Request, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(_key(request, purpose).hex(), salt=purpose)


def sign(request: Request, token: str, purpose: str = "session") -> str:
    return _signer(request, purpose).dumps(token)


def unsign(request: Request, value: str | None, purpose: str = "session") -> str | None:
    if not value:
        return None
    try:
        token = _signer(request, purpose).loads(value)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def csrf_for(request: Request, token: str) -> str:
    """The CSRF token of the session (or sign-in form) ``token``."""
    return hmac.new(_key(request, "csrf"), token.encode(), hashlib.sha256).hexdigest()


def secure_cookie(request: Request) -> bool:
    """``Secure`` unless the console is reached over plain HTTP on this machine."""
    return request.url.scheme == "https" or request.url.hostname not in LOOPBACK


def cookie_options(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": secure_cookie(request),
        "path": "/console",
    }


def session_token(request: Request) -> str | None:
    return unsign(request, request.cookies.get(COOKIE))


async def current_user(request: Request) -> User | None:
    token = session_token(request)
    if token is None:
        return None
    user = await run_in_threadpool(session_user, request.app.state.store, token)
    if user is not None:
        request.state.console_user = user
        request.state.console_csrf = csrf_for(request, token)
    return user


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", request.url.netloc)


async def form_of(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form (the last value of each), read once per request (its
    raw body stays in ``request.state.console_body``, for fields sent several times)."""
    cached = getattr(request.state, "console_form", None)
    if cached is not None:
        return dict(cached)
    body = await bounded_body(request)
    request.state.console_body = body
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise InvalidInput("The form is not UTF-8.", field="body", hint="send UTF-8") from exc
    form = {k: v[-1] for k, v in pairs.items()}
    request.state.console_form = form
    return dict(form)


async def bounded_body(request: Request) -> bytes:
    """The body, never holding or waiting for more than :data:`MAX_FORM_BYTES` (a form sent to
    the public sign-in page could otherwise be as large as its sender likes)."""
    body = await read_bytes(request, MAX_FORM_BYTES)
    if body is None:
        raise PayloadTooLarge(
            "The form is too large.", hint="send less than 256 KB in one form", field="body"
        )
    return body


async def check_csrf(request: Request, expected: str) -> None:
    if not same_origin(request):
        raise Forbidden("The form was sent from another site.", field="origin")
    sent = request.headers.get("x-csrf-token")
    if sent is None and "urlencoded" in request.headers.get("content-type", ""):
        sent = (await form_of(request)).get("csrf")
    if not sent or not hmac.compare_digest(sent, expected):
        raise Forbidden(
            "The form has expired or did not come from this console.",
            field="csrf",
            hint="reload the page and send the form again",
        )


def page(scope: str | None = None) -> Callable[..., Awaitable[User]]:
    """A dependency: the signed-in user whose role allows ``scope``; a POST must also carry the
    session's CSRF token."""

    async def dependency(request: Request) -> User:
        user = await current_user(request)
        if user is None:
            raise SignInNeeded("Sign in to see this page.", field="session")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            await check_csrf(request, request.state.console_csrf)
        if not user.allows(scope):
            raise Forbidden(
                f"Your role ({user.role}) may not open this page.",
                field="role",
                hint=f"ask an admin for a role with the '{scope}' scope",
            )
        return user

    dependency.scope = "console" if scope is None else f"console:{scope}"  # type: ignore[attr-defined]
    return dependency


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)
