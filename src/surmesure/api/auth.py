"""Which key may call which route: one dependency, ``require(scope)``.

A key comes as ``Authorization: Bearer KEY`` or as the HTTP Basic user name (empty password),
as Segment's SDKs send their write key; collection routes also read ``writeKey`` from the body
(see :mod:`surmesure.api.collect`). No key or an unknown or revoked one is 401; a key without
the scope is 403 naming the scope; over the key's rate limit is 429 with ``Retry-After``.
The principal of an accepted call is ``request.state.principal``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import iter_route_contexts
from limits import parse

from surmesure.api.body import header_key
from surmesure.errors import Forbidden, TooManyRequests, Unauthorized
from surmesure.protect.keys import KeyRing, Principal

KEY_HINT = (
    "send a key as 'Authorization: Bearer KEY' (or the HTTP Basic user name, as Segment's SDKs "
    "send their write key); create one with 'surmesure key create NAME --scope SCOPE'"
)
#: the OpenAPI security schemes: both ways of sending a key (see :func:`presented_key`)
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer KEY`.",
    },
    "writeKey": {
        "type": "http",
        "scheme": "basic",
        "description": "A key as the HTTP Basic user name, no password (Segment's SDKs).",
    },
}


def presented_key(request: Request) -> str | None:
    """The key of the ``Authorization`` header (Bearer or Basic), if any."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return header_key(request)


class RateLimits:
    """Requests per key and scope, in fixed windows counted in this process: a window opens at
    a key's first request for a scope and lasts the limit's period (``1000/second``: one
    second). A request costs a dictionary lookup; nothing runs between requests."""

    def __init__(self, limits: dict[str, str]) -> None:
        self._items = {scope: parse(value) for scope, value in limits.items()}
        self._windows: dict[tuple[str, str], list[float]] = {}
        """(key id, scope) -> [end of the current window (monotonic), requests in it]"""

    def hit(self, principal: Principal, scope: str) -> None:
        item = self._items.get(scope)
        if item is None:
            return
        now = time.monotonic()
        window = self._windows.get((principal.key_id, scope))
        if window is None or window[0] <= now:
            self._windows[(principal.key_id, scope)] = [now + item.get_expiry(), 1]
            return
        if window[1] < item.amount:
            window[1] += 1
            return
        wait = max(1, math.ceil(window[0] - now))
        raise TooManyRequests(
            f"The key {principal.name!r} is over its limit of {item} for {scope}.",
            retry_after=wait,
            hint=f"wait {wait} s (Retry-After); limits are set with SURMESURE_RATE_LIMITS",
        )


async def authorize(
    request: Request, key: str | None, scope: str, *, field: str = "authorization"
) -> Principal:
    """The principal of ``key`` when it may use ``scope``; raises 401, 403 or 429 naming
    ``field``, where the key was looked for."""
    if not key:
        raise Unauthorized("No API key was sent.", hint=KEY_HINT, field=field)
    ring: KeyRing = request.app.state.keys
    principal = ring.known(key)
    if principal is None:
        principal = await run_in_threadpool(ring.find, key)
    if principal is None:
        raise Unauthorized("The API key is not known or was revoked.", hint=KEY_HINT, field=field)
    if not principal.allows(scope):
        raise Forbidden(
            f"The key {principal.name!r} has no '{scope}' scope.",
            hint=f"call this route with a key that has the '{scope}' scope",
            field=field,
        )
    limits: RateLimits = request.app.state.rate_limits
    limits.hit(principal, scope)
    request.state.principal = principal
    return principal


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only a key with ``scope`` (or ``admin``)."""

    async def dependency(request: Request) -> Principal:
        return await authorize(request, presented_key(request), scope)

    dependency.scope = scope  # type: ignore[attr-defined]
    return dependency


def routes(app: FastAPI) -> Iterator[tuple[str, str, str | None]]:
    """``(method, path, scope)`` of every route the app answers, included routers' too."""
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or ()):
            if method != "HEAD" and context.path is not None:
                yield method, context.path, scope_of(context)


def scope_of(route: object) -> str | None:
    """The scope a route requires (``None`` for a public route)."""
    return marked(route, "scope")


def marked(route: object, mark: str) -> str | None:
    """The ``mark`` attribute (a text) of one of a route's dependencies or of its endpoint:
    ``scope`` (:func:`require`), ``client_group`` (:func:`surmesure.api.clients.limited`)."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        found = stack.pop()
        value = getattr(found.call, mark, None)
        if isinstance(value, str):
            return value
        stack.extend(found.dependencies)
    return getattr(getattr(route, "endpoint", None), mark, None)
