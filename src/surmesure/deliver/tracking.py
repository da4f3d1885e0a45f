"""Opens and clicks of an e-mail, through signed links, kept as the person's channel activity.

:func:`track` rewrites a message's HTML for one person: each ``http(s)`` link becomes
``{public_url}/t/c/{token}`` and a 1x1 image ``{public_url}/t/o/{token}.gif`` is added. A token
signs (``SURMESURE_SECRET_KEY``, salt ``surmesure.track``) the person, the campaign and, for a
click, the target, so a link cannot be turned into a redirect to anywhere (no open redirect) nor
count for someone else. :func:`click_link` makes one such link for another channel (a personal
page's button, ``k`` naming the channel). The routes record a ``channel_activity`` row (channel
``email``, or the token's ``k``, kind
``opened`` or ``clicked``, the campaign, the URL of a click, source ``tracking``), which
engagement and channel appetence read; the pixel always answers its image, a click always
redirects when its token is good. Links to the unsubscribe page or with ``data-notrack`` are
left alone.

The routes need no key, so one link asked for in a loop must not write a row per request: a
token's open or click is one row per hour (its id is a hash of what the token signs, the kind
and the hour), a repeat in the same hour adds nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from base64 import urlsafe_b64encode
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.dialects import postgresql

from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

SALT = "surmesure.track"
SOURCE = "tracking"
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)("[^>]*>)', re.I)


def _signer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


class _Tokens:
    """Tokens :func:`_signer` reads as its own, made without its per-token setup (a message
    signs half a dozen): the key derived once, the payload as compact JSON (not compressed,
    which the reader accepts), the HMAC state copied rather than rebuilt."""

    def __init__(self, secret: str) -> None:
        key = _signer(secret).make_signer(SALT).derive_key()
        self._mac = hmac.new(key, digestmod=hashlib.sha1)  # the serializer's own digest

    def dumps(self, payload: Any) -> str:
        body = urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=")
        mac = self._mac.copy()
        mac.update(body)
        return (body + b"." + urlsafe_b64encode(mac.digest()).rstrip(b"=")).decode("ascii")


@lru_cache(maxsize=8)
def _tokens(secret: str) -> _Tokens:
    return _Tokens(secret)


def track(html: str, person_id: int, campaign: str | None, *, public_url: str, secret: str) -> str:
    """``html`` with its links and an open pixel made personal (see the module)."""
    signer = _tokens(secret)
    base = public_url.rstrip("/")

    def link(found: re.Match[str]) -> str:
        start, url, end = found.groups()
        if "data-notrack" in found.group(0) or url.startswith(f"{base}/u/"):
            return found.group(0)
        token = signer.dumps({"p": person_id, "c": campaign, "u": url.replace("&amp;", "&")})
        return f"{start}{base}/t/c/{token}{end}"

    rewritten = _HREF.sub(link, html)
    pixel = signer.dumps({"p": person_id, "c": campaign})
    image = f'<img src="{base}/t/o/{pixel}.gif" width="1" height="1" alt="" style="display:none">'
    at = rewritten.rfind("</body>")
    if at < 0:
        at = rewritten.lower().rfind("</body>")
    return rewritten + image if at < 0 else rewritten[:at] + image + rewritten[at:]


def click_link(
    url: str,
    person_id: int,
    campaign: str | None,
    *,
    public_url: str,
    secret: str,
    channel: str = "email",
) -> str:
    """A tracked link to ``url``: following it records a click of ``channel`` (``k`` in the
    token, e-mail when absent) for the person and the campaign, then redirects."""
    payload: dict[str, Any] = {"p": person_id, "c": campaign, "u": url}
    if channel != "email":
        payload["k"] = channel
    return f"{public_url.rstrip('/')}/t/c/{_signer(secret).dumps(payload)}"


def read(token: str, secret: str) -> dict[str, Any] | None:
    """What a token signs, or ``None`` for a bad one."""
    try:
        payload = _signer(secret).loads(token)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), int):
        return None
    return payload


def record(store: Store, payload: dict[str, Any], kind: str, now: datetime) -> bool:
    """One ``channel_activity`` row for the person the token names (the one they were merged
    into); ``False`` when that person no longer exists (erased)."""
    url, campaign = payload.get("u"), payload.get("c")
    channel = str(payload.get("k") or "email")[:16]
    with store.begin() as conn:
        person_id = root_of(conn, int(payload["p"]))
        if person_id is None:
            return False
        node = int(payload["p"])
        row = activity(person_id, node, channel, kind, now, SOURCE, campaign=campaign, url=url)
        row["activity_id"] = hourly_id(payload, kind, now)
        conn.execute(
            postgresql.insert(schema.channel_activity)
            .values(row)
            .on_conflict_do_nothing(index_elements=["activity_id"])
        )
    return True


def hourly_id(payload: dict[str, Any], kind: str, now: datetime) -> str:
    """The id of a token's ``kind`` row in the hour of ``now`` (see the module)."""
    text = "\x1f".join(
        str(part) for part in (kind, payload["p"], payload.get("c"), payload.get("u"))
    )
    return hashlib.sha256(f"{text}\x1f{now:%Y-%m-%dT%H}".encode()).hexdigest()[:32]


def activity(
    person_id: int,
    node_id: int,
    channel: str,
    kind: str,
    at: datetime,
    source: str,
    *,
    campaign: Any = None,
    url: Any = None,
) -> dict[str, Any]:
    """One ``channel_activity`` row."""
    return {
        "activity_id": uuid.uuid4().hex,
        "person_id": person_id,
        "node_id": node_id,
        "channel": channel,
        "kind": kind,
        "campaign": str(campaign)[:256] if campaign else None,
        "url": str(url)[:1024] if url else None,
        "occurred_at": at,
        "source": source,
    }
