"""Out-of-sample quality: fit before a cutoff, score against what people bought next.

The targets of a person are the products they bought for the first time at or after the cutoff
(non-return orders, fee lines left out); people who bought nothing before the cutoff, or
nothing new after it, are not scored. ``hit@k`` is the share of scored people with at least one
target among their top ``k``; ``recall@k`` the mean share of each person's targets found there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

LINES_SQL = """
SELECT DISTINCT o.person_id, l.product_code, o.ordered_at < :cutoff AS before
FROM orders o JOIN order_lines l ON l.order_id = o.order_id
WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 AND o.person_id IS NOT NULL
"""


@dataclass(frozen=True)
class Holdout:
    """What each person bought before the cutoff, and their first purchases after it."""

    cutoff: datetime
    bought: Mapping[int, frozenset[str]]
    targets: Mapping[int, frozenset[str]]


@dataclass(frozen=True)
class Quality:
    people: int
    hit: float
    recall: float


def holdout(conn: Connection, cutoff: datetime) -> Holdout:
    before: dict[int, set[str]] = {}
    after: dict[int, set[str]] = {}
    for pid, code, is_before in conn.execute(sa.text(LINES_SQL), {"cutoff": cutoff}):
        (before if is_before else after).setdefault(int(pid), set()).add(str(code))
    targets = {
        pid: frozenset(codes - before[pid])
        for pid, codes in after.items()
        if pid in before and codes - before[pid]
    }
    return Holdout(cutoff, {p: frozenset(c) for p, c in before.items()}, targets)


def popularity_baseline(conn: Connection, data: Holdout, k: int) -> dict[int, list[str]]:
    """The ``k`` products with the most distinct buyers before the cutoff that each scored
    person has not bought."""
    rows = conn.execute(
        sa.text(
            "SELECT l.product_code, count(DISTINCT o.person_id) AS buyers "
            "FROM orders o JOIN order_lines l ON l.order_id = o.order_id "
            "WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 "
            "AND o.person_id IS NOT NULL AND o.ordered_at < :cutoff "
            "GROUP BY l.product_code ORDER BY buyers DESC, l.product_code"
        ),
        {"cutoff": data.cutoff},
    )
    ranked = [str(r[0]) for r in rows]
    out: dict[int, list[str]] = {}
    for pid in data.targets:
        bought = data.bought[pid]
        out[pid] = [c for c in ranked[: k + len(bought)] if c not in bought][:k]
    return out


def quality(data: Holdout, top: Mapping[int, Sequence[str]], k: int) -> Quality:
    """``hit@k`` and ``recall@k`` of ``top`` (person -> products, best first)."""
    hits = 0
    recall = 0.0
    for pid, wanted in data.targets.items():
        found = len(set(top.get(pid, ())[:k]) & wanted)
        hits += found > 0
        recall += found / len(wanted)
    n = len(data.targets)
    return Quality(n, hits / n if n else 0.0, recall / n if n else 0.0)
