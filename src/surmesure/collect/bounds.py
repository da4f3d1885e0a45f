"""What a collected value may be so that both stores keep it: the limits every record meets.

A message that passes Pydantic can still be one neither store can hold, or one only DuckDB
holds: PostgreSQL refuses a NUL character (``\\u0000``) in text and in JSON, an integer must fit
64 bits (-2**63 to 2**63-1) to be read back as one, a value nested very deep cannot be written
as JSON, and a time far from the present is out of what the date types and the code that
computes with them (time zones, windows) handle. The same limits apply on both stores, so a
record means the same thing wherever it is kept:

- no NUL character in any key or text;
- integers within -2**63 .. 2**63-1;
- at most :data:`MAX_DEPTH` levels of objects and lists;
- times (and dates) from :data:`EARLIEST` to :data:`LATEST`, i.e. years 1900 to 2200.

:func:`fault` names the first place a decoded JSON value breaks one of them;
:func:`storable` is a copy of any value that a store can keep (for the quarantine, which keeps
what was refused); :func:`loads` decodes JSON with every integer exact, so an integer too large
is seen as such rather than rounded to a float.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import orjson

MAX_DEPTH = 32
"""Most levels of objects and lists inside one message (Segment's own payloads use 3 or 4)."""
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(2200, 12, 31, 23, 59, 59, 999999)
YEARS = "1900 to 2200"
NUL = "\x00"
REPLACEMENT = "\ufffd"

# only a run of 19 digits or more can be an integer outside 64 bits; a translation table finds
# one at memory speed (every digit becomes 9, everything else a space)
_DIGITS_ONLY = bytes(57 if 48 <= b <= 57 else 32 for b in range(256))
_NINETEEN = b"9" * 19


def _long_digits(raw: bytes) -> bool:
    return _NINETEEN in raw.translate(_DIGITS_ONLY)


def loads(data: bytes | str) -> Any:
    """Decode JSON (``orjson`` semantics), keeping every integer exact: ``orjson`` reads an
    integer beyond 64 bits as a float, which would hide it, so such a document is read again
    by the standard library. Raises ``orjson.JSONDecodeError``."""
    value = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    if _long_digits(raw):
        # orjson accepted it, so it holds no NaN, infinity or lone surrogate that the
        # standard library would read differently
        value = json.loads(raw)
    return value


def in_range(when: datetime | date) -> bool:
    """Whether ``when`` (naive, aware or a date) falls in years 1900 to 2200."""
    return EARLIEST.year <= when.year <= LATEST.year


def time_reason(when: datetime | date) -> str:
    return f"{when.isoformat()} is outside years {YEARS}: send the real time of the event"


def _path(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else part


def fault(value: Any, base: str = "") -> tuple[str, str] | None:
    """``(place, reason)`` of the first part of ``value`` (decoded JSON) a store cannot keep,
    or ``None``. ``place`` extends ``base`` (``properties.items[2].sku``)."""
    try:
        # strict integers: any integer beyond 2**53 raises, so is looked at more closely
        text = orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        return _walk(value, base)  # a large integer, or nested past orjson's own limit
    if b"\\u0000" not in text and text.count(b"{") + text.count(b"[") <= MAX_DEPTH:
        return None  # the common case: nothing to look at more closely
    return _walk(value, base)


def _walk(value: Any, base: str) -> tuple[str, str] | None:
    # a stack rather than recursion: the depth of a document is the sender's choice
    stack: list[tuple[Any, str, int]] = [(value, base, 0)]
    while stack:
        item, place, depth = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return place, "contains a NUL character (\\u0000): remove it"
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                return place, (
                    "is an integer outside 64 bits (-2**63 to 2**63-1): send a smaller "
                    "number, or the number as a string"
                )
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return place, (
                    f"is nested more than {MAX_DEPTH} levels deep: send a flatter document"
                )
            if isinstance(item, dict):
                for key, child in reversed(item.items()):
                    if NUL in key:
                        return _path(place, key.replace(NUL, "\\u0000")), (
                            "the key contains a NUL character (\\u0000): rename it"
                        )
                    stack.append((child, _path(place, key), depth + 1))
            else:
                for index in range(len(item) - 1, -1, -1):
                    stack.append((item[index], _path(place, index), depth + 1))
    return None


def no_nul(text: str) -> str:
    """``text``, or ``ValueError`` when it holds a NUL character: a Pydantic validator for the
    free text of a request body (PostgreSQL would refuse the row, answering 500)."""
    if NUL in text:
        raise ValueError("contains a NUL character (\\u0000): remove it")
    return text


def clean_text(text: str) -> str:
    """``text`` with every NUL character replaced by U+FFFD, as a store can keep it."""
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def storable(value: Any) -> Any:
    """A copy of ``value`` (decoded JSON) that both stores keep: NUL characters become
    U+FFFD, integers outside 64 bits become their decimal text, and what lies deeper than
    :data:`MAX_DEPTH` becomes the text ``"(nested too deep)"``. ``value`` itself when it
    needs no change."""
    if fault(value) is None:
        return value
    return _copy(value, 0)


def _copy(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else str(value)
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return "(nested too deep)"
    if isinstance(value, dict):
        return {clean_text(str(k)): _copy(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v, depth + 1) for v in value]
    return clean_text(str(value))
