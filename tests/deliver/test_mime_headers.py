"""Non-ASCII header values are written as RFC 2047 encoded words that a mail reader decodes
back to the value, whole characters in each word, lines within 78 characters."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from surmesure.deliver import mime


@pytest.mark.parametrize(
    "subject",
    [
        "Bienvenue à Lyon",
        "Vos offres d'été, Alice : " + "une sélection rien que pour vous " * 3,
        "日本語のテキスト" * 9,  # three bytes a character: no word may cut one
        "x" * 100 + "é",
    ],
)
def test_a_non_ascii_subject_reads_back_as_written(subject: str) -> None:
    data = mime.write([("From", "a@example.com"), ("Subject", subject)], "hi", None, "t1")
    mail = message_from_bytes(data, policy=policy.default)
    assert mail["Subject"] == " ".join(subject.split())
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert b"=?utf-8?b?" in data


@pytest.mark.parametrize(
    ("name", "value", "reads"),
    [
        ("Subject", "Bonjour " + "A" * 3000 + " fin", None),  # one word longer than a line
        ("Subject", "x\x00y\x0bz\x1b[0m\x7f", "x y z [0m"),  # NUL and other controls
        ("To", "Ann " + "B" * 2000 + " <ann@example.org>", None),
        ("Subject", "Offre\r\nBcc: mallory@example.org", "Offre Bcc: mallory@example.org"),
    ],
)
def test_no_header_line_is_too_long_or_holds_a_control_character(
    name: str, value: str, reads: str | None
) -> None:
    data = mime.write([("From", "a@example.com"), (name, value)], "hi", None, "t1")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert all(byte >= 32 or byte in b"\r\n" for byte in head) and b"\x7f" not in head
    mail = message_from_bytes(data, policy=policy.default)
    if name == "To":  # (the standard library's reader spaces a phrase's encoded words)
        (address,) = mail["To"].addresses
        assert address.addr_spec == "ann@example.org"
        assert address.display_name.replace(" ", "") == value.split(" <")[0].replace(" ", "")
    else:
        assert mail[name] == (reads or " ".join(value.split()))
    assert mail["Bcc"] is None
