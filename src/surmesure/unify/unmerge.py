"""Undoing one merge.

A merge made ``absorbed`` (and the nodes merged into it before) part of ``survivor``'s person.
Undoing it makes the absorbed node a person again with its subtree (the nodes whose
``merged_into`` chain reaches it without going through the survivor); every row attached to a
node of that subtree follows it. The merge is marked undone and the pair is blocked, so identity
resolution reports a conflict instead of merging them again. Both people are named in the
outbox (kind ``identity``) in the same transaction, so a serving cache parts them as soon as
the dispatcher delivers it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from surmesure.dispatch import outbox
from surmesure.errors import Conflict, NotFound
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person, subtree
from surmesure.unify.resolver import IDENTITY_LOCK, attached_tables


@dataclass
class Unmerge:
    """The undone merge, the person each side now is, and the rows that moved by table."""

    merge_id: int
    survivor_id: int
    absorbed_id: int
    person_id: int
    restored_nodes: list[int]
    undone_at: datetime
    moved: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unmerge(store: Store, ref: str, merge_id: int, *, now: datetime | None = None) -> Unmerge:
    """Undo merge ``merge_id`` of the person ``ref`` names, in one transaction.

    Raises :class:`NotFound` for an unknown merge and :class:`Conflict` for a merge already
    undone or one that is not this person's."""
    at = now or datetime.now(UTC).replace(tzinfo=None)
    m = schema.merges
    with store.begin() as conn:
        store.backend.lock_key(conn, IDENTITY_LOCK)
        person = find_person(conn, ref)
        row = conn.execute(sa.select(m).where(m.c.merge_id == merge_id)).first()
        if row is None:
            raise NotFound(
                f"There is no merge {merge_id}.",
                hint=f"see the merges of this person with `surmesure person show {ref}`",
                field="--merge",
            )
        survivor, absorbed = int(row.survivor_id), int(row.absorbed_id)
        if row.undone_at is not None:
            raise Conflict(
                f"Merge {merge_id} was already undone on {row.undone_at:%Y-%m-%d %H:%M}.",
                hint="nothing to do; `surmesure person show` lists the merges still in force",
                field="--merge",
            )
        if survivor not in person.nodes or absorbed not in person.nodes:
            raise Conflict(
                f"Merge {merge_id} is not a merge of person {person.person_id}.",
                hint=f"pick one of the merges `surmesure person show {ref}` lists",
                field="--merge",
            )
        restored = subtree(conn, absorbed, stop=survivor)
        conn.execute(
            schema.people.update()
            .where(schema.people.c.person_id == absorbed)
            .values(merged_into=None, updated_at=at)
        )
        moved: dict[str, int] = {}
        for table in attached_tables():
            result = conn.execute(
                table.update().where(table.c.node_id.in_(restored)).values(person_id=absorbed)
            )
            moved[str(table.name)] = max(int(result.rowcount or 0), 0)
        conn.execute(m.update().where(m.c.merge_id == merge_id).values(undone_at=at))
        blocks = schema.merge_blocks
        blocked = conn.execute(
            sa.select(sa.func.count())
            .select_from(blocks)
            .where(blocks.c.node_a == survivor, blocks.c.node_b == absorbed)
        ).scalar_one()
        if not blocked:
            conn.execute(blocks.insert().values(node_a=survivor, node_b=absorbed, created_at=at))
        # whom it changed, for the later stages (the serving cache parts the two at once)
        outbox.append(
            store,
            conn,
            outbox.IDENTITY,
            [person.person_id, absorbed],
            at=at,
            details=["unmerge", "unmerge"],
            refs=[str(merge_id), str(merge_id)],
        )
    return Unmerge(merge_id, survivor, absorbed, person.person_id, restored, at, moved)
