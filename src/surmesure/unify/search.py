"""Finding people by what someone typed: an identifier of any kind, or a person id.

A REF (:func:`surmesure.unify.profile.parse_ref`: ``kind:value`` or a person id) names its
person as ``surmesure person show`` reads it. Any other text is read as each identifier kind
it normalizes as (an e-mail address, a phone number in the store's country, a customer id, a
loyalty card, an anonymous id), and digits also as a person id, so a clerk who pastes a
customer number or a card finds its holder without naming the kind. Several people may
answer (a number that is one person's id and another's loyalty card): each is listed once,
with the kinds that matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import KINDS, normalize
from surmesure.errors import InvalidInput
from surmesure.protect import blind
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import MAX_ID, REF_HINT, parse_ref, root_of

MAX_TEXT = 320
PERSON_ID = "person_id"


@dataclass(frozen=True, slots=True)
class Match:
    """A person found, and the kinds of what was typed that lead to them (``person_id`` for
    the person's own id), in :data:`surmesure.domain.identity.KINDS` order."""

    person_id: int
    via: tuple[str, ...]


def readings(text: str, region: str) -> list[tuple[str, str]]:
    """Each ``(kind, normalized value)`` ``text`` may be, a ``kind:value`` REF read as its
    kind alone; :class:`InvalidInput` (field ``q``) for empty or overlong text."""
    typed = text.strip()
    if not typed:
        raise InvalidInput(
            "Type an identifier to search for.", field="q", hint=f"for instance, {REF_HINT}"
        )
    if len(typed) > MAX_TEXT or "\x00" in typed:
        raise InvalidInput(
            f"The search is longer than {MAX_TEXT} characters or holds a NUL character.",
            field="q",
            hint="type one identifier",
        )
    kind, sep, _ = typed.partition(":")
    if sep and kind.strip().lower() in KINDS:
        parsed = parse_ref(typed, region)
        assert not isinstance(parsed, int)
        return [parsed]
    found: list[tuple[str, str]] = []
    for kind in KINDS:
        if kind == "email" and "@" not in typed:
            continue
        try:
            found.append((kind, normalize(kind, typed, region)))
        except ValueError:
            continue
    return found


def find_people(conn: Connection, text: str) -> list[Match]:
    """Everyone ``text`` names (see the module), by person id."""
    store = Store.of(conn)
    typed = text.strip()
    keys = readings(typed, store.settings.default_country)
    via: dict[int, set[str]] = {}
    if typed.isascii() and typed.isdigit() and int(typed) <= MAX_ID:
        person = root_of(conn, int(typed))
        if person is not None:
            via.setdefault(person, set()).add(PERSON_ID)
    if keys:
        ident = schema.identifiers
        pairs = [(kind, blind.index(store, kind, value)) for kind, value in keys]
        rows = conn.execute(
            sa.select(ident.c.kind, ident.c.node_id).where(
                sa.tuple_(ident.c.kind, ident.c.value).in_(pairs)
            )
        ).all()
        for row in rows:
            person = root_of(conn, int(row.node_id))
            if person is not None:
                via.setdefault(person, set()).add(str(row.kind))
    order = {k: i for i, k in enumerate((PERSON_ID, *KINDS))}
    return [
        Match(person, tuple(sorted(kinds, key=order.__getitem__)))
        for person, kinds in sorted(via.items())
    ]


def search(store: Store, text: str) -> list[Match]:
    """:func:`find_people` in a connection of its own."""
    with store.connect() as conn:
        return find_people(conn, text)
