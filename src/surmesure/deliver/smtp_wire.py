"""One SMTP mail transaction for a message already laid out as bytes, over a connection that
:mod:`smtplib` opened (greeting, EHLO, STARTTLS and AUTH stay the library's).

``smtplib.SMTP.sendmail`` costs more processor time than the e-mail channel's own work on a
message: it parses both addresses again (``email.utils.parseaddr``), runs two regular
expressions over the whole message (line endings, dot-stuffing), and waits for the server's
reply to each of ``MAIL``, ``RCPT``, ``DATA`` and the data in turn. Here the channel's messages,
whose lines already end in CRLF (:mod:`surmesure.deliver.mime`), are dot-stuffed with one
``bytes.replace``; and when the server offers ``PIPELINING`` (RFC 2920: Postfix, Exim, the
providers' relays do), ``MAIL``, ``RCPT`` and ``DATA`` leave in one write and their replies are
read together, so a message takes two round trips instead of four.

The replies mean what they mean to ``sendmail``: the first refusal among ``MAIL``, ``RCPT``,
``DATA`` and the data is the message's, and the transaction is reset after a refusal of the
envelope, so the connection serves the next message. An address with a line break or angle
brackets in it is refused before anything is written (no command can be slipped into the
conversation); one that is not ASCII needs the server's ``SMTPUTF8``.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import getaddresses
from functools import lru_cache
from typing import Any, TypeVar

CRLF = b"\r\n"
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"]+@[^\s<>()\[\],;:\"]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE = re.compile(r"[\x00-\x20\x7f<>]")
_EOLS = re.compile(rb"\r\n|\n|\r")
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Reply:
    """The server's answer to a message: ``code`` 250 when it took it."""

    code: int
    text: bytes

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300


@lru_cache(maxsize=64)
def address_of(value: str) -> str | None:
    """The bare address (``addr-spec``) of ``value`` (``Name <a@b>`` or ``a@b``); ``None``
    when it has none, more than one, or holds what could end a command."""
    if _CONTROL.search(value):
        return None
    if _BARE_ADDRESS.fullmatch(value):
        address = value
    else:  # one address only: the envelope's would not be the header's others
        found = getaddresses([value])
        address = found[0][1] if len(found) == 1 else ""
    if not address or _UNSAFE.search(address):
        return None
    return address


def stuffed(data: bytes) -> bytes:
    """``data`` as the DATA command carries it: CRLF line endings, a dot doubled at the start
    of a line, the final ``.`` line."""
    crlf = data.count(CRLF)
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = _EOLS.sub(CRLF, data)  # a bare CR or LF (never in the channel's own messages)
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(CRLF):
        data += CRLF
    return data + b".\r\n"


Item = tuple[K, str, str, bytes]
"""A message to hand over: the caller's key for it, the sender, the recipient, its bytes."""


class Transactions:
    """Messages handed over one after another on one open connection."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.pipelining = smtp.has_extn("pipelining")
        self.utf8 = smtp.has_extn("smtputf8")
        #: the messages written but not answered yet, when the connection was lost: whether
        #: the server took them is not known
        self.in_flight: list[Any] = []

    def _envelope(self, sender: str, to: str) -> list[bytes] | Reply:
        """``MAIL``, ``RCPT`` and ``DATA`` for the message, or why it cannot leave."""
        mail_from, rcpt_to = address_of(sender), address_of(to)
        if mail_from is None or rcpt_to is None:
            which = "sender" if mail_from is None else "recipient"
            return Reply(501, f"the {which} address is not valid".encode())
        option = b""
        if not (mail_from.isascii() and rcpt_to.isascii()):
            if not self.utf8:
                return Reply(553, b"the address needs SMTPUTF8, which the server does not offer")
            option = b" SMTPUTF8"
        return [
            b"MAIL FROM:<" + mail_from.encode() + b">" + option + CRLF,
            b"RCPT TO:<" + rcpt_to.encode() + b">" + CRLF,
            b"DATA" + CRLF,
        ]

    def send_all(self, items: Iterator[Item[K]], told: Callable[[K, Reply], None]) -> None:
        """Hand over each of ``items`` in turn, telling ``told`` the server's reply to each (a
        refusal is a reply, not an exception). With PIPELINING, the end of a message's data
        leaves in the same write as the next message's envelope (RFC 2920, 3.1), so a message
        takes one round trip. A lost connection raises :class:`smtplib.SMTPServerDisconnected`
        (or an ``OSError`` from the socket), the messages it left unanswered in
        :attr:`in_flight`: the connection is then of no further use; ``items`` goes on
        with the next message."""
        if not self.pipelining:
            for key, sender, to, data in items:
                self.in_flight = [key]
                told(key, self.send(sender, to, data))
            self.in_flight = []
            return
        current = self._next(items, told)
        if current is None:
            return
        self.smtp.send(b"".join(current[1]))
        while current is not None:
            (key, _, _, data), _ = current
            replies = [self.smtp.getreply() for _ in range(3)]
            following = self._next(items, told)  # laid out while the server reads
            after = b"" if following is None else b"".join(following[1])
            reply = self._end(replies, data, after)
            self.in_flight.remove(key)
            told(key, reply)
            current = following

    def _next(
        self, items: Iterator[Item[K]], told: Callable[[K, Reply], None]
    ) -> tuple[Item[K], list[bytes]] | None:
        """The next item that may leave, and its envelope (those that may not are told)."""
        for item in items:
            envelope = self._envelope(item[1], item[2])
            if isinstance(envelope, Reply):
                told(item[0], envelope)
                continue
            self.in_flight.append(item[0])
            return item, envelope
        return None

    def _end(self, replies: list[tuple[int, bytes]], data: bytes, after: bytes) -> Reply:
        """End the transaction the envelope ``replies`` answer (the data when DATA was taken,
        else RSET), with ``after`` in the same write; the message's reply."""
        refused = next(((c, t) for c, t in replies[:2] if c >= 400), None)
        if replies[-1][0] == 354:
            # DATA is taken: the data (nothing, if the envelope was refused) ends the transaction
            self.smtp.send((stuffed(data) if refused is None else b".\r\n") + after)
            code, text = self.smtp.getreply()
            return Reply(*(refused or (code, text)))
        self.smtp.send(b"RSET\r\n" + after)
        self.smtp.getreply()
        code, text = refused or replies[-1]
        if code < 400:  # DATA neither taken nor refused: the server broke the protocol
            code, text = 451, b"unexpected reply to DATA: " + text
        return Reply(code, text)

    def send(self, sender: str, to: str, data: bytes) -> Reply:
        """Hand ``data`` to the server for ``to``, waiting for the reply to each command; its
        reply (lost connections as in :meth:`send_all`)."""
        envelope = self._envelope(sender, to)
        if isinstance(envelope, Reply):
            return envelope
        replies: list[tuple[int, bytes]] = []
        for command in envelope:
            self.smtp.send(command)
            replies.append(self.smtp.getreply())
            if replies[-1][0] >= 400:
                break
        replies += [replies[-1]] * (3 - len(replies))  # (the refusal stands for DATA's reply)
        return self._end(replies, data, b"")
