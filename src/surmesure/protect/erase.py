"""Erasure of a person (the right to be forgotten), in one transaction.

Every row of every personal table that belongs to a node of the person is deleted: its people
nodes, identifiers, traits, events, answers, activity, consents, the merges and merge blocks
touching its nodes, and the quarantined records whose payload holds one of its identifier
values. A table tagged ``info["erase"] = "detach"`` (orders) keeps its rows for sales totals,
detached: person and node columns cleared, and the columns named by ``info["erase_clear"]``
(orders: ``customer_ref``); the rows found through such a table (order lines) then
no longer lead to anybody and are kept.

In the same transaction each identifier the person held joins the suppression list
(:mod:`surmesure.protect.suppression`), so no later event, import or replay brings them back,
and the data keys of the person's nodes are destroyed (:mod:`surmesure.protect.crypto`), so
whatever they sealed no longer opens anywhere; so are the keys of the quarantined records found
holding one of the person's identifiers (:mod:`surmesure.protect.quarantined`), opened and
matched in batches, before those records are deleted. The files a channel wrote with the
person in them (print batches, call lists) are rewritten without them
(:mod:`surmesure.deliver.written`), the files of their own films, of every campaign, are removed
(:func:`surmesure.deliver.video.scrub`), and the kept recommendation models holding their
factors are rewritten (:mod:`surmesure.protect.fitted`); the report names each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.deliver import video, written
from surmesure.dispatch import outbox, shared_entries
from surmesure.errors import InvalidInput
from surmesure.protect import crypto, fitted, quarantined, scope, suppression
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person, identifier_values
from surmesure.unify.resolver import IDENTITY_LOCK

DETACH = "detach"


@dataclass
class Erasure:
    """What an erasure did: rows deleted and rows detached, by table."""

    person_id: int
    nodes: list[int]
    deleted: dict[str, int] = field(default_factory=dict)
    detached: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0
    """Identifiers added to the suppression list."""
    keys_destroyed: int = 0
    """Data keys of the person's nodes destroyed."""
    records_shredded: int = 0
    """Quarantined records of the person whose keys were destroyed (and rows deleted)."""
    shared_entries: int = 0
    """The person's entries deleted from the serving cache the API workers share in Redis
    (``SURMESURE_SERVING_CACHE_URL``); their keys being destroyed, a copy would not open."""
    files: dict[str, str] = field(default_factory=dict)
    """Files a channel wrote with the person in them (print batches, call lists, their films),
    by path: ``rewritten`` without them, ``removed`` (nobody else was in it) or ``missing``
    (moved or deleted since: a copy elsewhere must be erased there)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "nodes": self.nodes,
            "deleted": self.deleted,
            "detached": self.detached,
            "suppressed": self.suppressed,
            "keys_destroyed": self.keys_destroyed,
            "records_shredded": self.records_shredded,
            "shared_entries": self.shared_entries,
            "files": self.files,
        }


def erase_person(
    store: Store, ref: str, *, confirmed: bool, reason: str = "erasure requested"
) -> Erasure:
    """Erase the person ``ref`` names and suppress their identifiers, recording ``reason``.
    ``confirmed`` must be true: erasure cannot be undone."""
    if not confirmed:
        raise InvalidInput(
            f"Erasing {ref} deletes every row about this person and cannot be undone.",
            hint="add --yes to confirm",
            field="--yes",
        )
    settings = store.settings
    region = settings.default_country
    with store.begin() as conn:
        # the same lock identity resolution takes: no import attaches to a node mid-erasure
        store.backend.lock_key(conn, IDENTITY_LOCK)
        person = find_person(conn, ref)
        # the values, opened before the keys that seal them are destroyed below
        identifiers = identifier_values(store, conn, person)
        result = Erasure(person.person_id, list(person.nodes))
        result.suppressed = suppression.suppress(
            store,
            conn,
            identifiers,
            key=settings.suppression_key,
            now=utcnow(),
            reason=reason,
        )
        keyring = crypto.keyring(store, settings.encryption_key, settings.data_key_cache)
        result.keys_destroyed = keyring.destroy(conn, person.nodes)
        result.files = dict(written.scrub(conn, person.nodes))
        result.files |= video.scrub(conn, person.nodes, settings)
        detach_parents = {
            t.name for t in scope.ordered_for_erasure() if t.info.get("erase") == DETACH
        }
        for table in scope.ordered_for_erasure():
            parent = scope.via_parent(table)
            if parent is not None and parent.name in detach_parents:
                continue
            if scope.tag_of(table) == scope.PAYLOAD:
                keys = scope.payload_matches(conn, table, identifiers, region)
                clause = scope.key_clause(table, keys) if keys else None
                if keys and table is schema.quarantine:
                    ids = [k["quarantine_id"] for k in keys]
                    result.records_shredded = quarantined.destroy(conn, ids)
                    quarantined.unmark(conn, ids)
            else:
                clause = scope.person_clause(table, person.nodes)
            if clause is None:
                continue
            count = _count(conn, table, clause)
            if not count:
                continue
            if table.info.get("erase") == DETACH:
                conn.execute(table.update().where(clause).values(_detached_values(table)))
                result.detached[str(table.name)] = count
            else:
                conn.execute(table.delete().where(clause))
                result.deleted[str(table.name)] = count
        models = fitted.erase(conn, person.nodes)
        if models:
            result.deleted["recommendation_models.person_factors"] = models
        # a change that names nobody (no trace of the person is left): the caches of
        # decisions forget everyone once this commits (subscriber people_changed)
        outbox.append(store, conn, outbox.ERASURE, [None], at=utcnow())
    # once committed: a worker that read the person before then cannot write them back
    result.shared_entries = shared_entries.erased(
        settings.serving_cache_url, store.url, person.nodes, person.indexes
    )
    return result


def _count(conn: Connection, table: sa.Table, clause: sa.ColumnElement[bool]) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(table).where(clause)).scalar_one()
    )


def _detached_values(table: sa.Table) -> dict[str, None]:
    tag = scope.tag_of(table) or ""
    columns = [c.strip() for c in tag.split(",")]
    if "node_id" in table.c:
        columns.append("node_id")
    columns += list(table.info.get("erase_clear", ()))
    return {c: None for c in columns}
