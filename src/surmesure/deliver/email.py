"""E-mail over SMTP: MJML/HTML plus a plain-text part, a pool of connections, DKIM, one-click
unsubscribe.

Settings (:class:`EmailSettings`, or a URL read by :meth:`EmailSettings.from_url`)::

    smtp://user:password@host:587?starttls=1&pool=4&sender=news@example.com
    smtps://user:password@host:465               (TLS from the first byte)

``host``/``port``: the SMTP server (a provider's relay, or a local Postfix). ``username`` and
``password``: AUTH when set (only over STARTTLS or TLS unless ``allow_plain_auth``).
``starttls``: upgrade the connection (``verify_tls=false`` accepts a self-signed certificate,
for tests only). ``pool``: connections kept open and used in parallel. ``sender``: the From of
messages that do not name one. ``dkim_domain``, ``dkim_selector``, ``dkim_key`` (PEM text or a
path to it): sign every message (RSA, through OpenSSL: :mod:`surmesure.deliver.dkim_rsa`),
``List-Unsubscribe`` headers included.
``track``: open pixel and click links through this API (:mod:`surmesure.deliver.tracking`),
with the campaign of the message's ``X-Campaign`` header.

Every marketing message carries ``List-Unsubscribe`` (an https link and, when configured, a
mailto) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), made from the
message's ``person_id`` by :class:`~surmesure.deliver.unsubscribe.UnsubscribeLinks` unless the
message brings its own. A message with the header ``X-Purpose: transactional`` goes without; a
marketing message that has neither a person nor its own header fails (nothing leaves that a
person cannot stop). The Message-ID is ``<message_id@domain>``, so a bounce finds its message.

Outcomes: a 5xx reply to a recipient or to the data is ``failed``; a 4xx reply, a lost
connection, a timeout or a refused login is ``retry`` (the outbox tries again later). The
server's reply is the delivery's detail without the addresses it quotes
(:func:`~surmesure.deliver.channel.without_recipients`).
"""

from __future__ import annotations

import itertools
import re
import smtplib
import ssl
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from surmesure.deliver import mime
from surmesure.deliver.channel import Delivery, Message, OnResult, Outcome, without_recipients
from surmesure.deliver.mjml import compile_mjml, text_of
from surmesure.deliver.settings import split, validated
from surmesure.deliver.smtp_wire import Item, Reply, Transactions
from surmesure.deliver.tracking import track
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,75}")
_SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]
_SIGNED += [b"list-unsubscribe", b"list-unsubscribe-post"]


class EmailSettings(BaseModel):
    """How to reach the SMTP server (see the module)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["smtp"] = "smtp"
    host: str = "127.0.0.1"
    port: int = Field(default=25, gt=0, lt=65536)
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False
    verify_tls: bool = True
    allow_plain_auth: bool = False
    pool: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=30.0, gt=0)
    sender: str = "surmesure@localhost"
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key: str | None = None
    track: bool = False

    @classmethod
    def from_url(cls, url: str, **extra: object) -> EmailSettings:
        """Settings from ``smtp://[user:password@]host[:port][?option=value...]``."""
        parts = split(url, ("smtp", "smtps"), "email", "smtp://user:password@host:587?starttls=1")
        values: dict[str, object] = {"host": parts.hostname or "127.0.0.1"}
        values["tls"] = parts.scheme == "smtps"
        values["port"] = parts.port or (465 if values["tls"] else 25)
        if parts.username:
            values["username"] = unquote(parts.username)
            values["password"] = unquote(parts.password or "")
        return validated(cls, values, parts.query, extra, "email")

    @model_validator(mode="after")
    def _no_login_in_clear(self) -> EmailSettings:
        if self.username is not None and not (self.tls or self.starttls or self.allow_plain_auth):
            raise ValueError(
                "a login over a connection in clear (starttls): set starttls=1 (or tls), "
                "or allow_plain_auth=1 on a trusted network"
            )
        return self

    def dkim_private_key(self) -> bytes | None:
        if not self.dkim_key:
            return None
        if not (self.dkim_domain and self.dkim_selector):
            raise ConfigError(
                "A DKIM key without its domain and selector.",
                field="email.dkim_domain",
                hint="set dkim_domain and dkim_selector with dkim_key",
            )
        text = self.dkim_key
        if "-----BEGIN" not in text:
            text = Path(text).read_text()
        return text.encode()


@lru_cache(maxsize=256)
def _valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


_dated: list[tuple[int, str]] = [(0, "")]


def _date() -> str:
    """The Date header's value now (RFC 5322, UTC), made once a second."""
    second = int(time.time())
    at, text = _dated[-1]
    if at != second:
        text = formatdate(second)
        _dated[-1:] = [(second, text)]  # one item, replaced whole: safe across threads
    return text


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip("> ") or "localhost"


class EmailChannel:
    """The e-mail channel (see the module)."""

    name = "email"

    def __init__(self, settings: EmailSettings, unsubscribe: UnsubscribeLinks | None = None):
        self.settings = settings
        self.unsubscribe = unsubscribe
        key = settings.dkim_private_key()
        self._signer = None
        if key is not None:
            assert settings.dkim_domain and settings.dkim_selector
            from surmesure.deliver.dkim_rsa import RsaSigner  # (its imports: only when signing)

            self._signer = RsaSigner(key, settings.dkim_domain, settings.dkim_selector, _SIGNED)
        self._idle: SimpleQueue[Transactions] = SimpleQueue()
        self._threads = ThreadPoolExecutor(settings.pool, thread_name_prefix="smtp")

    # -- building -------------------------------------------------------------------------

    def build(self, message: Message) -> bytes | str:
        """The bytes to send, or why the message cannot leave."""
        headers = dict(message.headers)
        bad = [name for name in headers if not _valid_name(name)]
        if bad:
            return f"header name {bad[0][:40]!r} is not valid: use letters, digits and '-'"
        marketing = headers.pop("X-Purpose", "marketing") != "transactional"
        if marketing and "List-Unsubscribe" not in headers:
            if message.person_id is None or self.unsubscribe is None:
                return "a marketing message needs an unsubscribe link (a person and links)"
            headers.update(self.unsubscribe.headers(message.person_id, "email"))
        sender = message.sender or self.settings.sender
        for role, address in (("recipient", message.to), ("sender", sender)):
            if not address.isascii():
                return (
                    f"the {role} address {address[:80]!r} is not ASCII, and messages leave "
                    "without SMTPUTF8: correct it, or write its domain in its xn-- form"
                )
        html = message.html
        if html is not None and html.lstrip().startswith("<mjml"):
            html = compile_mjml(html)
        links = self.unsubscribe
        if html is not None and self.settings.track and links and message.person_id is not None:
            campaign = headers.get("X-Campaign")
            html = track(
                html,
                message.person_id,
                campaign,
                public_url=links.public_url,
                secret=links.secret,
                hosts=message.link_hosts,
            )
        fields = [
            ("From", sender),
            ("To", message.to),
            ("Subject", message.subject or ""),
            ("Date", _date()),
            ("Message-ID", f"<{message.message_id}@{_domain_of(sender)}>"),
            *headers.items(),
        ]
        text = message.text or (text_of(html) if html else "")
        data = mime.write(fields, text, html, message.message_id)
        if self._signer is not None:
            data = self._signer.sign(data) + data
        return data

    # -- sending --------------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        if not s.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        smtp: smtplib.SMTP
        if s.tls:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        smtp.ehlo()
        if s.starttls:
            smtp.starttls(context=context)
            smtp.ehlo()
        if s.username is not None:
            smtp.login(s.username, s.password or "")
        return smtp

    def _take(self) -> Transactions:
        try:
            return self._idle.get_nowait()
        except Empty:
            return Transactions(self._connect())

    def _send_chunk(
        self, chunk: Sequence[tuple[int, Message]], on_result: OnResult | None
    ) -> list[tuple[int, Delivery]]:
        """Build and send ``chunk`` in turn over one connection (built here, so one thread
        lays out a message while another waits for the server's reply)."""
        done: dict[int, Delivery] = {}
        messages = dict(chunk)

        raised: list[BaseException] = []  # by on_result: not the connection's, not caught here

        def tell(i: int, delivery: Delivery) -> None:
            done[i] = delivery
            if on_result is not None:
                try:
                    on_result(delivery)
                except BaseException as exc:
                    raised.append(exc)
                    raise

        def told(i: int, reply: Reply) -> None:
            message = messages[i]
            if reply.accepted:
                tell(i, Delivery(message.message_id, "sent", provider_id=message.message_id))
            else:
                tell(i, _refused(message, reply.code, reply.text))

        def built() -> Iterator[Item[int]]:
            for i, message in chunk:
                data = self.build(message)
                if isinstance(data, str):
                    tell(i, Delivery(message.message_id, "failed", detail=data))
                else:
                    yield i, message.sender or self.settings.sender, message.to, data

        items = built()
        wire: Transactions | None = None
        try:
            while True:
                try:
                    wire = wire or self._take()
                    wire.send_all(items, told)
                    break
                except (smtplib.SMTPException, OSError) as exc:
                    if raised:
                        raise
                    lost = wire.in_flight if wire is not None else []
                    if wire is not None:
                        _close(wire.smtp)
                    else:  # no connection: the next message is tried on a new one
                        lost = [item[0] for item in itertools.islice(items, 1)]
                        if not lost:
                            break
                    wire = None
                    detail = getattr(exc, "smtp_error", b"") or type(exc).__name__
                    if isinstance(detail, bytes):
                        detail = detail.decode(errors="replace")
                    detail = without_recipients(str(detail))
                    for i in lost:
                        tell(i, Delivery(messages[i].message_id, "retry", detail=detail))
        except BaseException:
            # on_result or a message's layout failed, maybe with the next envelope written:
            # the connection is dropped, not quit (a QUIT there would be read as data)
            if wire is not None:
                wire.smtp.close()
            raise
        if wire is not None:
            self._idle.put(wire)
        return sorted(done.items())

    def send(
        self, messages: Sequence[Message], on_result: OnResult | None = None
    ) -> list[Delivery]:
        """Hand the batch over on ``pool`` connections at once, each telling ``on_result``
        of a message the moment the server accepted (or refused) it."""
        results: list[Delivery | None] = [None] * len(messages)
        numbered = list(enumerate(messages))
        ways = min(self.settings.pool, len(numbered)) or 1
        chunks = [numbered[k::ways] for k in range(ways)]
        if ways == 1:
            parts = [self._send_chunk(numbered, on_result)]
        else:
            parts = list(self._threads.map(lambda c: self._send_chunk(c, on_result), chunks))
        for part in parts:
            for i, delivery in part:
                results[i] = delivery
        return [r for r in results if r is not None]

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        while True:
            try:
                wire = self._idle.get_nowait()
            except Empty:
                return
            _close(wire.smtp)


def _refused(message: Message, code: int, reply: bytes | str) -> Delivery:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    outcome: Outcome = "failed" if 500 <= code < 600 else "retry"
    return Delivery(message.message_id, outcome, detail=without_recipients(f"{code} {text}"))


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
