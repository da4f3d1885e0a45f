"""The outermost layer of the API: what no route may let through.

- A NUL character in the path or the query string is refused with 400 before any route runs:
  no store keeps it, and PostgreSQL fails on it.
- A known error's text (message, field, hint) names no file of the server: a path that exists
  on the server is shown by its last part (:func:`without_paths`).
- An unexpected error becomes a 500 with the usual error body, and the server's log gets the
  route's template (``/v1/people/{person_id}/why``, never the path with its values) and the
  types and places of the exceptions, never their messages (:func:`surmesure.errors.trace_of`).
  The error is not raised further, so no server prints its own trace with the messages.
- The access log (logger ``surmesure.access``, on with ``surmesure serve --access-log``) names
  each request by its method, its route's template, its status and its time: never the path
  with its values nor the query string (a personal link's token, a gateway's ``key``). uvicorn's
  own access log, which prints both, stays off.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surmesure.errors import trace_of

log = logging.getLogger("surmesure.api")
access = logging.getLogger("surmesure.access")

INTERNAL = {
    "code": "internal",
    "message": "The server could not complete the request; nothing was acknowledged.",
    "hint": "send it again later; the server log has the details",
}


class Guard:
    """Pure ASGI middleware (no cost on the hot path beyond two byte searches)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        place = _nul_in(scope)
        if place is not None:
            body = {
                "code": "invalid_input",
                "message": f"The {place} contains a NUL character (%00).",
                "field": place,
                "hint": f"remove the NUL character from the {place}",
            }
            await _answer(send, 400, body)
            return
        status = 0
        began = time.perf_counter()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error(
                "unexpected error on %s %s\n%s", scope.get("method"), _route(scope), trace_of(exc)
            )
            if not status:
                await _answer(send, 500, INTERNAL)
                status = 500
        if access.isEnabledFor(logging.INFO):
            spent = (time.perf_counter() - began) * 1000
            access.info("%s %s %d %.1f ms", scope.get("method"), _route(scope), status, spent)


class NoUvicornAccess(logging.Filter):
    """Drops uvicorn's access lines (they print the path's values and the query string),
    even where a handler attached to ``uvicorn.access`` would turn them back on: set on that
    logger by ``surmesure serve`` (:func:`surmesure.cli.serve.server_options`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _route(scope: Scope) -> str:
    """The template of the route that answered (``/p/{token}``), never the path's values."""
    return getattr(scope.get("route"), "path", None) or "(no route)"


def _nul_in(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", ""):  # already decoded
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query and b"\x00" in unquote_to_bytes(query):
        return "query"
    return None


async def _answer(send: Send, status: int, error: dict[str, Any]) -> None:
    body = orjson.dumps({"success": False, "error": error})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_PATH = re.compile(r"/[^\s'\"(),:;]+")


def without_paths(text: str) -> str:
    """``text`` with every absolute path that exists on this server (or whose folder does)
    replaced by its last part: ``/srv/app/templates/home.yaml`` -> ``home.yaml``."""

    def short(match: re.Match[str]) -> str:
        path = match.group(0).rstrip(".")
        if path.count("/") < 2 or not (
            os.path.exists(path) or os.path.isdir(os.path.dirname(path))
        ):
            return match.group(0)
        return os.path.basename(path) + match.group(0)[len(path) :]

    return _PATH.sub(short, text) if "/" in text else text
