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
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache

CRLF = b"\r\n"
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"]+@[^\s<>()\[\],;:\"]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE = re.compile(r"[\x00-\x20\x7f<>]")
_EOLS = re.compile(rb"\r\n|\n|\r")


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
    when it has none or holds what could end a command."""
    if _CONTROL.search(value):
        return None
    address = value if _BARE_ADDRESS.fullmatch(value) else parseaddr(value)[1]
    if not address or _UNSAFE.search(address):
        return None
    return address


def stuffed(data: bytes) -> bytes:
    """``data`` as the DATA command carries it: CRLF line endings, a dot doubled at the start
    of a line, the final ``.`` line."""
    if data.count(b"\n") != data.count(CRLF) or data.count(b"\r") != data.count(CRLF):
        data = _EOLS.sub(CRLF, data)  # a bare CR or LF (never in the channel's own messages)
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(CRLF):
        data += CRLF
    return data + b".\r\n"


class Transactions:
    """Messages handed over one after another on one open connection."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.pipelining = smtp.has_extn("pipelining")
        self.utf8 = smtp.has_extn("smtputf8")

    def send(self, sender: str, to: str, data: bytes) -> Reply:
        """Hand ``data`` to the server for ``to``; its reply (a refusal is a reply, not an
        exception). A lost connection raises :class:`smtplib.SMTPServerDisconnected` (an
        ``OSError`` may come from the socket): the connection is then of no further use."""
        mail_from, rcpt_to = address_of(sender), address_of(to)
        if mail_from is None or rcpt_to is None:
            which = "sender" if mail_from is None else "recipient"
            return Reply(501, f"the {which} address is not valid".encode())
        option = b""
        if not (mail_from.isascii() and rcpt_to.isascii()):
            if not self.utf8:
                return Reply(553, b"the address needs SMTPUTF8, which the server does not offer")
            option = b" SMTPUTF8"
        envelope = [
            b"MAIL FROM:<" + mail_from.encode() + b">" + option + CRLF,
            b"RCPT TO:<" + rcpt_to.encode() + b">" + CRLF,
            b"DATA" + CRLF,
        ]
        replies: list[tuple[int, bytes]] = []
        if self.pipelining:
            self.smtp.send(b"".join(envelope))
            replies = [self.smtp.getreply() for _ in envelope]
        else:
            for command in envelope:
                self.smtp.send(command)
                replies.append(self.smtp.getreply())
                if replies[-1][0] >= 400:
                    break
        refused = next(((c, t) for c, t in replies[:2] if c >= 400), None)
        if replies[-1][0] == 354:
            # DATA is taken: the data (nothing, if the envelope was refused) ends the transaction
            self.smtp.send(stuffed(data) if refused is None else b".\r\n")
            code, text = self.smtp.getreply()
            return Reply(*(refused or (code, text)))
        self.smtp.rset()
        code, text = refused or replies[-1]
        if code < 400:  # DATA neither taken nor refused: the server broke the protocol
            code, text = 451, b"unexpected reply to DATA: " + text
        return Reply(code, text)
