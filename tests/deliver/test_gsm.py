"""Encoding and segments of an SMS: GSM-7 160/153, UCS-2 70/67, a two-unit character never cut."""

from __future__ import annotations

import pytest

from surmesure.deliver.gsm import cost

CASES = [
    ("", "gsm7", 0, 1),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("Été à Paris: 5€, {promo} [ok] ~ | ^ \\", "gsm7", 46, 1),  # 37 characters, 9 escaped
    ("€" * 80, "gsm7", 160, 1),
    ("€" * 81, "gsm7", 162, 2),
    ("a" * 152 + "€" + "a" * 5, "gsm7", 159, 1),
    ("a" * 152 + "€" + "a" * 6, "gsm7", 160, 1),
    ("a" * 152 + "€" + "a" * 7, "gsm7", 161, 2),
    ("a" * 152 + "€" * 77, "gsm7", 306, 3),  # 152 | 76 € (152) | 1 €: the escape stays whole
    ("Ça ✓", "ucs2", 4, 1),
    ("ç" * 70, "ucs2", 70, 1),  # ç is not GSM-7 (Ç is)
    ("ç" * 71, "ucs2", 71, 2),
    ("ç" * 134, "ucs2", 134, 2),
    ("ç" * 135, "ucs2", 135, 3),
    ("😀" * 35, "ucs2", 70, 1),
    ("a" * 66 + "😀" + "a" * 10, "ucs2", 78, 2),
    ("a" * 66 + "😀" * 34, "ucs2", 134, 3),  # 66 | 33 😀 (66) | 1 😀: a pair is never cut
]


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), CASES)
def test_cost(text: str, encoding: str, units: int, segments: int) -> None:
    found = cost(text)
    assert (found.encoding, found.units, found.segments) == (encoding, units, segments)
