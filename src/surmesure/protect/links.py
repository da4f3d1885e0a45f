"""Signed, expiring links to a person's own pages (personal page, preference centre).

A token is ``{"p": person id, "e": expiry (Unix seconds)}`` (and, for a page a campaign sent,
``"c"``: the campaign's name) signed with
``SURMESURE_SECRET_KEY`` (itsdangerous) under a salt naming the page, so a link to one page
never opens another. It carries no personal data. A link lives at most ``max_days``: a longer
one is not made, and a token claiming a later expiry is refused. A bad, tampered, expired or
over-long token is :class:`~surmesure.errors.NotFound`; so is a token spelled otherwise than it
was made (one link is one token).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from itsdangerous import BadSignature, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, int_to_bytes

from surmesure.errors import InvalidInput, NotFound


def _epoch(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp())


class _Signer:
    """Tokens ``URLSafeTimedSerializer(secret, salt=salt)`` reads as its own, made without its
    per-token setup (every marketing message carries one): the key derived once, the HMAC
    state copied rather than rebuilt, the payload as compact JSON (never compressed, which the
    reader accepts: a payload this short does not shrink)."""

    def __init__(self, secret: str, salt: str) -> None:
        serializer = URLSafeTimedSerializer(secret, salt=salt)
        signer = serializer.make_signer(salt)
        self._mac = hmac.new(signer.derive_key(), digestmod=hashlib.sha1)  # its own digest

    def dumps(self, payload: dict[str, Any]) -> str:
        stamp = base64_encode(int_to_bytes(int(time.time())))
        value = base64_encode(orjson.dumps(payload)) + b"." + stamp
        mac = self._mac.copy()
        mac.update(value)
        return (value + b"." + base64_encode(mac.digest())).decode("ascii")


@lru_cache(maxsize=32)
def _signer(secret: str, salt: str) -> _Signer:
    return _Signer(secret, salt)


def make_token(
    person_id: int,
    *,
    salt: str,
    days: int,
    now: datetime,
    secret: str,
    max_days: int,
    campaign: str | None = None,
) -> str:
    if not 0 < days <= max_days:
        raise InvalidInput(
            f"A link of {days} days.",
            hint=f"give 1 to {max_days} days (SURMESURE_PAGE_LINK_MAX_DAYS)",
            field="days",
        )
    payload: dict[str, Any] = {"p": person_id, "e": _epoch(now + timedelta(days=days))}
    if campaign is not None:
        payload["c"] = campaign
    return _signer(secret, salt).dumps(payload)


def read_token(token: str, *, salt: str, now: datetime, secret: str, max_days: int) -> int:
    """The person id of a valid token; :class:`NotFound` otherwise."""
    return int(read_payload(token, salt=salt, now=now, secret=secret, max_days=max_days)["p"])


def read_payload(
    token: str, *, salt: str, now: datetime, secret: str, max_days: int
) -> dict[str, Any]:
    """What a valid token signs (``p``, ``e`` and maybe ``c``); :class:`NotFound` otherwise."""
    gone = NotFound("This page does not exist or has expired.", hint="ask for a new link")
    try:
        payload: Any = URLSafeTimedSerializer(secret, salt=salt).loads(token)
    except BadSignature:
        raise gone from None
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), int):
        raise gone
    # base64 decoding forgives padding and the unused low bits of the last character, so one
    # signature has several spellings: only the one we made counts, or a link that takes one
    # answer (keyed by its token) would take one per spelling
    signature = token.rpartition(".")[2]
    if base64_encode(base64_decode(signature)).decode() != signature:
        raise gone
    expiry = payload.get("e")
    if not isinstance(expiry, int) or not _epoch(now) < expiry <= _epoch(now) + max_days * 86400:
        raise gone
    if not isinstance(payload.get("c", ""), str):
        raise gone
    return payload
