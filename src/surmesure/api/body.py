"""Reading a request: the key it carries, and a JSON body within the size limit.

Segment's SDKs authenticate with HTTP Basic, the write key as user name and no password; some
also put ``writeKey`` in the body. Bodies may be gzip-encoded. A body over the limit is refused
with 413 before it is read whole (``Content-Length``) or as soon as it passes the limit
(chunked or compressed bodies), so a client cannot make the server hold more than the limit.

A route whose body is a Pydantic model takes it through :func:`validated_body`, not as a body
parameter: FastAPI reads a body parameter whole before any dependency runs, so a client with
no key could make the server hold a gigabyte before hearing 401.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from surmesure.collect import bounds
from surmesure.errors import InvalidInput, PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit:,} bytes.",
        hint="send fewer messages per call (Segment's SDKs stay under 500 KB per batch)",
        field="body",
    )


async def read_bytes(request: Request, limit: int) -> bytes | None:
    """The raw body, or ``None`` as soon as it is known to pass ``limit`` bytes (announced by
    ``Content-Length``, or read so far): never more than the limit is held or waited for."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """The decoded JSON body, every integer exact (:func:`surmesure.collect.bounds.loads`).
    413 over ``limit`` bytes (after decompression), 400 when it is not JSON."""
    body = await read_bytes(request, limit)
    if body is None:
        raise _too_large(limit)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = _gunzip(body, limit)
    if not body.strip():
        raise InvalidInput("The request body is empty.", hint="send a JSON object", field="body")
    try:
        return bounds.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The request body is not valid JSON ({exc}).",
            hint="send a JSON object with Content-Type: application/json",
            field="body",
        ) from None


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(
            f"The body says Content-Encoding: gzip but is not gzip ({exc}).",
            hint="compress the body with gzip or drop the Content-Encoding header",
            field="body",
        ) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    return out


def header_key(request: Request) -> str | None:
    """The write key of the HTTP Basic ``Authorization`` header, if any."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        return base64.b64decode(credentials, validate=True).decode().split(":", 1)[0] or None
    except (binascii.Error, UnicodeDecodeError):
        return None


def body_key(body: Any) -> str | None:
    """The ``writeKey`` of a JSON body, if any."""
    if isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        return str(body["writeKey"]) or None
    return None


Model = TypeVar("Model", bound=BaseModel)
MAX_MODEL_BYTES = 65_536
"""The largest body of a route taking a model (consents, preferences, page links)."""


def validated_body(
    model: type[Model], limit: int = MAX_MODEL_BYTES
) -> Callable[[Request], Awaitable[Model]]:
    """A dependency giving the JSON body as ``model``, read when its turn comes (after the
    key check declared before it) and never past ``limit`` bytes; a 400 naming the field
    (``body.consents.0.purpose``) when it does not fit the model."""

    async def dependency(request: Request) -> Model:
        raw = await read_json(request, limit)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(["body", *(str(part) for part in error["loc"])])
            message = str(error["msg"]).removeprefix("Value error, ")
            raise InvalidInput(
                f"{where}: {message}", field=where, hint="see the route's schema in /docs"
            ) from None

    return dependency


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` documenting a route's JSON body as ``model``."""
    schema = {"schema": model.model_json_schema(by_alias=True)}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}
