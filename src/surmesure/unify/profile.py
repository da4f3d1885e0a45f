"""One person, named and shown: identifiers, resolved traits, merge history, activity, consent.

A person is named by a ``REF``: a person id (digits; an absorbed node id names the person it was
merged into) or ``kind:value`` with an identifier kind (``email:marie@example.com``), the value
normalized as collection normalizes it. A person is the root of a tree of identity nodes (the
``people`` rows whose ``merged_into`` chain leads to it); rows anywhere in the store belong to it
when their person or node column holds one of those nodes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import KINDS, normalize
from surmesure.domain.traits import (
    DEFAULT_MIN_RELIABILITY,
    Observation,
    ResolvedTrait,
    reliable_until,
    resolve,
)
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import atrest, blind, consent, marketing
from surmesure.store import schema
from surmesure.store.engine import Store

Identifier = tuple[str, str]
MAX_ID = 2**63 - 1
"""The largest id a store keeps (64-bit integers)."""

REF_HINT = (
    "name a person by id (e.g. 42) or by identifier as kind:value, "
    f"kind one of {', '.join(KINDS)} (e.g. email:marie@example.com)"
)


@dataclass(frozen=True)
class Person:
    """A person (the root node), every node of its tree (root first) and its identifiers as
    stored: ``(kind, blind index)`` each, with the node and sealed value of each in
    ``sealed`` (:func:`identifier_values` opens them)."""

    person_id: int
    nodes: tuple[int, ...]
    indexes: tuple[Identifier, ...]
    sealed: tuple[tuple[int, bytes | None], ...] = ()


def identifier_values(store: Store, conn: Connection, person: Person) -> list[Identifier]:
    """The person's identifiers, ``(kind, value)``, opened in one batch (none once erased)."""
    opened = blind.ring(store).open_many(
        conn, [n for n, _ in person.sealed], [s for _, s in person.sealed]
    )
    return [
        (kind, value)
        for (kind, _), value in zip(person.indexes, opened, strict=True)
        if value is not None
    ]


def parse_ref(ref: str, region: str) -> int | Identifier:
    """A person id, or a ``(kind, value)`` normalized (a phone number without its country
    code in ``region``); :class:`InvalidInput` when neither."""
    text = ref.strip()
    if "\x00" in text:
        raise InvalidInput(f"{ref!r} contains a NUL character.", hint=REF_HINT, field="REF")
    if text.isascii() and text.isdigit():
        if int(text) > MAX_ID:
            raise InvalidInput(
                f"{text} is beyond any person id (ids are below 2**63).", hint=REF_HINT, field="REF"
            )
        return int(text)
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise InvalidInput(f"{ref!r} does not name a person.", hint=REF_HINT, field="REF")
    try:
        return kind, normalize(kind, value, region)
    except ValueError as exc:
        raise InvalidInput(f"{ref!r}: {exc}.", hint=REF_HINT, field="REF") from exc


def root_of(conn: Connection, node: int) -> int | None:
    """The person a node belongs to now (following ``merged_into``); ``None`` if no such node."""
    people = schema.people
    seen: list[int] = []
    current = node
    while current not in seen:
        row = conn.execute(
            sa.select(people.c.merged_into).where(people.c.person_id == current)
        ).first()
        if row is None:  # a dangling link: the last node that exists stands for the person
            return seen[-1] if seen else None
        seen.append(current)
        if row[0] is None:
            return current
        current = int(row[0])
    return current


def subtree(conn: Connection, root: int, *, stop: int | None = None) -> list[int]:
    """``root`` and every node whose ``merged_into`` chain reaches it (not through ``stop``),
    root first then by id."""
    people = schema.people
    found = {root}
    frontier = [root]
    while frontier:
        children = [
            int(r[0])
            for r in conn.execute(
                sa.select(people.c.person_id).where(people.c.merged_into.in_(frontier))
            )
        ]
        frontier = [c for c in children if c not in found and c != stop]
        found.update(frontier)
    return [root, *sorted(found - {root})]


def existing_root(conn: Connection, node: int, hint: str) -> int:
    """:func:`root_of` ``node``; :class:`NotFound` on ``person_id``, with ``hint``, when there
    is no such node (never was, or erased)."""
    root = root_of(conn, node)
    if root is None:
        raise NotFound(f"There is no person {node}.", hint=hint, field="person_id")
    return root


def find_person(conn: Connection, ref: str) -> Person:
    """The person ``ref`` names; :class:`NotFound` with a hint when nobody is known by it."""
    store = Store.of(conn)
    parsed = parse_ref(ref, store.settings.default_country)
    ident = schema.identifiers
    if isinstance(parsed, int):
        person = root_of(conn, parsed)
        missing = f"There is no person {parsed}."
    else:
        row = conn.execute(
            sa.select(ident.c.node_id).where(
                ident.c.kind == parsed[0], ident.c.value == blind.index(store, *parsed)
            )
        ).first()
        person = None if row is None else root_of(conn, int(row[0]))
        missing = f"Nobody is known by {parsed[0]} {parsed[1]!r}."
    if person is None:
        raise NotFound(
            missing,
            hint="check the REF; `surmesure status` counts people, " + REF_HINT,
            field="REF",
        )
    nodes = subtree(conn, person)
    held = conn.execute(
        sa.select(ident.c.kind, ident.c.value, ident.c.node_id, ident.c.sealed)
        .where(sa.or_(ident.c.person_id.in_(nodes), ident.c.node_id.in_(nodes)))
        .order_by(ident.c.kind, ident.c.value)
    ).fetchall()
    return Person(
        person,
        tuple(nodes),
        tuple((str(r.kind), str(r.value)) for r in held),
        tuple((int(r.node_id), None if r.sealed is None else bytes(r.sealed)) for r in held),
    )


def decode_json(value: Any) -> Any:
    """A JSON column's value as read through SQLAlchemy: already decoded (a trait ``"Anna"``
    is the string ``Anna``), except for raw bytes some drivers hand back."""
    return orjson.loads(value) if isinstance(value, bytes) else value


# -- the profile -----------------------------------------------------------------------------------


@dataclass
class Profile:
    """What ``surmesure person show`` prints. Times are naive UTC."""

    person_id: int
    nodes: list[int]
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    traits: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    consents: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    """Identifiers this person claimed through a low-trust source, held by someone else."""
    claims_on: list[dict[str, Any]] = field(default_factory=list)
    """Pending claims others made on identifiers this person holds."""
    preferences: dict[str, Any] = field(default_factory=dict)
    """Topics, frequency and pause in force, and their history (see protect.marketing)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def show(store: Store, ref: str, *, now: datetime | None = None) -> Profile:
    """The profile of the person ``ref`` names, traits resolved at ``now`` (default: now)."""
    settings = store.settings
    at = now or datetime.now(UTC).replace(tzinfo=None)
    with store.connect() as conn:
        person = find_person(conn, ref)
        profile = Profile(person.person_id, list(person.nodes))
        profile.identifiers = _identifiers(store, conn, person)
        profile.traits = _traits(conn, person, at, settings.trait_half_life_days)
        profile.merges = merge_history(conn, person.nodes, store)
        profile.counts = _counts(conn, person)
        profile.consents = _consents(conn, person, at)
        profile.claims, profile.claims_on = claims_of(conn, person, store)
        profile.preferences = marketing.preferences_of(
            conn, person.person_id, at, settings.preference_topics
        )
    return profile


def _rows(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(query)]


def _identifiers(store: Store, conn: Connection, person: Person) -> list[dict[str, Any]]:
    ident = schema.identifiers
    rows = _rows(
        conn,
        sa.select(
            ident.c.kind,
            ident.c.sealed,
            ident.c.node_id,
            ident.c.source,
            ident.c.first_seen_at,
            sa.func.coalesce(ident.c.claimed, False).label("claimed"),
        ).where(ident.c.person_id == person.person_id),
    )
    _open_into(store, conn, rows, "node_id")
    return sorted(rows, key=lambda r: (r["kind"], r["value"] or ""))


def _open_into(store: Store, conn: Connection, rows: list[dict[str, Any]], under: str) -> None:
    """Each row's ``sealed`` opened (one batch, under the node its column ``under`` names) into
    ``value``, first after ``kind``."""
    opened = blind.ring(store).open_many(
        conn,
        [int(r[under]) for r in rows],
        [None if r["sealed"] is None else bytes(r["sealed"]) for r in rows],
    )
    for position, (row, value) in enumerate(zip(rows, opened, strict=True)):
        rest = {k: v for k, v in row.items() if k not in ("kind", "value", "sealed")}
        rows[position] = {"kind": row["kind"], "value": value, **rest}


def resolved_traits(
    conn: Connection, person_id: int, now: datetime, half_life_days: float
) -> dict[str, ResolvedTrait]:
    """The person's traits as known at ``now`` (observations after it are not seen), each
    resolved by effective reliability (:func:`surmesure.domain.traits.resolve`)."""
    t = schema.traits
    rows = conn.execute(
        sa.select(
            t.c.name, t.c.value, t.c.source, t.c.observed_at, t.c.reliability, t.c.node_id,
            t.c.sealed,
        ).where(t.c.person_id == person_id, t.c.observed_at <= now)
    ).all()  # fmt: skip
    sealed = [r for r in rows if r.sealed is not None]
    opened = atrest.open_json(conn, [r.node_id for r in sealed], [r.sealed for r in sealed])
    values = dict(zip((id(r) for r in sealed), opened, strict=True))
    observations = [
        Observation(
            r.name,
            values[id(r)] if r.sealed is not None else decode_json(r.value),
            r.source,
            r.observed_at,
            float(r.reliability),
        )
        for r in rows
        if r.sealed is None or values[id(r)] is not None
    ]
    return resolve(observations, now, half_life_days)


def _traits(
    conn: Connection, person: Person, now: datetime, half_life: float
) -> list[dict[str, Any]]:
    resolved = resolved_traits(conn, person.person_id, now, half_life)
    return [
        {
            "name": name,
            "value": trait.value,
            "source": trait.source,
            "reliability": trait.reliability,
            "effective_reliability": trait.effective_reliability,
            "observed_at": trait.observed_at,
            # when templates stop using it at their default threshold
            "usable_until": reliable_until(
                trait.reliability, trait.observed_at, half_life, DEFAULT_MIN_RELIABILITY
            ),
            "competing": [
                {
                    "value": obs.value,
                    "source": obs.source,
                    "observed_at": obs.observed_at,
                    "effective_reliability": score,
                }
                for obs, score in trait.competing
            ],
        }
        for name, trait in sorted(resolved.items())
    ]


def merge_history(
    conn: Connection, nodes: tuple[int, ...] | list[int], store: Store | None = None
) -> list[dict[str, Any]]:
    """Every merge touching one of ``nodes``, oldest first, evidence decoded; with ``store``,
    the identifiers it names (kind and blind index) shown with their value where someone
    still holds them."""
    m = schema.merges
    rows = _rows(
        conn,
        sa.select(m)
        .where(sa.or_(m.c.survivor_id.in_(nodes), m.c.absorbed_id.in_(nodes)))
        .order_by(m.c.merge_id),
    )
    for row in rows:
        row["evidence"] = decode_json(row["evidence"])
    if store is not None:
        named = [
            i
            for row in rows
            for i in [
                (row["evidence"] or {}).get("via"),
                *(row["evidence"] or {}).get("identifiers", []),
            ]
            if isinstance(i, dict) and "index" in i
        ]
        values = blind.open_values(store, conn, [(str(i["kind"]), str(i["index"])) for i in named])
        for i in named:
            i["value"] = values.get((str(i["kind"]), str(i["index"])))
    return rows


def _counts(conn: Connection, person: Person) -> dict[str, int]:
    o = schema.orders
    counts: dict[str, int] = {}
    for label, is_return in (("orders", False), ("returns", True)):
        counts[label] = int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(o)
                .where(o.c.person_id == person.person_id, o.c.is_return == is_return)
            ).scalar_one()
        )
    for table in (schema.events, schema.survey_answers, schema.channel_activity):
        counts[str(table.name)] = int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.person_id == person.person_id)
            ).scalar_one()
        )
    return counts


def _consents(conn: Connection, person: Person, now: datetime) -> list[dict[str, Any]]:
    """The consent in force at ``now`` per (purpose, channel) the person has records for, by
    the rule of :mod:`surmesure.protect.consent` (a later ``any`` record is in force on each
    channel)."""
    c = schema.consents
    rows = _rows(
        conn,
        sa.select(
            c.c.consent_id,
            c.c.purpose,
            c.c.channel,
            c.c.granted,
            c.c.recorded_at,
            c.c.source,
            c.c.evidence,
        ).where(c.c.person_id == person.person_id),
    )
    by_id = {str(r["consent_id"]): r for r in rows}
    records = [
        consent.Record(
            str(r["purpose"]),
            str(r["channel"]),
            bool(r["granted"]),
            r["recorded_at"],
            str(r["consent_id"]),
        )
        for r in rows
    ]
    out = []
    for purpose, channel in sorted({(r.purpose, r.channel) for r in records}):
        found = consent.in_force(records, purpose, channel, now)
        if found is not None:
            row = {k: v for k, v in by_id[found.consent_id].items() if k != "consent_id"}
            out.append({**row, "channel": channel, "granted": found.granted})
    return out


def claims_of(
    conn: Connection, person: Person, store: Store | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(claims the person made, pending claims others made on the person's identifiers), each
    with its status and the reason it was or was not merged (``evidence.reason``), oldest
    first; a confirmed claim names the merge that confirmed it. With ``store``, each claimed
    identifier's ``value`` is opened (else it is its blind index)."""
    c = schema.identity_claims
    columns = (
        c.c.kind,
        c.c.value,
        c.c.node_id,
        c.c.person_id,
        c.c.holder_id,
        c.c.source,
        c.c.claimed_at,
        c.c.status,
        c.c.confirmed_at,
        c.c.merge_id,
        c.c.evidence,
        c.c.sealed,
    )
    made = _rows(
        conn,
        sa.select(*columns)
        .where(c.c.person_id == person.person_id)
        .order_by(c.c.claimed_at, c.c.kind, c.c.value),
    )
    held = list(person.indexes)
    on: list[dict[str, Any]] = []
    if held:
        on = _rows(
            conn,
            sa.select(*columns)
            .where(
                sa.tuple_(c.c.kind, c.c.value).in_(held),
                c.c.person_id != person.person_id,
                c.c.status == "pending",
            )
            .order_by(c.c.claimed_at, c.c.kind, c.c.value),
        )
    if store is not None:
        for rows in (made, on):
            _open_into(store, conn, rows, "holder_id")
    for row in (*made, *on):
        row.pop("sealed", None)
        row["evidence"] = decode_json(row["evidence"])
        row["reason"] = (row["evidence"] or {}).get("reason")
        if row["status"] == "confirmed":
            by = f" (merge {row['merge_id']})" if row["merge_id"] is not None else ""
            row["reason"] = f"confirmed: trusted evidence put it in this person{by}"
    return made, on
