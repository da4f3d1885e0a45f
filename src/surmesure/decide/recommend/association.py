"""Co-purchase association rules, mined in the store from baskets.

One order is one basket; returns, fee lines and lines with no positive quantity are left out,
and a product counts once per basket. For a rule ``A -> C`` over ``n`` baskets::

    support    = baskets(A and C) / n
    confidence = baskets(A and C) / baskets(A)
    lift       = confidence / (baskets(C) / n)

Only orders placed strictly before ``as_of`` count, so rules can be replayed at a past date.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.engine import Connection

BASKETS_SQL = """
SELECT DISTINCT l.order_id, l.product_code
FROM order_lines l JOIN orders o ON o.order_id = l.order_id
WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 AND o.ordered_at < :as_of
"""

ITEMS_SQL = f"""
WITH b AS ({BASKETS_SQL})
SELECT product_code, count(*) AS baskets FROM b GROUP BY product_code
UNION ALL
SELECT NULL, count(DISTINCT order_id) FROM b
"""

# rules ranked per antecedent by confidence x lift, which for one antecedent orders as
# pair_count^2 / baskets(consequent)
PAIRS_SQL = f"""
WITH b AS ({BASKETS_SQL}),
ic AS (SELECT product_code, count(*) AS c FROM b GROUP BY product_code),
p AS (
  SELECT x.product_code AS a, y.product_code AS q, count(*) AS c
  FROM b x JOIN b y ON x.order_id = y.order_id AND x.product_code <> y.product_code
  GROUP BY x.product_code, y.product_code
  HAVING count(*) >= :min_pair_count
),
r AS (
  SELECT p.a, p.q, p.c, row_number() OVER (
    PARTITION BY p.a ORDER BY CAST(p.c AS DOUBLE PRECISION) * p.c / ic.c DESC, p.q
  ) AS rk
  FROM p JOIN ic ON ic.product_code = p.q
)
SELECT a, q, c FROM r WHERE rk <= :top ORDER BY a, rk
"""


@dataclass(frozen=True)
class Rule:
    """``antecedent -> consequent`` with its basket count and measures (fractions, not %)."""

    antecedent: str
    consequent: str
    pair_baskets: int
    support: float
    confidence: float
    lift: float


@dataclass(frozen=True)
class Rules:  # (frozen, with a cached property: the class keeps a __dict__)
    """Rules per antecedent, best first (confidence x lift), and the counts they rest on."""

    baskets: int
    item_baskets: Mapping[str, int]
    by_antecedent: Mapping[str, tuple[Rule, ...]]

    @cached_property
    def strengths(self) -> Mapping[str, tuple[tuple[str, float], ...]]:
        """Per antecedent, ``(consequent, confidence x log(1 + lift))`` in the rules' order:
        what scoring sums, computed once."""
        return {
            a: tuple((r.consequent, r.confidence * math.log1p(r.lift)) for r in rules)
            for a, rules in self.by_antecedent.items()
        }

    def rule(self, antecedent: str, consequent: str) -> Rule | None:
        for rule in self.by_antecedent.get(antecedent, ()):
            if rule.consequent == consequent:
                return rule
        return None

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.by_antecedent.values())


def make_rule(a: str, q: str, pair: int, count_a: int, count_q: int, baskets: int) -> Rule:
    confidence = pair / count_a
    return Rule(a, q, pair, pair / baskets, confidence, confidence * baskets / count_q)


def mine_rules(
    conn: Connection,
    as_of: datetime,
    *,
    min_pair_count: int = 2,
    top_per_antecedent: int = 100,
) -> Rules:
    """Rules from the baskets before ``as_of`` (naive UTC) seen together in at least
    ``min_pair_count`` baskets, the ``top_per_antecedent`` best kept per antecedent."""
    items: dict[str, int] = {}
    baskets = 0
    for code, count in conn.execute(sa.text(ITEMS_SQL), {"as_of": as_of}):
        if code is None:
            baskets = int(count)
        else:
            items[str(code)] = int(count)
    by_antecedent: dict[str, list[Rule]] = {}
    params = {"as_of": as_of, "min_pair_count": min_pair_count, "top": top_per_antecedent}
    for a, q, pair in conn.execute(sa.text(PAIRS_SQL), params):
        rule = make_rule(str(a), str(q), int(pair), items[a], items[q], baskets)
        by_antecedent.setdefault(rule.antecedent, []).append(rule)
    return Rules(baskets, items, {a: tuple(r) for a, r in by_antecedent.items()})
