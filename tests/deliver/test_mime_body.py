"""An HTML part is encoded piece by piece, the layout its messages share found encoded already:
a mail reader decodes it to what the one-pass encoding gave, whatever the HTML holds, in lines
of at most 76 characters; a header with nothing to clean, encode or fold is written as it is."""

from __future__ import annotations

import binascii
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surmesure.deliver import mime

PIECES = [
    "<div", "<a ", "</a>", "</td>", "<", "=", " ", "\t", "\n", "\r\n", "\r", ".", "\x00",
    "é", "€", "日本", "\U0001f600", "href=\"https://shop.example/t/c/abc.def\"", "x" * 80,
    "=" * 30, " " * 40, "From ", "--=_sm_", "\n.\n",
]  # fmt: skip
HOSTILE = st.lists(st.sampled_from(PIECES) | st.text(max_size=12), max_size=60).map("".join)


def _decoded(encoded: bytes) -> bytes:
    return binascii.a2b_qp(encoded.replace(b"\r\n", b"\n"))


def _lines(encoded: bytes) -> list[bytes]:
    return encoded.split(b"\r\n")


@settings(max_examples=4000, deadline=None)
@given(html=HOSTILE)
def test_an_html_part_decodes_as_the_one_pass_encoding_does(html: str) -> None:
    mime._pieces[0].clear()
    mime._pieces[1].clear()
    for _ in range(2):  # encoded, then found encoded already
        encoded = mime._qp_html(html)
        assert _decoded(encoded) == _decoded(mime._qp(html)) == html.replace("\r\n", "\n").encode()
        assert max(len(line) for line in _lines(encoded)) <= 76  # as RFC 2045 asks
        assert b"\r" not in encoded.replace(b"\r\n", b"") and b"\n" not in encoded.replace(
            b"\r\n", b""
        )
        assert all(line == line.rstrip(b" \t") for line in _lines(encoded))


@pytest.mark.parametrize(
    "html",
    [
        "=" * 25 + "\t\nabc",
        "x" * 74 + " \n<a " + "y" * 80,
        "<div>" + "=" * 24 + "\t",
        "x" * 80 + "\r\r\n",  # a lone CR, then a line break
    ],
)
def test_a_line_ending_in_spaces_is_cut_within_76(html: str) -> None:
    # the one-pass encoder writes 77 or 78 characters where a line ends in a space or a tab
    one_pass = binascii.b2a_qp(html.replace("\r\n", "\n").encode(), istext=True)
    assert max(len(line) for line in one_pass.split(b"\n")) > 76 or "<div>" in html
    mime._pieces[0].clear()
    mime._pieces[1].clear()
    encoded = mime._qp_html(html)
    assert max(len(line) for line in _lines(encoded)) <= 76
    assert _decoded(encoded) == html.replace("\r\n", "\n").encode()
    assert b"\r" not in encoded.replace(b"\r\n", b"")  # no bare CR reaches the server


def test_a_campaign_of_messages_reads_back_as_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = "<table><tr><td style='font-size:13px;padding:10px 25px;'>" * 4
    sent = []
    monkeypatch.setattr(mime, "KEPT_BYTES", 20_000)  # fewer than the pieces: kept ones go
    for person in range(300):
        html = (
            f"<html><body>{layout}<div style='x'>Bonjour Zoé n°{person}</div></td>"
            f"<a href='https://shop.example/t/c/{person:x}{'A' * 90}'>Produit {person}</a>"
            f" : {person},90\xa0€{'</td>' * 4}.\n.</body></html>"
        )
        headers = [("From", "Zoé <news@example.com>"), ("To", f"p{person}@example.org")]
        data = mime.write(headers, f"Bonjour {person}", html, f"m{person}")
        mail = message_from_bytes(data, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        part = mail.get_body(("html",))
        assert part is not None
        assert part.get_content().replace("\r\n", "\n") == html  # (a line break is CRLF)
        sent.append(data)
    assert 0 < mime._pieces[1].size <= mime.KEPT_BYTES
    assert all(max(len(line) for line in d.split(b"\r\n")) <= 998 for d in sent)


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=90), name=st.sampled_from(["Subject", "X-Campaign"]))
def test_a_header_is_written_as_the_careful_path_writes_it(value: str, name: str) -> None:
    line = mime.header(name, value)
    cleaned = " ".join(mime._CONTROL.sub(" ", value).split())
    if cleaned.isascii() and len(name) + len(cleaned) <= 75:
        assert line == f"{name}: {cleaned}\r\n".encode()
    unfolded = line[:-2].replace(b"\r\n ", b" ")
    assert line.endswith(b"\r\n") and b"\r" not in unfolded and b"\n" not in unfolded
