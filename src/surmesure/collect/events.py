"""Storing Segment messages: attached to a person, idempotent by ``messageId``, traits kept.

:func:`write_events` is the one path every message takes, from the HTTP collector (grouped
commits, see :mod:`surmesure.collect.writer`) and from files (:func:`ingest_file`, JSON Lines
as the SDKs' batch files or a replay of a tracking plan). Inside the caller's transaction it:

1. keeps the first of each ``messageId`` of the batch; a message already stored (an SDK retry)
   is found by the insert itself and counted as a duplicate, never stored twice;
2. resolves the person of each message from its identifiers (``userId`` -> customer id,
   ``anonymousId``, the e-mail and phone of an identify, an alias's ``previousId``): an identify
   or alias that names a known customer merges the device's anonymous person into them, if the
   source is trusted or the ``userId`` verified; otherwise it is a claim
   (:mod:`surmesure.unify.trust`);
3. inserts the events, the traits of each identify as observations with their source,
   time and the source's reliability, and the consent choices a message carries
   (:mod:`surmesure.collect.consents`);
4. counts the new events of each identity node by type and name (:mod:`.counts`);
5. appends one change per new event to the outbox (:mod:`surmesure.dispatch.outbox`), in the
   same transaction: the dispatcher hands them on to the stages after collect (real-time
   segment membership), which collect never imports.

Refused messages go to the quarantine (origin ``api`` or ``import``) with the reason; so do
messages carrying an erased identifier, before anything else happens to them (reason ``erased``,
payload redacted: :mod:`surmesure.protect.suppression`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.collect import bounds, counts, currency, quarantine, sink
from surmesure.collect.consents import write_consents
from surmesure.collect.segment import Accepted, Refusal, validate_messages
from surmesure.config import Settings
from surmesure.dispatch import dispatcher, outbox
from surmesure.errors import InvalidInput
from surmesure.protect import atrest, blind, screening, suppression
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify import trust
from surmesure.unify.resolver import resolve

CHUNK = 20_000
"""Messages per transaction when ingesting a file."""


@dataclass
class Ingested:
    """What storing a set of messages did. ``accepted`` counts new events."""

    received: int = 0
    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0
    new_people: int = 0
    merges: int = 0
    conflicts: int = 0
    claims: int = 0
    traits: int = 0
    consents: int = 0
    segment_changes: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    new_ids: set[str] = field(default_factory=set, repr=False)
    """The ``messageId`` of each new event (not reported)."""
    erased_ids: set[str] = field(default_factory=set, repr=False)
    """The ``messageId`` of each message refused for an erased identifier (not reported)."""
    refusals: list[Refusal] = field(default_factory=list, repr=False)
    """Messages refused while storing (an order in a currency without a rate), quarantined."""

    def add(self, other: Ingested) -> None:
        for name, value in other.to_dict().items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        for reason, count in other.quarantined_by_reason.items():
            self.quarantined_by_reason[reason] = self.quarantined_by_reason.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["new_ids"], out["erased_ids"], out["refusals"]
        return out


def _json(value: Any) -> str | None:
    # text, not orjson's bytes: keeping a batch's thousands of orjson bytes objects until
    # the insert costs twenty times as much as keeping their text (2 µs an event, measured)
    return None if value is None else orjson.dumps(value, default=str).decode()


@dataclass
class _Columns:
    """The events table's columns of a batch, built in one pass over its messages."""

    message_id: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    event: list[str | None] = field(default_factory=list)
    user_id: list[str | None] = field(default_factory=list)
    anonymous_id: list[str | None] = field(default_factory=list)
    occurred_at: list[datetime] = field(default_factory=list)
    properties: list[str | None] = field(default_factory=list)
    context: list[str | None] = field(default_factory=list)
    hidden: list[str | None] = field(default_factory=list)
    """The JSON to seal per message (``None``: nothing sealed)."""


def _columns(
    fresh: Sequence[Accepted], nodes: Sequence[int | None], now: datetime, index_key: bytes
) -> _Columns:
    """Per message its columns, with plain properties and context (JSON) and the JSON of what
    is sealed: the context and an identify's traits (see :mod:`surmesure.protect.atrest`). A
    message attached to nobody has no key to seal under and stays plain. An alias's previous
    id is indexed under ``index_key``."""
    messages = [item.message for item in fresh]
    out = _Columns(
        [m.message_id for m in messages],
        [m.type for m in messages],
        [m.label() for m in messages],
        [m.user_id for m in messages],
        [m.anonymous_id for m in messages],
        [m.occurred_at(now) for m in messages],
    )
    properties, context_of, hidden = out.properties.append, out.context.append, out.hidden.append
    for message, node in zip(messages, nodes, strict=True):
        payload = message.payload(index_key)
        context = message.context
        private = node is not None and message.type == "identify"
        properties(None if private else _json(payload))
        if node is None or not (context or (private and payload)):
            context_of(None if node is not None else _json(context))
            hidden(None)
            continue
        context_of(None)
        hidden(atrest.dumps({"context": context, "properties": payload if private else None}))
    return out


def write_events(
    store: Store,
    conn: Connection,
    messages: Sequence[Accepted],
    *,
    source: str,
    received_at: datetime,
    settings: Settings | None = None,
    origin: str = "api",
    source_name: str | None = None,
    unseen: bool = False,
) -> Ingested:
    """Store valid ``messages`` from ``source`` in the caller's transaction (see the module
    docstring). ``received_at`` is naive UTC; ``settings`` default to the store's;
    ``origin`` and ``source_name`` (default: ``source``) place refused messages in the
    quarantine. With ``unseen``, the events are inserted without looking for those already
    stored (a third of the cost of the insert that skips them): a message stored before makes
    the insert fail, and the caller writes the batch again without ``unseen``."""
    settings = settings or store.settings
    out = Ingested(received=len(messages))
    unique: dict[str, Accepted] = {}
    for item in messages:
        unique.setdefault(item.message.message_id, item)
    if not unique:
        return out
    # first of each messageId; the stored ones are found below
    fresh = _unerased(
        store,
        conn,
        list(unique.values()),
        out,
        origin,
        source_name or source,
        received_at,
        settings.suppression_key,
    )
    fresh = _priced(conn, fresh, out, settings)
    if out.refusals:
        items = quarantine_refusals(
            store,
            conn,
            out.refusals,
            origin=origin,
            source_name=source_name or source,
            now=received_at,
        )
        out.quarantined += len(items)
        for reason, n in quarantine.by_reason(items).items():
            out.quarantined_by_reason[reason] = out.quarantined_by_reason.get(reason, 0) + n
    if not fresh:
        out.duplicate = len(messages) - len(out.erased_ids) - len(out.refusals)
        return out
    trusted = settings.trusts(source)
    # messages naming the same identifiers (a device's calls) are resolved once
    records: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    claims: list[frozenset[tuple[str, str]]] = []
    slot_of: dict[tuple[tuple[tuple[str, str], ...], frozenset[tuple[str, str]]], int] = {}
    slots: list[int] = []
    for item in fresh:
        ids = item.identifiers
        key = (ids, _claimed(item, trusted, settings.identity_secret))
        slot = slot_of.get(key)
        if slot is None:
            slot = slot_of[key] = len(records)
            records.append((f"message {item.message.message_id}", ids))
            claims.append(key[1])
        slots.append(slot)
    resolution = resolve(
        store,
        conn,
        records,
        source=source,
        now=received_at,
        trusted=trusted,
        claimed=None if trusted else claims,
    )
    people = [resolution.people[s] for s in slots]
    nodes = [resolution.nodes[s] for s in slots]
    out.new_people = resolution.new_people
    out.merges = len(resolution.merges)
    out.conflicts = len(resolution.conflicts)
    out.claims = resolution.claims
    cols = _columns(fresh, nodes, received_at, blind.index_key(store))
    occurred = cols.occurred_at
    count = len(fresh)
    rows = pa.table(
        {
            "message_id": pa.array(cols.message_id, pa.string()),
            "type": pa.array(cols.type, pa.string()),
            "event": pa.array(cols.event, pa.string()),
            "person_id": pa.array(people, pa.int64()),
            "node_id": pa.array(nodes, pa.int64()),
            "user_id": blind.index_array(store, blind.USER_ID_KIND, cols.user_id),
            "anonymous_id": blind.index_array(store, blind.ANONYMOUS_ID_KIND, cols.anonymous_id),
            "occurred_at": pa.array(occurred, pa.timestamp("us")),
            "received_at": pa.array([received_at] * count, pa.timestamp("us")),
            "properties": pa.array(cols.properties, pa.string()),
            "context": pa.array(cols.context, pa.string()),
            "source": pa.array([source] * count, pa.string()),
            "sealed": pa.array(
                atrest.seal_texts(conn, nodes, cols.hidden, now=received_at), pa.binary()
            ),
        }
    )
    # one statement inserts what is new and says which: a message sent again (an SDK retry)
    # is a duplicate; resolving its identifiers again changed nothing
    if unseen:
        store.bulk_insert(conn, schema.events, rows, on_conflict="error")
        out.new_ids = set(cols.message_id)
    else:
        out.new_ids = store.insert_new(conn, schema.events, rows, "message_id")
    out.accepted = len(out.new_ids)
    out.duplicate = len(messages) - out.accepted - len(out.erased_ids) - len(out.refusals)
    new = [m in out.new_ids for m in cols.message_id]
    # an identify that only claims identifiers someone holds brings that holder no trait
    with_traits = [
        k for k, item in enumerate(fresh) if item.traits and new[k] and resolution.owned[slots[k]]
    ]
    if with_traits:
        reliability = settings.reliability_of(source)
        out.traits = sink.write_traits(
            store,
            conn,
            record_keys=[
                sink.record_key("identify", fresh[k].message.message_id) for k in with_traits
            ],
            person_ids=[people[k] for k in with_traits],
            node_ids=[nodes[k] for k in with_traits],
            traits=[fresh[k].traits for k in with_traits],
            sources=[source] * len(with_traits),
            observed_at=[occurred[k] for k in with_traits],
            reliabilities=[reliability] * len(with_traits),
        )
    chosen = [k for k, item in enumerate(fresh) if new[k] and item.message.context]
    if chosen:
        out.consents = write_consents(
            conn,
            [fresh[k] for k in chosen],
            [people[k] for k in chosen],
            [nodes[k] for k in chosen],
            [occurred[k] for k in chosen],
            source=source,
            mapping=settings.consent_categories,
        )
        if out.consents:
            chose = {
                p
                for k in chosen
                if (p := people[k]) is not None and "consent" in (fresh[k].message.context or {})
            }
            outbox.append(store, conn, outbox.CONSENT, sorted(chose), at=received_at)
    stored = [k for k in range(count) if new[k] and people[k] is not None]
    counts.add(
        store,
        conn,
        [node for k in stored if (node := nodes[k]) is not None],  # a person's event has one
        [who for k in stored if (who := people[k]) is not None],
        [cols.type[k] for k in stored],
        [cols.event[k] for k in stored],
        [occurred[k] for k in stored],
    )
    outbox.append(
        store,
        conn,
        outbox.EVENT,
        [people[k] for k in stored],
        at=received_at,
        details=[cols.type[k] for k in stored],
        refs=[cols.message_id[k] for k in stored],
        names=[cols.event[k] for k in stored],
    )
    return out


_NONE: frozenset[tuple[str, str]] = frozenset()


def _claimed(item: Accepted, trusted: bool, secret: str | None) -> frozenset[tuple[str, str]]:
    """The identifiers ``item`` only claims (:func:`surmesure.unify.trust.claimed`); cheap for
    the usual message that names its device alone."""
    ids = item.identifiers
    if trusted or (len(ids) == 1 and ids[0][0] in trust.OWN_KINDS):
        return _NONE
    if all(kind in trust.OWN_KINDS for kind, _ in ids):
        return _NONE
    message = item.message
    vouched = trust.verified(item.identifiers, secret, message.context, message.integrations)
    return trust.claimed(item.identifiers, trusted=False, vouched=vouched | item.vouched)


def _unerased(
    store: Store,
    conn: Connection,
    fresh: list[Accepted],
    out: Ingested,
    origin: str,
    source_name: str,
    now: datetime,
    key: str,
) -> list[Accepted]:
    """``fresh`` without the messages carrying an erased identifier, which are quarantined.
    One already quarantined as erased (the same ``messageId`` sent again) is left out, so the
    caller counts it a duplicate, as it would a stored message: answered otherwise, sending a
    message twice would tell the public write key which addresses were erased."""
    kept, erased = suppression.screen(store, conn, fresh, lambda m: m.identifiers, key=key)
    if erased:
        q = schema.quarantine
        places = {f"messageId {m.message.message_id}": (m, k) for m, k in erased}
        seen = set(
            conn.execute(
                sa.select(q.c.location).where(
                    q.c.reason == suppression.REASON,
                    q.c.kind == "events",
                    q.c.location.in_(list(places)),
                )
            ).scalars()
        )
        erased = [found for place, found in places.items() if place not in seen]
    if erased:
        items = [screening.refused_item(f"messageId {m.message.message_id}", k) for m, k in erased]
        quarantine.add(
            store,
            conn,
            items,
            run_id=None,
            origin=origin,
            kind="events",
            source_name=source_name,
            now=now,
        )
        out.erased_ids = {m.message.message_id for m, _ in erased}
        out.quarantined += len(erased)
        out.quarantined_by_reason[suppression.REASON] = len(erased)
    return kept


def _priced(
    conn: Connection, fresh: list[Accepted], out: Ingested, settings: Settings
) -> list[Accepted]:
    """``fresh`` without the orders in a currency no rate of the settings converts into the
    store's (:func:`surmesure.collect.currency.unconverted`), each added to ``out.refusals``."""
    refused = currency.unconverted(conn, [item.message for item in fresh], settings.rates)
    if not refused:
        return fresh
    for item in fresh:
        found = refused.get(item.message.message_id)
        if found is not None:
            payload = item.message.model_dump(mode="json", by_alias=True, exclude_none=True)
            out.refusals.append(
                Refusal(
                    item.index, item.message.message_id, CURRENCY_FIELD, found[0], found[1], payload
                )
            )
    return [item for item in fresh if item.message.message_id not in refused]


CURRENCY_FIELD = "properties.currency"


def quarantine_refusals(
    store: Store,
    conn: Connection,
    refusals: Sequence[Refusal],
    *,
    origin: str,
    source_name: str,
    now: datetime,
    locations: Sequence[str] | None = None,
) -> list[quarantine.Item]:
    """Keep refused messages in the quarantine with their reason (``erased``, redacted, for one
    naming an erased identifier); returns the items kept. A refusal is located by its
    ``messageId`` unless ``locations`` (one per refusal) says."""
    where = locations or [f"messageId {r.message_id or '?'}" for r in refusals]
    settings = store.settings
    named = [screening.message_identifiers(r.payload, settings.default_country) for r in refusals]
    erased = suppression.erased_kinds(store, conn, named, key=settings.suppression_key)
    items = [
        screening.refused_item(place, kinds)
        if kinds
        else quarantine.Item(
            place,
            r.field,
            r.value,
            r.reason,
            r.payload if isinstance(r.payload, dict) else {quarantine.MALFORMED: r.payload},
        )
        for r, place, kinds in zip(refusals, where, erased, strict=True)
    ]
    quarantine.add(
        store,
        conn,
        items,
        run_id=None,
        origin=origin,
        kind="events",
        source_name=source_name,
        now=now,
    )
    return items


# -- files ------------------------------------------------------------------------------------


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded JSON or the raw text when it is not JSON) of a JSON Lines file."""
    import gzip

    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, bounds.loads(line)
            except orjson.JSONDecodeError:
                yield number, line.decode("utf-8", "replace").rstrip("\n")


def _chunks(path: Path, size: int) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for item in _lines(path):
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def ingest_file(
    store: Store,
    path: Path,
    *,
    source: str = "web",
    on_progress: Callable[[int, int], None] | None = None,
    chunk: int = CHUNK,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Store the Segment messages of a JSON Lines file (one message a line, ``.gz`` too),
    ``chunk`` messages a transaction, under the identity rules of ``source`` like messages
    collected over HTTP. Returns :class:`Ingested` as a dict with ``seconds``.
    ``on_progress(lines done, lines total)``."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file.", hint="give the path of a JSON Lines file")
    from surmesure.collect.importer import utcnow

    clock = time.perf_counter()
    total = sum(1 for _ in _lines(path))
    settings = settings or store.settings
    region = settings.default_country
    origin = str(path.resolve())
    out = Ingested()
    done = 0
    # a file of many more messages than a table holds: its secondary indexes are made once
    # at the end, not rewritten at each checkpoint (Store.deferred_indexes)
    with store.deferred_indexes(total) if total > chunk else contextlib.nullcontext():
        for batch in _chunks(path, chunk):
            numbers = [n for n, _ in batch]
            accepted, refused = validate_messages(
                (raw for _, raw in batch), region=region, prefix=""
            )
            now = utcnow()
            with store.begin() as conn:
                part = write_events(
                    store,
                    conn,
                    accepted,
                    source=source,
                    received_at=now,
                    settings=settings,
                    origin="import",
                    source_name=origin,
                )
                items = quarantine_refusals(
                    store,
                    conn,
                    refused,
                    origin="import",
                    source_name=origin,
                    now=now,
                    locations=[f"line {numbers[r.index]}" for r in refused],
                )
            part.received += len(refused)
            part.add(
                Ingested(quarantined=len(items), quarantined_by_reason=quarantine.by_reason(items))
            )
            out.add(part)
            store.settle_bulk()
            done += len(batch)
            if on_progress is not None:
                on_progress(done, total)
    # the changes of this file reach the later stages before the command answers
    out.segment_changes = dispatcher.settle(store, settings).get("segment_membership", 0)
    result = out.to_dict()
    result["seconds"] = round(time.perf_counter() - clock, 3)
    return result
