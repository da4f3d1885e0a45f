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
left alone, and so is a link to a host the campaign did not write (``hosts``: those its
templates name literally, and the shop's and product pages' hosts from the settings): a URL
built from a person's value (``href="{{ person.website }}"``, which anyone may set through
the public collection key) is never signed, so the tracker is no redirect to a site of their
choosing.

The routes need no key, so one link asked for in a loop must not write a row per request: a
token's open or click is one row per hour (its id is a hash of what the token signs, the kind
and the hour), a repeat in the same hour adds nothing.

A token also signs when it was made (``t``, Unix seconds) and records for
``SURMESURE_TRACKING_TOKEN_DAYS`` (365 by default) after that (:func:`fresh`), as a page link
lives at most ``SURMESURE_PAGE_LINK_MAX_DAYS``. Past it, the pixel still answers its image and
a click still redirects to its target, but nothing is recorded and nothing new is signed: people
keep old e-mails as bookmarks and come back through their links years later, so an ESP's click
redirect keeps leading to the target (one that looks its links up in a table it empties sends
an old link to a fallback page instead: Twilio after 90 days); since the target is signed in
the token, this one can lead there for ever without becoming an open redirect. What stops is
the counting: a link forwarded, posted or replayed long after the message no longer writes
activity on the person, which engagement and appetence would read as theirs. A token made
before tokens carried ``t`` counts as made at :data:`UNDATED_MADE_AT`, so the e-mails already
sent keep recording for one lifetime after the upgrade; one claiming a time ahead of the clock
(more than :data:`CLOCK_SKEW_SECONDS`) records nothing.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

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
UNDATED_MADE_AT = 1_796_428_800
"""When a token without ``t`` counts as made (2026-12-05T00:00Z, when tokens began to carry it)."""
CLOCK_SKEW_SECONDS = 300
"""How far ahead of this server's clock a token's ``t`` may be (another server made it)."""


def _signer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """``data`` in unpadded URL-safe base64 (itsdangerous's ``base64_encode``)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


class _Tokens:
    """Tokens :func:`_signer` reads as its own, made without its per-token setup (a message
    signs half a dozen): the key derived once, the payload as compact JSON (not compressed,
    which the reader accepts), the HMAC state copied rather than rebuilt."""

    def __init__(self, secret: str) -> None:
        key = _signer(secret).make_signer(SALT).derive_key()
        self._mac = hmac.new(key, digestmod=hashlib.sha1)  # the serializer's own digest

    def dumps(self, payload: Any) -> str:
        body = _b64(orjson.dumps(payload))
        mac = self._mac.copy()
        mac.update(body)
        return (body + b"." + _b64(mac.digest())).decode("ascii")


@lru_cache(maxsize=8)
def _tokens(secret: str) -> _Tokens:
    return _Tokens(secret)


def track(
    html: str,
    person_id: int,
    campaign: str | None,
    *,
    public_url: str,
    secret: str,
    hosts: frozenset[str] | None = None,
    now: datetime | None = None,
) -> str:
    """``html`` with its links and an open pixel made personal at ``now`` (default: the
    clock; see the module); with ``hosts``, only links to those hosts are tracked."""
    signer = _tokens(secret)
    base = public_url.rstrip("/")
    made = _epoch(now)
    unsubscribe = f"{base}/u/"

    def link(found: re.Match[str]) -> str:
        start, url, end = found.groups()
        if "data-notrack" in found.group(0) or url.startswith(unsubscribe):
            return found.group(0)
        target = url.replace("&amp;", "&")
        if hosts is not None and _host(target) not in hosts:
            return found.group(0)
        token = signer.dumps({"p": person_id, "c": campaign, "u": target, "t": made})
        return f"{start}{base}/t/c/{token}{end}"

    rewritten = _HREF.sub(link, html)
    pixel = signer.dumps({"p": person_id, "c": campaign, "t": made})
    image = f'<img src="{base}/t/o/{pixel}.gif" width="1" height="1" alt="" style="display:none">'
    at = rewritten.rfind("</body>")
    if at < 0:
        at = rewritten.lower().rfind("</body>")
    return rewritten + image if at < 0 else rewritten[:at] + image + rewritten[at:]


_LITERAL_HOST = re.compile(r"https?://([A-Za-z0-9.-]+)(?=[/:?#\\\"'\s<]|$)")


def host_of(url: str) -> str | None:
    """The host of ``url``, lower-cased (``None`` when it has none)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _host(url: str) -> str | None:
    """:func:`host_of`, remembered: a campaign's messages link to the same few pages."""
    return host_of(url)


def literal_hosts(*texts: str | None) -> frozenset[str]:
    """The hosts of the ``http(s)`` URLs written in ``texts`` (template sources) as they are:
    a host that a template tag completes (``https://shop.{{ x }}``) is not one."""
    return frozenset(
        m.group(1).lower().rstrip(".")
        for text in texts
        if text
        for m in _LITERAL_HOST.finditer(text)
    )


def click_link(
    url: str,
    person_id: int,
    campaign: str | None,
    *,
    public_url: str,
    secret: str,
    channel: str = "email",
    now: datetime | None = None,
) -> str:
    """A tracked link to ``url`` made at ``now`` (default: the clock): following it records
    a click of ``channel`` (``k`` in the token, e-mail when absent) for the person and the
    campaign, then redirects."""
    payload: dict[str, Any] = {"p": person_id, "c": campaign, "u": url, "t": _epoch(now)}
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


def _epoch(at: datetime | None) -> int:
    """``at`` (UTC, naive as the store keeps it; default: the clock) in Unix seconds."""
    return int((at.replace(tzinfo=UTC) if at is not None else datetime.now(UTC)).timestamp())


def fresh(payload: dict[str, Any], now: datetime, days: int) -> bool:
    """Whether a token that signs ``payload`` still records at ``now`` (UTC): made at most
    ``days`` ago, and not later than the clock (see the module)."""
    made = payload.get("t", UNDATED_MADE_AT)
    if not isinstance(made, int) or isinstance(made, bool):
        return False
    at = _epoch(now)
    return at - days * 86400 <= made <= at + CLOCK_SKEW_SECONDS


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
