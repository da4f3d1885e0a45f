"""What an SMS costs: its encoding (GSM-7 or UCS-2) and its number of segments.

A text made only of the GSM 03.38 default alphabet goes as GSM-7: 160 septets in one message,
153 per segment once it is split (the concatenation header takes 7); a character of the
extension table (``€ [ ] { } \\ ~ ^ |`` and form feed) takes two septets and is never cut from its
escape. Any other character sends the whole text as UCS-2: 70 UTF-16 units in one message, 67
per segment, a character outside the BMP (an emoji) taking two units, never cut in half.
Operators bill per segment, so :func:`segments` is ``Delivery.units``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = frozenset("\f^{}\\[~]|€")
LIMITS: dict[Encoding, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}
"""Units in a single message, and in each segment of a split one."""


@dataclass(frozen=True, slots=True)
class Cost:
    encoding: Encoding
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text."""
    segments: int


def encoding_of(text: str) -> Encoding:
    """``gsm7`` when every character is in the GSM-7 alphabet or its extension."""
    for char in text:
        if char not in BASIC and char not in EXTENSION:
            return "ucs2"
    return "gsm7"


def _width(char: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if char in EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def cost(text: str) -> Cost:
    """The encoding, length and segments of ``text`` (an empty text is one message)."""
    encoding = encoding_of(text)
    widths = [_width(c, encoding) for c in text]
    single, per_segment = LIMITS[encoding]
    total = sum(widths)
    if total <= single:
        return Cost(encoding, total, 1)
    count, used = 1, 0
    for width in widths:  # a two-unit character is never cut across segments
        if used + width > per_segment:
            count, used = count + 1, 0
        used += width
    return Cost(encoding, total, count)


def segments(text: str) -> int:
    return cost(text).segments
