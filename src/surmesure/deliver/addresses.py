"""Addresses that cannot be reached, one address at a time (table ``address_flags``).

- E-mail: a hard bounce flags the address the message went to (the DSN's ``Final-Recipient``,
  else the person's most recent address): that address gets no other message, but the
  person's other addresses and other channels stay open. The flag's key is the address's blind
  index, the very ``identifiers.value`` of that e-mail, so a person is ``bounced`` on e-mail
  only when every e-mail address they hold is flagged, and the sender picks their most recent
  address that is not.
- Postal: a letter returned undeliverable flags the person's postal address as it was then. A
  postal address observed later (a move: any of ``street``, ``postcode``, ``city`` observed
  after the flag) lifts it; until then, paper skips the person (``undeliverable_address``).

Each guard is one ``SELECT person_id`` over everyone (``scope``: only these people), read at
planning and again at send time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.campaigns import POSTAL_TRAITS
from surmesure.domain.identity import normalize_email
from surmesure.protect import blind
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.store.engine import Store

BOUNCED = "bounced"
UNDELIVERABLE = "undeliverable"
UNDELIVERABLE_ADDRESS = "undeliverable_address"
"""Why paper skips a person whose postal address came back."""


def email_index(store: Store, address: str) -> str | None:
    """The blind index of an e-mail address as ``store``'s identifiers hold it; ``None`` when
    it does not read as an e-mail address."""
    try:
        value = normalize_email(address)
    except ValueError:
        return None
    return blind.index(store, "email", value)


def _flag(
    conn: Connection,
    kind: str,
    address: str,
    person_id: int | None,
    node_id: int | None,
    status: str,
    reason: str | None,
    source: str,
    now: datetime,
) -> None:
    f = schema.address_flags
    conn.execute(f.delete().where(f.c.kind == kind, f.c.address == address))
    conn.execute(
        f.insert().values(
            kind=kind,
            address=address,
            person_id=person_id,
            node_id=node_id,
            status=status,
            reason=(reason or "")[:200] or None,
            source=source,
            recorded_at=now,
        )
    )


def flag_bounce(
    conn: Connection,
    message_id: str,
    recipient: str | None,
    reason: str | None,
    now: datetime,
    source: str = "dsn",
) -> bool:
    """Flag the e-mail address a bounced message went to (see the module); ``False`` when
    neither the recipient nor the message's person names an address we hold."""
    ident, m = schema.identifiers, schema.messages
    index = email_index(Store.of(conn), recipient) if recipient else None
    if index is not None:
        row = conn.execute(
            sa.select(ident.c.person_id, ident.c.node_id).where(
                ident.c.kind == "email", ident.c.value == index
            )
        ).first()
        if row is not None:
            _flag(conn, "email", index, int(row[0]), int(row[1]), BOUNCED, reason, source, now)
            return True
    person = conn.execute(
        sa.select(m.c.person_id).where(m.c.message_id == message_id)
    ).scalar_one_or_none()
    if person is None:
        return False
    row = conn.execute(
        sa.select(ident.c.value, ident.c.node_id)
        .where(ident.c.kind == "email", ident.c.person_id == person)
        .where(ident.c.value.not_in(_flagged("email")))
        .order_by(ident.c.first_seen_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return False
    _flag(conn, "email", str(row[0]), int(person), int(row[1]), BOUNCED, reason, source, now)
    return True


def flag_postal(
    conn: Connection,
    person_id: int,
    node_id: int,
    block: str,
    reason: str | None,
    source: str,
    now: datetime,
) -> None:
    """Flag the person's postal address ``block`` (as printed) undeliverable."""
    key = blind.index(Store.of(conn), "postal", " ".join(block.split()).casefold())
    _flag(conn, "postal", key, person_id, node_id, UNDELIVERABLE, reason, source, now)


def _flagged(kind: str) -> sa.Select[Any]:
    f = schema.address_flags
    return sa.select(f.c.address).where(f.c.kind == kind)


def usable_email(column: Any) -> Any:
    """A condition on an ``identifiers.value`` column: the address is not flagged."""
    return column.not_in(_flagged("email"))


def bounced_people(scope: Sequence[int] | None = None) -> sa.Select[Any]:
    """``SELECT person_id`` of the persons who hold e-mail addresses, every one flagged.
    Driven by the flags (few), so that planning a million people reads no more than that."""
    ident, f = schema.identifiers, schema.address_flags
    other = ident.alias("other")
    still_open = (
        sa.select(other.c.person_id)
        .where(
            other.c.person_id == ident.c.person_id,
            other.c.kind == "email",
            usable_email(other.c.value),
        )
        .exists()
    )
    query = (
        sa.select(ident.c.person_id)
        .select_from(ident.join(f, sa.and_(f.c.kind == "email", f.c.address == ident.c.value)))
        .where(ident.c.kind == "email", ~still_open)
        .distinct()
    )
    if scope is not None:
        query = query.where(among_ids(ident.c.person_id, scope))
    return query


def undeliverable_people(scope: Sequence[int] | None = None) -> sa.Select[Any]:
    """``SELECT person_id`` of the persons whose postal address was returned and who have
    not been seen at another address since."""
    f, t = schema.address_flags, schema.traits
    moved = (
        sa.select(t.c.person_id)
        .where(
            t.c.person_id == f.c.person_id,
            t.c.name.in_(POSTAL_TRAITS),
            t.c.observed_at > f.c.recorded_at,
        )
        .exists()
    )
    query = (
        sa.select(f.c.person_id)
        .where(f.c.kind == "postal", f.c.person_id.is_not(None), ~moved)
        .distinct()
    )
    if scope is not None:
        query = query.where(among_ids(f.c.person_id, scope))
    return query
