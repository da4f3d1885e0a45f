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
