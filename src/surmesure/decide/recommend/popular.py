"""Popularity: overall, in the same season a year earlier, and within an RFM segment.

A product's popularity is its number of distinct buyers (an anonymous order counts as one
buyer) over non-return orders placed before ``as_of``, fee lines left out. Rankings break ties
by product code, so they are deterministic.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

BUYER = (
    "CASE WHEN o.person_id IS NULL THEN 'o' || o.order_id "
    "ELSE 'p' || CAST(o.person_id AS VARCHAR(32)) END"
)

POPULAR_SQL = f"""
SELECT l.product_code, count(DISTINCT {BUYER}) AS buyers
FROM order_lines l JOIN orders o ON o.order_id = l.order_id
WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0
  AND o.ordered_at >= :since AND o.ordered_at < :until
GROUP BY l.product_code
ORDER BY buyers DESC, l.product_code
LIMIT :top
"""

# the RFM segment in force for each person: their latest derived row as of the day
SEGMENTS_SQL = """
SELECT person_id, rfm_segment FROM (
  SELECT person_id, rfm_segment, row_number() OVER (
    PARTITION BY person_id ORDER BY as_of DESC, computed_on DESC) AS rk
  FROM derived_metrics WHERE as_of <= :day {person}
) s WHERE rk = 1 AND rfm_segment IS NOT NULL
"""

BY_SEGMENT_SQL = f"""
WITH seg AS ({SEGMENTS_SQL.format(person="")})
SELECT seg.rfm_segment, l.product_code, count(DISTINCT o.person_id) AS buyers
FROM seg JOIN orders o ON o.person_id = seg.person_id
JOIN order_lines l ON l.order_id = o.order_id
WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 AND o.ordered_at < :as_of
GROUP BY seg.rfm_segment, l.product_code
"""

EPOCH = datetime(1900, 1, 1)


def popular(
    conn: Connection,
    until: datetime,
    *,
    since: datetime = EPOCH,
    top: int = 500,
) -> list[tuple[str, int]]:
    """The ``top`` products by buyers over ``[since, until)``, most bought first."""
    rows = conn.execute(sa.text(POPULAR_SQL), {"since": since, "until": until, "top": top})
    return [(str(code), int(buyers)) for code, buyers in rows]


def seasonal(
    conn: Connection, as_of: datetime, *, season_days: int = 100, top: int = 500
) -> list[tuple[str, int]]:
    """Popularity over the ``season_days`` that followed the same date a year earlier: what
    the coming weeks looked like last year (empty when the history is shorter than a year)."""
    start = as_of - timedelta(days=365)
    return popular(conn, min(start + timedelta(days=season_days), as_of), since=start, top=top)


def by_segment(conn: Connection, as_of: datetime, *, top: int = 200) -> dict[str, list[str]]:
    """For each RFM segment in force at ``as_of``, its ``top`` products by buyers."""
    counts: dict[str, list[tuple[int, str]]] = {}
    params = {"day": _day(as_of), "as_of": as_of}
    for segment, code, buyers in conn.execute(sa.text(BY_SEGMENT_SQL), params):
        counts.setdefault(str(segment), []).append((-int(buyers), str(code)))
    return {s: [code for _, code in sorted(rows)[:top]] for s, rows in counts.items()}


def segment_of(conn: Connection, person_id: int, as_of: datetime) -> str | None:
    """The RFM segment of one person at ``as_of``; ``None`` when no metrics were derived."""
    query = SEGMENTS_SQL.format(person="AND person_id = :person_id")
    row = conn.execute(sa.text(query), {"day": _day(as_of), "person_id": person_id}).first()
    return None if row is None else str(row[1])


def segments(conn: Connection, as_of: datetime) -> dict[int, str]:
    """The RFM segment of everyone who has one at ``as_of``."""
    rows = conn.execute(sa.text(SEGMENTS_SQL.format(person="")), {"day": _day(as_of)})
    return {int(pid): str(seg) for pid, seg in rows}


def _day(at: datetime) -> date:
    return at.date()


FIRST_SOLD_SQL = """
SELECT l.product_code, min(o.ordered_at)
FROM order_lines l JOIN orders o ON o.order_id = l.order_id
WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 AND o.ordered_at < :as_of
GROUP BY l.product_code
"""


def first_sold(conn: Connection, as_of: datetime) -> dict[str, datetime]:
    """When each product first sold before ``as_of`` (to anyone, anonymous orders too)."""
    return {str(code): at for code, at in conn.execute(sa.text(FIRST_SOLD_SQL), {"as_of": as_of})}
