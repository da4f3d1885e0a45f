"""Identity resolution against the store, one batch at a time.

Loads what the store knows about the batch's identifiers into an :class:`IdentityGraph`, plans,
then writes the plan in the caller's transaction: new people and identifiers, merges with their
evidence, and every row of an absorbed person repointed to the survivor. On PostgreSQL an
advisory lock serializes resolution across processes, so two writers never split one person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import LIMITS, PRIORITY
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.graph import Conflict, Identifier, IdentityGraph, Merge

IDENTITY_LOCK = 0x5375726D  # any constant shared by every writer


@dataclass
class Resolution:
    """Node and person of each record (``None`` for a record without identifiers)."""

    nodes: list[int | None]
    people: list[int | None]
    new_people: int = 0
    merges: list[Merge] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def attached_tables() -> list[sa.Table]:
    """Tables whose rows hang off a person through ``person_id`` and ``node_id``."""
    return [t for t in schema.metadata.sorted_tables if "node_id" in t.c and "person_id" in t.c]


def resolve(
    store: Store,
    conn: Connection,
    records: Sequence[tuple[str, Sequence[Identifier]]],
    *,
    source: str,
    now: datetime,
) -> Resolution:
    """Attach each ``(reference, identifiers)`` record to a person, creating and merging
    people as the identifiers require. Runs inside the caller's transaction."""
    if not store.is_duckdb:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": IDENTITY_LOCK})
    wanted = sorted({i for _, ids in records for i in ids})
    known, roots = _load_known(store, conn, wanted)
    settled = _settled(records, known, roots)
    if settled is not None:
        return settled
    limited = _load_limited(store, conn, set(roots.values()))
    blocks, block_roots = _load_blocks(conn)
    roots.update(block_roots)
    graph = IdentityGraph(known, roots, limited, blocks)
    plan = graph.plan(records)

    real = dict(
        zip(
            plan.new_nodes,
            store.next_ids(conn, schema.person_id_seq, len(plan.new_nodes)),
            strict=True,
        )
    )

    def to_real(node: int) -> int:
        return real.get(node, node)

    def person(node: int) -> int:
        return to_real(graph.find(node))

    merges = [Merge(to_real(m.survivor), to_real(m.absorbed), m.evidence) for m in plan.merges]
    parent_of = {m.absorbed: m.survivor for m in merges}
    if plan.new_nodes:
        store.bulk_insert(
            conn,
            schema.people,
            pa.table(
                {
                    "person_id": pa.array([real[n] for n in plan.new_nodes], pa.int64()),
                    "merged_into": pa.array(
                        [parent_of.get(real[n]) for n in plan.new_nodes], pa.int64()
                    ),
                    "created_at": pa.array([now] * len(plan.new_nodes), pa.timestamp("us")),
                    "updated_at": pa.array([now] * len(plan.new_nodes), pa.timestamp("us")),
                }
            ),
        )
    _apply_merges(store, conn, merges, now)
    if plan.new_identifiers:
        items = list(plan.new_identifiers.items())
        store.bulk_insert(
            conn,
            schema.identifiers,
            pa.table(
                {
                    "kind": [k for (k, _), _ in items],
                    "value": [v for (_, v), _ in items],
                    "person_id": pa.array([person(n) for _, n in items], pa.int64()),
                    "node_id": pa.array([to_real(n) for _, n in items], pa.int64()),
                    "source": [source] * len(items),
                    "first_seen_at": pa.array([now] * len(items), pa.timestamp("us")),
                }
            ),
        )
    nodes = [None if n is None else to_real(n) for n in plan.record_nodes]
    people = [None if n is None else person(n) for n in plan.record_nodes]
    conflicts = [
        Conflict(c.record, person(c.kept), person(c.refused), c.reason) for c in plan.conflicts
    ]
    return Resolution(nodes, people, len(plan.new_nodes), merges, conflicts)


def _apply_merges(
    store: Store,
    conn: Connection,
    merges: list[Merge],
    now: datetime,
) -> None:
    if not merges:
        return
    table = pa.table(
        {
            "merge_id": pa.array(
                store.next_ids(conn, schema.merge_id_seq, len(merges)), pa.int64()
            ),
            "survivor_id": pa.array([m.survivor for m in merges], pa.int64()),
            "absorbed_id": pa.array([m.absorbed for m in merges], pa.int64()),
            "evidence": [_json(m.evidence) for m in merges],
            "merged_at": pa.array([now] * len(merges), pa.timestamp("us")),
        }
    )
    store.bulk_insert(conn, schema.merges, table)
    parents = {m.absorbed: m.survivor for m in merges}
    update_from_mapping(store, conn, schema.people, "person_id", "merged_into", parents, now)
    # follow chains (a -> b -> c) so every absorbed person points at its final survivor
    final: dict[int, int] = {}
    for absorbed in parents:
        target = parents[absorbed]
        while target in parents:
            target = parents[target]
        final[absorbed] = target
    repoint(store, conn, final)


def repoint(store: Store, conn: Connection, mapping: dict[int, int]) -> None:
    """Move every row of each person ``old`` to ``mapping[old]``, in all attached tables."""
    for table in attached_tables():
        update_from_mapping(store, conn, table, "person_id", "person_id", mapping)


def update_from_mapping(
    store: Store,
    conn: Connection,
    table: sa.Table,
    key: str,
    column: str,
    mapping: dict[int, int],
    now: datetime | None = None,
) -> None:
    """``UPDATE table SET column = mapping[key]`` for the rows whose ``key`` is mapped, in one
    statement whatever the size of the mapping (a join with the mapping as a relation)."""
    if not mapping:
        return
    touch = ', "updated_at" = :now' if now is not None and "updated_at" in table.c else ""
    params = {"now": now} if touch else {}
    if store.is_duckdb:
        raw = store.raw_duckdb(conn)
        raw.register(
            "_mapping",
            pa.table(
                {
                    "old": pa.array(list(mapping), pa.int64()),
                    "new": pa.array(list(mapping.values()), pa.int64()),
                }
            ),
        )
        try:
            raw.execute(
                f'UPDATE "{table.name}" SET "{column}" = m.new'
                + (', "updated_at" = $now' if touch else "")
                + f' FROM _mapping m WHERE "{table.name}"."{key}" = m.old',
                params or None,
            )
        finally:
            raw.unregister("_mapping")
        return
    conn.execute(
        sa.text(
            f'UPDATE "{table.name}" SET "{column}" = m.new{touch} '
            "FROM unnest(CAST(:old AS bigint[]), CAST(:new AS bigint[])) AS m(old, new) "
            f'WHERE "{table.name}"."{key}" = m.old'
        ),
        {"old": list(mapping), "new": list(mapping.values()), **params},
    )


def _json(value: object) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _load_known(
    store: Store, conn: Connection, wanted: list[Identifier]
) -> tuple[dict[Identifier, int], dict[int, int]]:
    known: dict[Identifier, int] = {}
    roots: dict[int, int] = {}
    if not wanted:
        return known, roots
    kinds = [k for k, _ in wanted]
    values = [v for _, v in wanted]
    if store.is_duckdb:
        raw = store.raw_duckdb(conn)
        raw.register("_wanted", pa.table({"kind": kinds, "value": values}))
        try:
            rows = raw.execute(
                "SELECT i.kind, i.value, i.node_id, i.person_id FROM identifiers i "
                "JOIN _wanted w ON i.kind = w.kind AND i.value = w.value"
            ).fetchall()
        finally:
            raw.unregister("_wanted")
    else:
        rows = conn.execute(
            sa.text(
                "SELECT i.kind, i.value, i.node_id, i.person_id FROM identifiers i "
                "JOIN unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) AS w(kind, value) "
                "ON i.kind = w.kind AND i.value = w.value"
            ),
            {"kinds": kinds, "values": values},
        ).fetchall()
    for kind, value, node, person in rows:
        known[(kind, value)] = int(node)
        roots[int(node)] = int(person)
    return known, roots


def _settled(
    records: Sequence[tuple[str, Sequence[Identifier]]],
    known: dict[Identifier, int],
    roots: dict[int, int],
) -> Resolution | None:
    """The resolution when the batch changes nothing (every identifier of every record is
    known and all of a record's point to one person, as for returning visitors), else None.
    It is what planning would give: the node of the record's first identifier by priority."""
    nodes: list[int | None] = []
    people: list[int | None] = []
    for _, ids in records:
        if not ids:
            nodes.append(None)
            people.append(None)
            continue
        if any(i not in known for i in ids):
            return None
        if len({roots[known[i]] for i in ids}) > 1:
            return None
        first = min(ids, key=lambda i: (PRIORITY.get(i[0], 99), i[1]))
        nodes.append(known[first])
        people.append(roots[known[first]])
    return Resolution(nodes, people)


def _load_limited(store: Store, conn: Connection, persons: set[int]) -> dict[int, list[Identifier]]:
    held: dict[int, list[Identifier]] = {}
    if not persons:
        return held
    kinds = ", ".join(f"'{k}'" for k in LIMITS)
    query = "SELECT i.person_id, i.kind, i.value FROM identifiers i "
    if store.is_duckdb:
        raw = store.raw_duckdb(conn)
        raw.register("_persons", pa.table({"p": pa.array(sorted(persons), pa.int64())}))
        try:
            rows = raw.execute(
                query + f"JOIN _persons ON i.person_id = _persons.p WHERE i.kind IN ({kinds})"
            ).fetchall()
        finally:
            raw.unregister("_persons")
    else:
        rows = conn.execute(
            sa.text(
                query
                + f"WHERE i.person_id = ANY(CAST(:persons AS bigint[])) AND i.kind IN ({kinds})"
            ),
            {"persons": sorted(persons)},
        ).fetchall()
    for person, kind, value in rows:
        held.setdefault(int(person), []).append((kind, value))
    return held


def _load_blocks(conn: Connection) -> tuple[list[tuple[int, int]], dict[int, int]]:
    mb = schema.merge_blocks
    blocks = [(int(a), int(b)) for a, b in conn.execute(sa.select(mb.c.node_a, mb.c.node_b))]
    nodes = sorted({n for pair in blocks for n in pair})
    roots: dict[int, int] = {}
    if nodes:
        ident = schema.identifiers
        for node, person in conn.execute(
            sa.select(ident.c.node_id, ident.c.person_id)
            .where(ident.c.node_id.in_(nodes))
            .distinct()
        ):
            roots[int(node)] = int(person)
    return blocks, roots
