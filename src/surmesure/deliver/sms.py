"""SMS through Kannel's smsbox (its ``sendsms`` HTTP interface), or any gateway that speaks it.

Settings (:class:`SmsSettings`, or a URL read by :meth:`SmsSettings.from_url`)::

    kannel://user:password@127.0.0.1:13013?sender=MAISON&reports_url=https://crm.example.com

``url``: smsbox's sendsms address (``kannel://host:port`` means
``http://host:port/cgi-bin/sendsms``; ``kannel+https://`` for TLS). ``username``/``password``:
a ``sendsms-user`` group of smsbox. ``sender``: the sender id (a short code, a number or up to 11
letters). ``smsc``: route through one SMSC (``smsc-id``). ``reports_url``: this API's base URL;
when set, every message asks for delivery reports (``dlr-mask``, default 31) sent to
``/v1/sms/reports`` with the message id and a signature, so a forged report is refused.
``max_segments``: a longer text fails instead of costing more (smsbox's ``max-messages`` must
be at least as high, and ``concatenation = true``). ``concurrency``: requests in flight.

Each text goes as GSM-7 when it can, else UCS-2 (``coding=2``); ``Delivery.units`` is its number
of segments (:mod:`surmesure.deliver.gsm`). Control characters other than line breaks, tab and
form feed are left out of the text: a raw escape (``\\x1b``) in a person's value would otherwise
reach the gateway and, read as GSM-7's escape, turn the next letter into another character.
Outcomes: smsbox's 202 (``0: Accepted``, ``3: Queued``) is ``sent``; a refused request (400,
404: a bad number, a missing field) is ``failed``; a refused login (401, 403), a 5xx, a timeout
or a lost connection is ``retry``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal
from urllib.parse import quote, unquote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from surmesure.deliver.channel import Delivery, Message, OnResult, without_recipients
from surmesure.deliver.gsm import cost
from surmesure.deliver.settings import split, validated
from surmesure.errors import ConfigError

_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
REPORTS_PATH = "/v1/sms/reports"
INBOUND_PATH = "/v1/sms/inbound"


class SmsSettings(BaseModel):
    """How to reach smsbox (see the module)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["kannel"] = "kannel"
    url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    username: str
    password: str
    sender: str | None = Field(default=None, max_length=20)
    smsc: str | None = None
    reports_url: str | None = None
    dlr_mask: int = Field(default=31, ge=1, le=31)
    max_segments: int = Field(default=6, ge=1, le=255)
    concurrency: int = Field(default=8, ge=1, le=64)
    timeout: float = Field(default=10.0, gt=0)

    @classmethod
    def from_url(cls, url: str, **extra: object) -> SmsSettings:
        """Settings from ``kannel[+https]://user:password@host:port[?option=value...]``."""
        example = "kannel://user:password@host:13013?sender=SHOP"
        parts = split(url, ("kannel", "kannel+https"), "sms", example)
        scheme = "https" if parts.scheme.endswith("https") else "http"
        path = parts.path if parts.path not in ("", "/") else "/cgi-bin/sendsms"
        values: dict[str, object] = {
            "url": f"{scheme}://{parts.hostname or '127.0.0.1'}:{parts.port or 13013}{path}",
            "username": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
        }
        return validated(cls, values, parts.query, extra, "sms")


def signature(secret: str, message_id: str) -> str:
    """What a delivery report must carry to be believed: an HMAC of the message id."""
    digest = hmac.new(secret.encode(), f"dlr:{message_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def inbound_key(secret: str) -> str:
    """The ``key`` Kannel's ``sms-service`` get-url passes to ``/v1/sms/inbound``."""
    return hmac.new(secret.encode(), b"sms-inbound", hashlib.sha256).hexdigest()[:32]


class SmsChannel:
    """The SMS channel (see the module). ``secret`` signs the delivery report links."""

    name = "sms"

    def __init__(self, settings: SmsSettings, secret: str = "") -> None:
        if settings.reports_url and not secret:
            raise ConfigError(
                "Delivery reports without a secret to sign them.",
                field="sms.reports_url",
                hint="give the channel SURMESURE_SECRET_KEY",
            )
        self.settings = settings
        self.secret = secret
        limits = httpx.Limits(max_connections=settings.concurrency)
        self._http = httpx.Client(timeout=settings.timeout, limits=limits)
        self._threads = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="sms")

    def params(self, message: Message) -> dict[str, str] | str:
        """The query of the sendsms request, or why the message cannot leave."""
        s = self.settings
        text = _CONTROLS.sub("", message.text)
        found = cost(text)
        if found.segments > s.max_segments:
            return f"{found.segments} segments, more than max_segments={s.max_segments}"
        query = {
            "username": s.username,
            "password": s.password,
            "to": message.to,
            "text": text,
            "charset": "UTF-8",
            "coding": "0" if found.encoding == "gsm7" else "2",
        }
        sender = message.sender or s.sender
        if sender:
            query["from"] = sender
        if s.smsc:
            query["smsc"] = s.smsc
        if s.reports_url:
            mid = quote(message.message_id, safe="")
            query["dlr-mask"] = str(s.dlr_mask)
            query["dlr-url"] = (
                f"{s.reports_url.rstrip('/')}{REPORTS_PATH}?id={mid}"
                f"&sig={signature(self.secret, message.message_id)}&status=%d"
            )
        return query

    def _send_one(self, message: Message) -> Delivery:
        query = self.params(message)
        if isinstance(query, str):
            return Delivery(message.message_id, "failed", detail=query)
        units = cost(query["text"]).segments
        try:
            answer = self._http.get(self.settings.url, params=query)
        except httpx.HTTPError as exc:
            return Delivery(message.message_id, "retry", detail=type(exc).__name__, units=units)
        detail = without_recipients(f"{answer.status_code} {answer.text.strip()}", 160)
        if answer.status_code in (200, 202):
            return Delivery(message.message_id, "sent", message.message_id, detail, units)
        if answer.status_code in (401, 403) or answer.status_code >= 500:
            return Delivery(message.message_id, "retry", detail=detail, units=units)
        return Delivery(message.message_id, "failed", detail=detail, units=units)

    def send(
        self, messages: Sequence[Message], on_result: OnResult | None = None
    ) -> list[Delivery]:
        """Each message in its own request, ``concurrency`` at once; ``on_result`` is told
        each answer as it comes."""

        def one(message: Message) -> Delivery:
            delivery = self._send_one(message)
            if on_result is not None:
                on_result(delivery)
            return delivery

        return list(self._threads.map(one, messages))

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        self._http.close()
