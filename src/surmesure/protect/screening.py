"""Finding erased identifiers in what comes in, for each way in (see
:mod:`surmesure.protect.suppression` for the list and its contract).

- valid import records: their normalized identifier columns, looked up column by column
  (:func:`screen_records`; a consents import re-admits first);
- records refused for another reason: their identifiers as they parse
  (:func:`screen_rejected`, :func:`message_identifiers`);
- rows that could not be read at all: each cell, field and word tried as every kind of
  identifier (:func:`text_identifiers`; such a row can never be replayed anyway, so matching
  loosely costs nothing but its diagnostic text).

What is refused is quarantined by :func:`refused_item`: reason ``erased``, no value, and a
payload naming only the kinds of identifiers that matched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Connection

from surmesure.collect import quarantine
from surmesure.collect.mapping import POSITION
from surmesure.collect.records import IDENTIFIER_FIELDS
from surmesure.domain.identity import normalize
from surmesure.protect.suppression import REASON, Identifier, barred, erased_kinds, readmit
from surmesure.store.engine import Store


def refused_item(location: str, kinds: Sequence[str]) -> quarantine.Item:
    """The quarantine record of a refused record: its place, reason ``erased``, and a payload
    naming the kinds of identifiers that matched, nothing else."""
    return quarantine.Item(location, kinds[0], None, REASON, {quarantine.ERASED: list(kinds)})


def loose_identifiers(fields: Mapping[str, Any], region: str) -> list[Identifier]:
    """The identifiers among ``fields`` (kind -> raw value) that normalize; for records
    refused for another reason, whose values were never checked."""
    found: list[Identifier] = []
    for kind, value in fields.items():
        if value is None or isinstance(value, dict | list | bool):
            continue
        text = str(value)
        if kind == "customer_id" and text.endswith(".0") and text[:-2].isdigit():
            text = text[:-2]  # a numeric id read as a float, as the eraser reads it
        try:
            found.append((kind, normalize(kind, text, region)))
        except ValueError:
            continue
    return found


_TOKEN = re.compile(r"[^\s,;|\"'{}\[\]:]+")
_FIELD = re.compile(r"[,;|\t\"{}\[\]]")
_PLAIN = ("customer_id", "loyalty_card", "anonymous_id")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def text_identifiers(raw: Any, region: str) -> list[Identifier]:
    """Every identifier a row that could not be read as a record might hold (its cells, or its
    text): each cell, field and word as an e-mail (with an ``@``), a phone number (six digits or
    more) and a plain id of every kind, where it normalizes as one."""
    found: list[Identifier] = []
    for text in _strings(raw):
        for piece in {text, *_FIELD.split(text), *_TOKEN.findall(text)}:
            piece = piece.strip()
            if not piece or len(piece) > 256:
                continue
            kinds: dict[str, Any] = dict.fromkeys(_PLAIN, piece)
            if "@" in piece:
                kinds["email"] = piece
            elif sum(ch.isdigit() for ch in piece) >= 6:
                kinds["phone"] = piece
            found += loose_identifiers(kinds, region)
    return found


def message_identifiers(raw: Any, region: str) -> list[Identifier]:
    """The identifiers a raw Segment message names, where they parse (a refused message);
    for a line that was not JSON, see :func:`text_identifiers`."""
    if not isinstance(raw, dict):
        return text_identifiers(raw, region)
    given = raw.get("traits")
    traits: dict[str, Any] = given if isinstance(given, dict) else {}
    found = loose_identifiers(
        {
            "customer_id": raw.get("userId"),
            "email": traits.get("email"),
            "phone": traits.get("phone"),
        },
        region,
    )
    for name in ("anonymousId", "previousId"):
        found += loose_identifiers({"anonymous_id": raw.get(name)}, region)
    return found


def screen_records(
    store: Store, conn: Connection, kind: str, valid: pa.Table, *, key: str, now: datetime
) -> tuple[pa.Table, dict[int, list[str]]]:
    """The valid records of an import (normalized identifier columns, a position column)
    without those carrying a suppressed identifier, and those refused: position -> kinds that
    matched. Granted consents re-admit their identifiers first (see the module docstring)."""
    columns = [
        c
        for c in IDENTIFIER_FIELDS
        if c in valid.column_names and valid.column(c).null_count < valid.num_rows
    ]
    if not columns:
        return valid, {}
    if kind == "consents":
        granted = valid.filter(pc.fill_null(valid.column("granted"), False))
        times = granted.column("recorded_at").to_pylist()
        readmit(
            store,
            conn,
            (
                ((c, value), times[row])
                for c in columns
                for row, value in enumerate(granted.column(c).to_pylist())
                if value is not None
            ),
            key=key,
            now=now,
        )
    held = barred(
        store,
        conn,
        ((c, v) for c in columns for v in pc.unique(valid.column(c).drop_null()).to_pylist()),
        key=key,
    )
    if not held:
        return valid, {}
    hit: dict[str, pa.Array] = {}
    for c in columns:
        values = [v for k, v in held if k == c]
        if values:
            hit[c] = pc.fill_null(pc.is_in(valid.column(c), pa.array(values, pa.string())), False)
    refused = functools.reduce(pc.or_, hit.values())
    positions = valid.column(POSITION).to_pylist()
    erased: dict[int, list[str]] = {}
    for c, mask in hit.items():
        for row in pc.indices_nonzero(mask).to_pylist():
            erased.setdefault(positions[row], []).append(c)
    return valid.filter(pc.invert(refused)), {p: sorted(k) for p, k in erased.items()}


def screen_rejected(
    store: Store,
    conn: Connection,
    mapped: pa.Table,
    positions: Sequence[int],
    *,
    key: str,
    region: str,
) -> dict[int, list[str]]:
    """Of the records at ``positions`` of a mapped import (refused for another reason, their
    identifiers unchecked), those carrying a suppressed identifier: position -> kinds."""
    columns = [c for c in IDENTIFIER_FIELDS if c in mapped.column_names]
    if not positions or not columns:
        return {}
    at = pc.index_in(pa.array(positions, pa.int64()), mapped.column(POSITION))
    rows = mapped.select(columns).take(at).to_pylist()
    found = erased_kinds(store, conn, [loose_identifiers(row, region) for row in rows], key=key)
    return {pos: kinds for pos, kinds in zip(positions, found, strict=True) if kinds}
