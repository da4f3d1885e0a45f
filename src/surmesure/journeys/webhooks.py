"""Webhook steps: a signed POST of what happened, retried.

The body is the JSON ``{"journey", "step", "person_id", "entry"}``; the header
``X-Surmesure-Signature: sha256=<hex>`` is the HMAC-SHA256 of the body under the secret key, so
the receiver can check it came from here. A call that fails (network error, 5xx, 429) is tried
again after 0.5, 1, 2, ... seconds, ``retries`` times; a 4xx other than 429 is not retried.
Calls are made after the transaction that moved the person has committed: at least once, not
exactly once (a receiver uses ``journey``, ``step``, ``person_id`` and ``entry`` as its
idempotency key).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from surmesure.config import get_settings

log = logging.getLogger("surmesure.journeys")


def signature(body: bytes, key: str) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def call(url: str, payload: dict[str, Any], retries: int, *, timeout: float = 5.0) -> bool:
    """POST ``payload`` to ``url``, signed; whether it was accepted (2xx) in the end."""
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Surmesure-Signature": signature(body, get_settings().secret_key),
    }
    for attempt in range(retries + 1):
        try:
            answer = httpx.post(url, content=body, headers=headers, timeout=timeout)
            if answer.is_success:
                return True
            if answer.status_code < 500 and answer.status_code != 429:
                log.warning("webhook %s refused: %s", url, answer.status_code)
                return False
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed: %s", url, type(exc).__name__)
        if attempt < retries:
            time.sleep(0.5 * 2**attempt)
    return False


def call_all(calls: Sequence[tuple[str, str, int, dict[str, Any]]]) -> int:
    """Make each call; how many were accepted."""
    return sum(call(url, payload, retries) for url, _, retries, payload in calls)
