"""Which rows of the store are about a person, read from each table's ``info["personal"]`` tag.

- a column name (``"person_id"``) or a comma list of node columns (``"survivor_id,absorbed_id"``):
  rows where one of those columns, or ``node_id`` when the table has it, holds a node of the
  person;
- ``"via:<parent>"``: rows whose parent row (joined on the parent's primary key) is the person's;
- ``"payload"``: rows whose JSON ``payload`` holds one of the person's identifier values, compared
  after normalization (a quarantined record keeps the file's own column names and raw values;
  its payload is sealed, and opened in batches to be searched);
- ``None``: no personal data.

A table added with one of these tags is exported and erased with no change here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any

import orjson
import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import normalize_email, normalize_phone
from surmesure.protect import quarantined
from surmesure.store import schema
from surmesure.unify.profile import Identifier, decode_json

PAYLOAD = "payload"
VIA = "via:"

#: Keys under which an outside format (Segment messages) carries each plain identifier.
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer_id", "userid", "user_id", "customerid"),
    "loyalty_card": ("loyalty_card", "loyaltycard"),
    "anonymous_id": ("anonymous_id", "anonymousid"),
}
PLAIN_KINDS = tuple(KEY_ALIASES)
_TOKEN = re.compile(r"[^\s,;|\t\"']+")
_PHONE_LIKE = re.compile(r"[+0-9 ().\-/]+")


def tag_of(table: sa.Table) -> str | None:
    tag = table.info.get("personal")
    return str(tag) if tag else None


def person_clause(table: sa.Table, nodes: Iterable[int]) -> sa.ColumnElement[bool] | None:
    """The rows of ``table`` about the person whose nodes are ``nodes``; ``None`` for a table
    reached through payloads (see :class:`PayloadMatcher`) or holding no personal data."""
    tag = tag_of(table)
    ids = sorted(set(nodes))
    if tag is None or tag == PAYLOAD:
        return None
    if tag.startswith(VIA):
        parent = schema.metadata.tables[tag.removeprefix(VIA)]
        inner = person_clause(parent, ids)
        if inner is None:
            return None
        keys = [c.name for c in parent.primary_key.columns]
        return sa.exists().where(*(parent.c[k] == table.c[k] for k in keys), inner)
    columns = [c.strip() for c in tag.split(",")]
    if "node_id" in table.c and "node_id" not in columns:
        columns.append("node_id")
    return sa.or_(*(table.c[c].in_(ids) for c in columns))


def via_parent(table: sa.Table) -> sa.Table | None:
    tag = tag_of(table)
    if tag is None or not tag.startswith(VIA):
        return None
    return schema.metadata.tables[tag.removeprefix(VIA)]


def ordered_for_erasure() -> list[sa.Table]:
    """Personal tables, children (``via:``) before the parents their rows are found through."""
    tables = schema.personal_tables()
    return [t for t in tables if via_parent(t) is not None] + [
        t for t in tables if via_parent(t) is None
    ]


# -- payloads --------------------------------------------------------------------------------------


class PayloadMatcher:
    """Finds a person's identifiers among the values of free-form payloads.

    E-mail addresses and phone numbers are recognised under any key (they identify on their
    own); customer ids, cards and anonymous ids only under the key their file maps to that
    identifier (or its usual name), so an order quantity of 12 never matches customer "12".
    An unreadable row kept as one raw line is searched token by token."""

    def __init__(self, identifiers: Iterable[Identifier], region: str) -> None:
        self.region = region
        self.values: dict[str, set[str]] = {}
        for kind, value in identifiers:
            self.values.setdefault(kind, set()).add(value)
        self._national = {
            str(phonenumbers.parse(p).national_number) for p in self.values.get("phone", ())
        }

    def __bool__(self) -> bool:
        return bool(self.values)

    def matches(self, payload: Any, columns: dict[str, str] | None = None) -> bool:
        """Whether ``payload`` holds one of the identifiers; ``columns`` is the file's mapping
        (canonical field -> file column)."""
        keys = {
            kind: {a.lower() for a in (*aliases, (columns or {}).get(kind, kind))}
            for kind, aliases in KEY_ALIASES.items()
        }
        for key, value in _leaves(decode_json(payload)):
            text = str(value).strip()
            if key == "_malformed":
                if any(self._any_kind(token, loose=True) for token in _TOKEN.findall(text)):
                    return True
                continue
            if self._distinctive(text):
                return True
            for kind in PLAIN_KINDS:
                if key.lower() in keys[kind] and self._plain(kind, text):
                    return True
        return False

    def _any_kind(self, text: str, *, loose: bool) -> bool:
        return self._distinctive(text) or (loose and any(self._plain(k, text) for k in PLAIN_KINDS))

    def _plain(self, kind: str, text: str) -> bool:
        held = self.values.get(kind)
        if not held:
            return False
        if text in held:
            return True
        # a numeric id read as a float ("13085.0") is the id "13085"
        return text.endswith(".0") and text[:-2].isdigit() and text[:-2] in held

    def _distinctive(self, text: str) -> bool:
        if "email" in self.values and "@" in text:
            try:
                if normalize_email(text) in self.values["email"]:
                    return True
            except ValueError:
                pass
        if self._national:
            digits = "".join(ch for ch in text if ch.isdigit())
            if digits and any(digits.endswith(n) for n in self._national):
                try:
                    return normalize_phone(text, self.region) in self.values["phone"]
                except ValueError:
                    return False
        return False


def payload_tokens(payload: Any, region: str) -> set[str]:
    """Every value of ``payload`` that :class:`PayloadMatcher` could match an identifier to,
    in each form it compares (as is, a numeric id read as a float without its ``.0``, an
    e-mail address and a phone number normalized): a value under any key, and each token of a
    raw line, so it holds more than the matcher accepts, never less."""
    tokens: set[str] = set()
    for key, value in _leaves(decode_json(payload)):
        text = str(value).strip()
        for part in _TOKEN.findall(text) if key == "_malformed" else [text]:
            _forms(part, region, tokens)
    return tokens


def _forms(text: str, region: str, out: set[str]) -> None:
    if not text:
        return
    out.add(text)
    if text.endswith(".0") and text[:-2].isdigit():
        out.add(text[:-2])
    if "@" in text:
        with suppress(ValueError):
            out.add(normalize_email(text))
    elif _PHONE_LIKE.fullmatch(text) and sum(ch.isdigit() for ch in text) >= 6:
        with suppress(ValueError):
            out.add(normalize_phone(text, region))


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, str(k))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item, key)
    elif value is not None and not isinstance(value, bool):
        yield key, value


def payload_matches(
    conn: Connection, table: sa.Table, identifiers: Sequence[Identifier], region: str
) -> list[dict[str, Any]]:
    """Primary keys of the rows of a ``"payload"`` table that hold one of ``identifiers``
    (a person's, normalized values)."""
    matcher = PayloadMatcher(identifiers, region)
    if not matcher:
        return []
    keys = [c.name for c in table.primary_key.columns]
    has_run = "run_id" in table.c
    mappings: dict[int, dict[str, str]] = {}
    if has_run:
        runs = schema.import_runs
        for run_id, mapping in conn.execute(sa.select(runs.c.run_id, runs.c.mapping)):
            document = decode_json(mapping) or {}
            mappings[int(run_id)] = dict(document.get("columns") or {})
    extra = [table.c.run_id] if has_run else []
    found: list[dict[str, Any]] = []
    columns = [*(table.c[k] for k in keys), *extra]
    for data in _payload_rows(conn, table, columns, [v for _, v in identifiers]):
        run_id = data["run_id"] if has_run else None
        payload = data.get(PAYLOAD)
        if isinstance(payload, bytes):
            payload = orjson.loads(payload)
        if payload is None:
            continue
        if matcher.matches(payload, mappings.get(int(run_id)) if run_id is not None else None):
            found.append({k: data[k] for k in keys})
    return found


def _payload_rows(
    conn: Connection, table: sa.Table, columns: list[sa.Column[Any]], values: list[str]
) -> Iterator[dict[str, Any]]:
    """Each row of ``table`` with ``columns`` and its payload that may hold one of ``values``:
    of the quarantine, only the records marked with one of them, opened in batches
    (:mod:`surmesure.protect.quarantined`)."""
    if table is schema.quarantine:
        marked = quarantined.marked(conn, values)
        for start in range(0, len(marked), quarantined.BATCH):
            chunk = marked[start : start + quarantined.BATCH]
            where = schema.quarantine.c.quarantine_id.in_(chunk)
            for batch in quarantined.batches(conn, where, columns=columns):
                yield from batch
        return
    for row in conn.execute(sa.select(*columns, table.c[PAYLOAD])):
        yield {str(k): v for k, v in row._mapping.items()}


def key_clause(table: sa.Table, keys: list[dict[str, Any]]) -> sa.ColumnElement[bool]:
    """Rows of ``table`` with one of these primary keys."""
    names = [c.name for c in table.primary_key.columns]
    if len(names) == 1:
        return table.c[names[0]].in_([k[names[0]] for k in keys])
    return sa.or_(*(sa.and_(*(table.c[n] == k[n] for n in names)) for k in keys))
