"""Out-of-sample quality: fit before a cutoff, score against what people bought next.

The targets of a person are the products they bought for the first time at or after the cutoff
(and before ``until`` when given; non-return orders, fee lines left out); people who bought
nothing before the cutoff, or nothing new after it, are not scored. Over the scored people:
``hit@k`` is the share with at least one target among their top ``k``; ``precision@k`` the mean
share of the ``k`` places holding a target; ``recall@k`` the mean share of each person's
targets found there; ``ndcg@k`` the mean discounted gain of the targets found (each worth
``1 / log2(place + 1)``) over the best gain possible; ``coverage`` the share of the products
sold before the cutoff that are recommended to at least one person.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

LINES_SQL = """
SELECT DISTINCT o.person_id, l.product_code, o.ordered_at < :cutoff AS before
FROM orders o JOIN order_lines l ON l.order_id = o.order_id
WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 AND o.person_id IS NOT NULL
  AND o.ordered_at < :until
"""


@dataclass(frozen=True)
class Holdout:
    """What each person bought before the cutoff, and their first purchases after it."""

    cutoff: datetime
    bought: Mapping[int, frozenset[str]]
    targets: Mapping[int, frozenset[str]]
    #: products sold (to identified people) before the cutoff: what coverage is a share of
    catalogue: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Quality:
    people: int
    hit: float
    recall: float
    precision: float = 0.0
    ndcg: float = 0.0
    coverage: float = 0.0


def holdout(conn: Connection, cutoff: datetime, until: datetime | None = None) -> Holdout:
    before: dict[int, set[str]] = {}
    after: dict[int, set[str]] = {}
    params = {"cutoff": cutoff, "until": until or datetime.max}
    for pid, code, is_before in conn.execute(sa.text(LINES_SQL), params):
        (before if is_before else after).setdefault(int(pid), set()).add(str(code))
    targets = {
        pid: frozenset(codes - before[pid])
        for pid, codes in after.items()
        if pid in before and codes - before[pid]
    }
    catalogue = frozenset(code for codes in before.values() for code in codes)
    return Holdout(cutoff, {p: frozenset(c) for p, c in before.items()}, targets, catalogue)


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


def per_person(
    data: Holdout, top: Mapping[int, Sequence[str]], k: int
) -> dict[int, tuple[bool, float]]:
    """Per scored person: whether a target is among their top ``k``, and their NDCG@k (what a
    paired comparison of two methods resamples)."""
    gains = [1.0 / math.log2(place + 2) for place in range(k)]
    out: dict[int, tuple[bool, float]] = {}
    for pid, wanted in data.targets.items():
        places = [p for p, code in enumerate(top.get(pid, ())[:k]) if code in wanted]
        ideal = sum(gains[: min(k, len(wanted))])
        out[pid] = (bool(places), sum(gains[p] for p in places) / ideal)
    return out


def quality(data: Holdout, top: Mapping[int, Sequence[str]], k: int) -> Quality:
    """The measures of ``top`` (person -> products, best first) at ``k``."""
    found_all = 0
    recall = 0.0
    shown: set[str] = set()
    for pid, wanted in data.targets.items():
        head = list(top.get(pid, ())[:k])
        shown.update(head)
        found = len(set(head) & wanted)
        found_all += found
        recall += found / len(wanted)
    n = len(data.targets)
    if not n:
        return Quality(0, 0.0, 0.0)
    each = per_person(data, top, k).values()
    hits = sum(hit for hit, _ in each)
    ndcg = sum(gain for _, gain in each)
    coverage = len(shown & data.catalogue) / len(data.catalogue) if data.catalogue else 0.0
    return Quality(n, hits / n, recall / n, found_all / (n * k), ndcg / n, coverage)
