"""The outermost layer of the API: what no route may let through.

- A NUL character in the path or the query string is refused with 400 before any route runs:
  no store keeps it, and PostgreSQL fails on it.
- A known error's text (message, field, hint) names no file of the server: a path that exists
  on the server is shown by its last part (:func:`without_paths`).
- An unexpected error becomes a 500 with the usual error body, and the server's log gets the
  route's template (``/v1/people/{person_id}/why``, never the path with its values) and the
  types and places of the exceptions, never their messages (:func:`surmesure.errors.trace_of`).
  The error is not raised further, so no server prints its own trace with the messages.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surmesure.errors import trace_of

log = logging.getLogger("surmesure.api")

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
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            log.error("unexpected error on %s %s\n%s", scope.get("method"), route, trace_of(exc))
            if not started:
                await _answer(send, 500, INTERNAL)


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
