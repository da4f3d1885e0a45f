"""Identity resolution against the store, one batch at a time.

Loads what the store knows about the batch's identifiers into an :class:`IdentityGraph`, plans,
then writes the plan in the caller's transaction: new people and identifiers, merges with their
evidence (the record, the source and the basis of trust; identifiers by kind and blind index),
every row of an absorbed person repointed to the survivor, the claims of low-trust records
(:mod:`surmesure.unify.trust`), and the pending claims that trusted evidence has now confirmed.
Identifier values are written as their blind index, sealed under their node
(:mod:`surmesure.protect.blind`). On PostgreSQL an advisory lock serializes resolution across
processes, so two writers never split one person.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.identity import LIMITS, PRIORITY
from surmesure.protect import blind
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.graph import Claim, Conflict, Identifier, IdentityGraph, Merge, Plan
from surmesure.unify.trust import HASH_FIELDS, why_claimed

IDENTITY_LOCK = 0x5375726D  # any constant shared by every writer


@dataclass
class Resolution:
    """Node and person of each record (``None`` for a record without identifiers);
    ``owned[i]``: record ``i`` attached through an identifier it vouches for, or to a new
    person (a record that only claims identifiers someone holds attaches to that holder as a
    fact about it, and must bring that holder no trait)."""

    nodes: list[int | None]
    people: list[int | None]
    new_people: int = 0
    merges: list[Merge] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    owned: list[bool] = field(default_factory=list)
    claims: int = 0


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
    trusted: bool = True,
    claimed: Sequence[Collection[Identifier]] | None = None,
) -> Resolution:
    """Attach each ``(reference, identifiers)`` record to a person, creating and merging
    people as the identifiers require. ``trusted``: whether ``source`` is; ``claimed[i]``: the
    identifiers record ``i`` only claims (none when not given). Runs inside the caller's
    transaction."""
    store.backend.lock_key(conn, IDENTITY_LOCK)
    claims = [frozenset(c) for c in claimed] if claimed is not None else None
    wanted = sorted({i for _, ids in records for i in ids})
    known, roots, weak = _load_known(store, conn, wanted)
    settled = _settled(records, known, roots, weak, claims)
    if settled is not None:
        return settled
    limited = _load_limited(store, conn, set(roots.values()))
    blocks, block_roots = _load_blocks(conn)
    roots.update(block_roots)
    graph = IdentityGraph(known, roots, limited, blocks, weak)
    plan = graph.plan(records, claims)

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

    vouched = (
        {ref: [i for i in ids if i not in claims[n]] for n, (ref, ids) in enumerate(records)}
        if plan.merges and claims is not None
        else {}
    )
    merges = [
        Merge(
            to_real(m.survivor),
            to_real(m.absorbed),
            {
                **blind.indexed_evidence(store, m.evidence),
                **_basis(vouched.get(str(m.evidence["record"]), []), source, trusted=trusted),
            },
        )
        for m in plan.merges
    ]
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
            # fresh ids from the sequence: nothing to skip, and a conflict check per row costs
            # DuckDB about as much again as the insert
            on_conflict="error",
        )
    merge_ids = _apply_merges(store, conn, merges, now)
    if plan.new_identifiers:
        items = list(plan.new_identifiers.items())
        rows = pa.table(
            {
                "kind": [k for (k, _), _ in items],
                "value": [v for (_, v), _ in items],
                "person_id": pa.array([person(n) for _, n in items], pa.int64()),
                "node_id": pa.array([to_real(n) for _, n in items], pa.int64()),
                "source": [source] * len(items),
                "first_seen_at": pa.array([now] * len(items), pa.timestamp("us")),
                "claimed": pa.array([True if i in plan.weak else None for i, _ in items]),
            }
        )
        store.bulk_insert(
            conn, schema.identifiers, blind.at_rest(store, conn, schema.identifiers, rows, now)
        )
    _take(store, conn, plan, to_real, person)
    _write_claims(store, conn, plan.claims, source, now, to_real, person)
    if merges or plan.taken:
        last_merge = {person(m.survivor): i for m, i in zip(plan.merges, merge_ids, strict=True)}
        affected = {person(n) for n in plan.taken.values()} | set(last_merge)
        _confirm(conn, affected, last_merge, now)
    nodes = [None if n is None else to_real(n) for n in plan.record_nodes]
    people = [None if n is None else person(n) for n in plan.record_nodes]
    conflicts = [
        Conflict(c.record, person(c.kept), person(c.refused), c.reason) for c in plan.conflicts
    ]
    return Resolution(
        nodes, people, len(plan.new_nodes), merges, conflicts, plan.owned, len(plan.claims)
    )


def _basis(vouched: Sequence[Identifier], source: str, *, trusted: bool) -> dict[str, object]:
    """Why a merge was allowed, for ``person show``: the source and what vouched for the
    record (a trusted source; else the identifiers a hash verified; else the device's own
    anonymous ids, which only a device that holds them can send)."""
    if trusted:
        return {"source": source, "basis": f"trusted source {source!r}"}
    verified = sorted({kind for kind, _ in vouched if kind in HASH_FIELDS})
    basis = " and ".join(f"{kind} verified by {HASH_FIELDS[kind]}" for kind in verified)
    return {"source": source, "basis": basis or "the device's own anonymous id"}


def _take(
    store: Store,
    conn: Connection,
    plan: Plan,
    to_real: Callable[[int], int],
    person: Callable[[int], int],
) -> None:
    """Weak holdings a vouched record took over (or confirmed where they were): firm now."""
    if not plan.taken:
        return
    ident = schema.identifiers
    conn.execute(
        ident.update()
        .where(ident.c.kind == sa.bindparam("k"), ident.c.value == sa.bindparam("v"))
        .values(node_id=sa.bindparam("n"), person_id=sa.bindparam("p"), claimed=None),
        [
            {"k": k, "v": blind.index(store, k, v), "n": to_real(node), "p": person(node)}
            for (k, v), node in plan.taken.items()
        ],
    )


def _write_claims(
    store: Store,
    conn: Connection,
    claims: list[Claim],
    source: str,
    now: datetime,
    to_real: Callable[[int], int],
    person: Callable[[int], int],
) -> None:
    """One row per (claimant node, identifier); a claim made again keeps its first row."""
    if not claims:
        return
    rows: dict[tuple[int, str, str], dict[str, object]] = {}
    for c in claims:
        holder = person(c.holder)
        if c.displaced:
            reason = (
                f"held by a low-trust claim only, until a vouched record from {source!r} gave "
                f"it to person {holder}"
            )
        else:
            reason = f"{why_claimed(c.identifier[0], source)}; held by person {holder}: not merged"
        rows.setdefault(
            (to_real(c.claimant), *c.identifier),
            {
                "person_id": person(c.claimant),
                "holder_id": holder,
                "evidence": _json({"record": c.record, "reason": reason}),
            },
        )
    keys = list(rows)
    table = pa.table(
        {
            "node_id": pa.array([k[0] for k in keys], pa.int64()),
            "kind": [k[1] for k in keys],
            "value": [k[2] for k in keys],
            "person_id": pa.array([rows[k]["person_id"] for k in keys], pa.int64()),
            "holder_id": pa.array([rows[k]["holder_id"] for k in keys], pa.int64()),
            "source": [source] * len(keys),
            "claimed_at": pa.array([now] * len(keys), pa.timestamp("us")),
            "evidence": [rows[k]["evidence"] for k in keys],
            "status": ["pending"] * len(keys),
        }
    )
    store.bulk_insert(
        conn, schema.identity_claims, blind.at_rest(store, conn, schema.identity_claims, table, now)
    )


def _confirm(conn: Connection, persons: set[int], merge_of: dict[int, int], now: datetime) -> None:
    """Pending claims of ``persons`` whose identifier their person now holds, through trusted
    evidence (a merge of this batch, or a holding taken over): confirmed."""
    c, i = schema.identity_claims, schema.identifiers
    wanted = sorted(persons)
    rows = [
        row
        for start in range(0, len(wanted), 1000)  # a bounded number of parameters per query
        for row in conn.execute(
            sa.select(c.c.node_id, c.c.kind, c.c.value, c.c.person_id)
            .join(i, sa.and_(i.c.kind == c.c.kind, i.c.value == c.c.value))
            .where(
                c.c.status == "pending",
                c.c.person_id.in_(wanted[start : start + 1000]),
                i.c.person_id == c.c.person_id,
            )
        )
    ]
    if not rows:
        return
    conn.execute(
        c.update()
        .where(
            c.c.node_id == sa.bindparam("n"),
            c.c.kind == sa.bindparam("k"),
            c.c.value == sa.bindparam("v"),
        )
        .values(status="confirmed", confirmed_at=now, merge_id=sa.bindparam("m")),
        [
            {"n": r.node_id, "k": r.kind, "v": r.value, "m": merge_of.get(int(r.person_id))}
            for r in rows
        ],
    )


def _apply_merges(
    store: Store,
    conn: Connection,
    merges: list[Merge],
    now: datetime,
) -> list[int]:
    """Record ``merges`` and repoint what the absorbed held; returns their merge ids."""
    if not merges:
        return []
    ids = store.next_ids(conn, schema.merge_id_seq, len(merges))
    table = pa.table(
        {
            "merge_id": pa.array(ids, pa.int64()),
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
    return list(ids)


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
    pairs = {
        "old": pa.array(list(mapping), pa.int64()),
        "new": pa.array(list(mapping.values()), pa.int64()),
    }
    with store.backend.with_values(conn, "_mapping", pairs) as m:
        store.backend.run(
            conn,
            f'UPDATE "{table.name}" SET "{column}" = _mapping.new{touch} FROM {m.sql} '
            f'WHERE "{table.name}"."{key}" = _mapping.old',
            m.params | params,
        )


def _json(value: object) -> str:
    import orjson

    return orjson.dumps(value).decode()


def probe_query(count: int) -> str:
    """The lookup of ``count`` identifiers by their values, bound as ``:v0``, ``:v1``...: a
    store whose index of two columns is not probed (DuckDB) probes the index of ``value``."""
    places = ", ".join(f":v{i}" for i in range(count))
    return (
        "SELECT i.kind, i.value, i.node_id, i.person_id, i.claimed FROM identifiers i "
        f"WHERE i.value IN ({places})"
    )


def _load_known(
    store: Store, conn: Connection, wanted: list[Identifier]
) -> tuple[dict[Identifier, int], dict[int, int], set[Identifier]]:
    """Node of each known identifier, person of each such node, identifiers held weakly."""
    known: dict[Identifier, int] = {}
    roots: dict[int, int] = {}
    weak: set[Identifier] = set()
    if not wanted:
        return known, roots, weak
    by_index = {
        (i[0], index): i for i, index in zip(wanted, blind.indexes(store, wanted), strict=True)
    }
    kinds = [k for k, _ in by_index]
    values = [v for _, v in by_index]
    rows: Sequence[Any]
    if len(values) <= store.backend.probe_max:
        probed = {f"v{i}": v for i, v in enumerate(values)}
        found = store.backend.run(conn, probe_query(len(values)), probed)
        rows = [r for r in found if (r[0], r[1]) in by_index]
    else:
        pairs = {"kind": pa.array(kinds, pa.string()), "value": pa.array(values, pa.string())}
        with store.backend.with_values(conn, "_wanted", pairs) as w:
            rows = store.backend.run(
                conn,
                "SELECT i.kind, i.value, i.node_id, i.person_id, i.claimed FROM identifiers i "
                f"JOIN {w.sql} ON i.kind = _wanted.kind AND i.value = _wanted.value",
                w.params,
            )
    for kind, value, node, person, claimed in rows:
        identifier = by_index[(kind, value)]
        known[identifier] = int(node)
        roots[int(node)] = int(person)
        if claimed:
            weak.add(identifier)
    return known, roots, weak


def _settled(
    records: Sequence[tuple[str, Sequence[Identifier]]],
    known: dict[Identifier, int],
    roots: dict[int, int],
    weak: set[Identifier],
    claimed: list[frozenset[Identifier]] | None,
) -> Resolution | None:
    """The resolution when the batch changes nothing (every identifier of every record is
    known and all of a record's point to one person, none vouched for but held weakly, as for
    returning visitors), else None. It is what planning would give: the node of the record's
    first identifier by priority, vouched ones first."""
    nodes: list[int | None] = []
    people: list[int | None] = []
    owned: list[bool] = []
    nothing: frozenset[Identifier] = frozenset()
    for index, (_, ids) in enumerate(records):
        if not ids:
            nodes.append(None)
            people.append(None)
            owned.append(False)
            continue
        claims = claimed[index] if claimed is not None else nothing
        if len(ids) == 1:  # the usual record: a device's calls
            node = known.get(ids[0])
            if node is None or (ids[0] in weak and ids[0] not in claims):
                return None
            nodes.append(node)
            people.append(roots[node])
            owned.append(ids[0] not in claims)
            continue
        if any(i not in known or (i in weak and i not in claims) for i in ids):
            return None
        if len({roots[known[i]] for i in ids}) > 1:
            return None
        own = [i for i in ids if i not in claims]
        first = min(own or ids, key=lambda i: (PRIORITY.get(i[0], 99), i[1]))
        nodes.append(known[first])
        people.append(roots[known[first]])
        owned.append(bool(own))
    return Resolution(nodes, people, owned=owned)


def _load_limited(store: Store, conn: Connection, persons: set[int]) -> dict[int, list[Identifier]]:
    held: dict[int, list[Identifier]] = {}
    if not persons:
        return held
    kinds = ", ".join(f"'{k}'" for k in LIMITS)
    query = "SELECT i.person_id, i.kind, i.node_id, i.sealed FROM identifiers i "
    ids = {"p": pa.array(sorted(persons), pa.int64())}
    with store.backend.with_values(conn, "_persons", ids) as ps:
        rows = store.backend.run(
            conn,
            query + f"JOIN {ps.sql} ON i.person_id = _persons.p WHERE i.kind IN ({kinds})",
            ps.params,
        )
    values = blind.ring(store).open_many(
        conn, [int(r[2]) for r in rows], [None if r[3] is None else bytes(r[3]) for r in rows]
    )
    for (person, kind, _, _), value in zip(rows, values, strict=True):
        if value is not None:
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
