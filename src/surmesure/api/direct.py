"""The busiest routes answered before FastAPI's routing and dependency solving.

A call of one event (``/v1/track``, ``/v1/identify``...) or one decision (``/v1/decide``) costs
less in its endpoint than in FastAPI's routing, dependency solving and middleware around it.
Their routes stay declared on their routers (the OpenAPI document and the authorization tests
see them), and their endpoints take the request alone and check its key themselves; but a
``POST`` to one of their paths is answered by :class:`Direct`, which calls the same endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from surmesure.errors import SurmesureError


class Direct:
    """Pure ASGI middleware: a ``POST`` to a path of ``routers`` goes straight to its endpoint
    (the route's template set for the access log); a known error is answered by
    ``on_error``, as the app's handler does; anything else goes on to the app."""

    def __init__(
        self,
        app: ASGIApp,
        on_error: Callable[[Request, SurmesureError], Response],
        routers: Iterable[APIRouter],
    ) -> None:
        self.app = app
        self.on_error = on_error
        self.routes = {
            path: route
            for router in routers
            for route in router.routes
            if (path := getattr(route, "path", None)) is not None
            and "POST" in getattr(route, "methods", ())
            and getattr(route.endpoint, "scope", None) is not None  # type: ignore[attr-defined]
        }
        self.endpoints: dict[str, Callable[[Request], Awaitable[Response]]] = {
            path: route.endpoint  # type: ignore[attr-defined]
            for path, route in self.routes.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[scope["path"]]
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except SurmesureError as exc:
            response = self.on_error(request, exc)
        await response(scope, receive, send)


def direct(scope: str) -> Callable[[Callable[..., Awaitable[Response]]], Any]:
    """Marks an endpoint :class:`Direct` may answer: it checks a key of ``scope`` itself (the
    mark is read by the OpenAPI and the authorization tests, as :func:`~.auth.require`'s)."""

    def mark(endpoint: Callable[..., Awaitable[Response]]) -> Any:
        endpoint.scope = scope  # type: ignore[attr-defined]
        return endpoint

    return mark
