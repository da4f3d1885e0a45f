"""A MIME message written directly as bytes: headers, then a text part and an optional HTML part
(``multipart/alternative``), both UTF-8 in quoted-printable.

The standard library's ``EmailMessage`` takes about 5 ms a message (its header registry parses
every header it is given), which alone caps a campaign near 200 messages a second; this writer
does the same job in a few tens of microseconds. Header values are folded at 78 characters,
non-ASCII ones are RFC 2047 encoded (a display name in an address too), and a CR or LF in a
value becomes a space (so does any other control character, NUL included), so no value can
add a header; a word too long for a line of 998 characters is encoded in words too. The
boundary starts with ``=_``, which quoted-printable never writes, so no body can contain it.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from email.utils import formataddr, parseaddr

CRLF = b"\r\n"
_ADDRESS = {"from", "to", "reply-to", "sender", "cc"}
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _fold(name: str, value: str) -> str:
    if len(name) + len(value) <= 75:  # most headers fit on their line (77 characters)
        return f"{name}: {value}"
    line, out = f"{name}: ", []
    for word in value.split(" "):
        if len(line) + len(word) + 1 > 78 and line.strip() and not line.endswith(": "):
            out.append(line.rstrip())
            line = " "
        line += word + " "
    out.append(line.rstrip())
    return "\r\n".join(out)


LONGEST = 998
"""The longest line RFC 5322 allows (a relay may cut a longer one, and its rest would be read
as a header of its own or the body)."""
_FOLDABLE = LONGEST - 80
"""The longest value (or word) folded as it is: longer, it is written as encoded words."""


def header(name: str, value: str) -> bytes:
    """One header line (folded), ending with CRLF."""
    if (
        len(name) + len(value) <= 75
        and value.isascii()
        and value.isprintable()
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
    ):  # most headers: nothing to clean, encode or fold
        return f"{name}: {value}\r\n".encode()
    if not value.isprintable():  # a control character (CR, LF, NUL, tab...) becomes a space
        value = _CONTROL.sub(" ", value)
    value = " ".join(value.split())
    if not value.isascii() or len(value) > _FOLDABLE:
        if name.lower() in _ADDRESS:
            display, address = parseaddr(value)
            value = formataddr((display, address), charset="utf-8")
            if display and len(value) > _FOLDABLE:  # a word too long to fold
                value = f"{_encoded_words(display)} <{address}>"
        elif not value.isascii() or max(map(len, value.split(" "))) > _FOLDABLE:
            return f"{name}: {_encoded_words(value)}".encode() + CRLF
    return _fold(name, value).encode() + CRLF


_WORD_BYTES = 39
"""The UTF-8 bytes of one encoded word: 52 in base64, 64 with its markers, so the first line
(with a header name of up to 12 characters) keeps within 78."""


def _encoded_words(value: str) -> str:
    """``value`` as RFC 2047 encoded words (UTF-8, base64), each of whole characters, one a
    line (the whitespace between encoded words is not part of the value)."""
    data = value.encode()
    words, start = [], 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a character: cut before
            end -= 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:end], newline=False).decode()}?=")
        start = end
    return "\r\n ".join(words)


def _qp(text: str) -> bytes:
    body = text.replace("\r\n", "\n")
    if "\r" in body:  # a lone CR is the text's own: "=0D" (the encoder would leave it bare)
        encoded = b"=0D".join(binascii.b2a_qp(s.encode(), istext=True) for s in body.split("\r"))
    else:
        encoded = binascii.b2a_qp(body.encode(), istext=True)
    return _fit(encoded, 76).replace(b"\n", CRLF)


def _fit(encoded: bytes, room: int) -> bytes:
    """``encoded`` (LF line endings) in lines of 76 characters at most, its last of ``room``."""
    lines = encoded.split(b"\n")
    if len(lines[-1]) <= room and max(map(len, lines)) <= 76:
        return encoded
    last = len(lines) - 1
    return b"\n".join(_fitted(line, room if i == last else 76) for i, line in enumerate(lines))


_CUT = re.compile(r"<(?=div|a |/a>|/td>)")
"""Where an HTML part is cut into pieces encoded one by one: around its links and texts, so
that the rest, the layout every message of a template shares, is encoded once."""
KEPT_BYTES = 1 << 21
"""How much of the pieces encoded already is kept (each process, twice: first pieces, others)."""


class _Encoded(dict[str, bytes]):
    """Pieces encoded already (:func:`_piece`), up to :data:`KEPT_BYTES` of them: then it
    starts again, as the personal pieces pile up (the shared ones come back at once)."""

    size = 0

    def keep(self, piece: str, encoded: bytes) -> None:
        grown = len(piece) + len(encoded)
        if grown > KEPT_BYTES // 16:  # a piece this long is likely one person's
            return
        if self.size + grown > KEPT_BYTES:
            self.clear()
            self.size = 0
        self[piece] = encoded
        self.size += grown


_pieces = (_Encoded(), _Encoded())
"""Pieces encoded already: the first of a part; the others (each after a ``<``)."""


def _piece(piece: str, lead: str, kept: _Encoded) -> bytes:
    """``lead + piece`` in quoted-printable (LF line endings), its last line short enough
    for the soft line break that follows it."""
    found = kept.get(piece)
    if found is not None:
        return found
    encoded = _fit(binascii.b2a_qp((lead + piece).encode(), istext=True), 75)
    kept.keep(piece, encoded)
    return encoded


def _fitted(line: bytes, room: int) -> bytes:
    """``line`` cut by soft line breaks into lines of 76 characters at most, an =XX kept whole,
    its last of ``room`` (a piece's last line has 75: the soft break joining the next follows).

    The encoder writes up to 78 where a line ends in spaces or tabs.
    """
    soft = line.endswith(b"=")
    rest, room = (line[:-1], 75) if soft else (line, room)
    out = []
    while len(rest) > room:
        cut = 75 - (1 if rest[74:75] == b"=" else 2 if rest[73:74] == b"=" else 0)
        out.append(rest[:cut] + b"=")
        rest = rest[cut:]
    out.append(rest + b"=" if soft else rest)
    return b"\n".join(out)


def _qp_html(html: str) -> bytes:
    """:func:`_qp` of ``html``, decoding to the same text: its pieces (:data:`_CUT`) encoded
    apart, or found encoded already, and joined by soft line breaks."""
    text = html.replace("\r\n", "\n")
    if "\r" in text:  # a lone CR: a piece's encoder would read it as a line's end
        return _qp(html)
    first, *rest = _CUT.split(text)
    first_kept, kept = _pieces
    encoded = [_piece(first, "", first_kept)]
    for piece in rest:
        found = kept.get(piece)
        encoded.append(_piece(piece, "<", kept) if found is None else found)
    return b"=\n".join(encoded).replace(b"\n", CRLF)


def _part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode()
        + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + (_qp_html(text) if subtype == "html" else _qp(text))
        + CRLF
    )


def write(headers: Iterable[tuple[str, str]], text: str, html: str | None, tag: str) -> bytes:
    """The message's bytes. ``tag`` makes the boundary (the message id does)."""
    head = b"".join(header(n, v) for n, v in headers) + b"MIME-Version: 1.0\r\n"
    if html is None:
        return head + _part("plain", text)
    boundary = "=_sm_" + _NOT_ALNUM.sub("", tag)[:40]
    return (
        head
        + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
        + f"--{boundary}\r\n".encode()
        + _part("plain", text)
        + f"--{boundary}\r\n".encode()
        + _part("html", html)
        + f"--{boundary}--\r\n".encode()
    )
