"""What the store holds, in the words of a marketing team: people, identifiers, merges, orders,
returns, fees, catalogue, events, answers, consents and the records waiting in quarantine.

One SQL statement per figure group, so the report stays fast on millions of rows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from surmesure.store.engine import Store

PEOPLE_SQL = """
SELECT
  count(*) AS people,
  count(*) FILTER (WHERE c.person_id IS NOT NULL) AS identified_people,
  count(*) FILTER (WHERE c.person_id IS NULL AND k.person_id IS NOT NULL) AS contactable_people,
  count(*) FILTER (WHERE c.person_id IS NULL AND k.person_id IS NULL) AS anonymous_people
FROM people p
LEFT JOIN (SELECT DISTINCT person_id FROM identifiers WHERE kind = 'customer_id') c
  ON c.person_id = p.person_id
LEFT JOIN (SELECT DISTINCT person_id FROM identifiers
           WHERE kind IN ('email', 'phone', 'loyalty_card')) k
  ON k.person_id = p.person_id
WHERE p.merged_into IS NULL
"""

ORDERS_SQL = """
SELECT
  count(*) AS orders,
  count(*) FILTER (WHERE is_return) AS returns,
  count(*) FILTER (WHERE person_id IS NULL) AS anonymous_orders,
  coalesce(sum(total_amount) FILTER (WHERE NOT is_return), 0) AS sales_amount,
  coalesce(-sum(total_amount) FILTER (WHERE is_return), 0) AS returned_amount,
  min(ordered_at) AS first_order_at,
  max(ordered_at) AS last_order_at
FROM orders
"""

LINES_SQL = """
SELECT
  count(*) AS order_lines,
  count(*) FILTER (WHERE o.is_return) AS return_lines,
  count(*) FILTER (WHERE l.is_fee) AS fee_lines,
  count(*) FILTER (WHERE o.person_id IS NULL) AS anonymous_order_lines
FROM order_lines l JOIN orders o ON o.order_id = l.order_id
"""

MERGES_SQL = """
SELECT
  count(*) FILTER (WHERE undone_at IS NULL) AS merges,
  count(*) FILTER (WHERE undone_at IS NOT NULL) AS merges_undone
FROM merges
"""

SIMPLE_COUNTS = {
    "identifiers": "SELECT count(*) FROM identifiers",
    "traits": "SELECT count(*) FROM traits",
    "products": "SELECT count(*) FROM products",
    "stores": "SELECT count(*) FROM stores",
    "stock_rows": "SELECT count(*) FROM stock",
    "events": "SELECT count(*) FROM events",
    "survey_answers": "SELECT count(*) FROM survey_answers",
    "channel_activity": "SELECT count(*) FROM channel_activity",
    "consents": "SELECT count(*) FROM consents",
    "import_runs": "SELECT count(*) FROM import_runs",
}

BY_KIND = {
    "identifiers_by_kind": "SELECT kind, count(*) FROM identifiers GROUP BY kind ORDER BY kind",
    "events_by_type": "SELECT type, count(*) FROM events GROUP BY type ORDER BY type",
    "survey_answers_by_metric": (
        "SELECT metric, count(*) FROM survey_answers GROUP BY metric ORDER BY metric"
    ),
}

QUARANTINE_SQL = """
SELECT kind, field, reason, count(*) AS n FROM quarantine WHERE status = 'open'
GROUP BY kind, field, reason ORDER BY n DESC, kind, reason
"""


def _row(conn: sa.Connection, sql: str) -> dict[str, Any]:
    row = conn.execute(sa.text(sql)).one()
    return {str(k): _plain(v) for k, v in row._mapping.items()}


def _plain(value: Any) -> Any:
    """Amounts as floats rounded to the cent; counts and dates as they are."""
    if isinstance(value, Decimal | float):
        return round(float(value), 2)
    return value


def collect_status(store: Store) -> dict[str, Any]:
    """Every figure of ``surmesure status``, as one JSON-ready dict.

    People are current persons (merged nodes are not counted twice): ``identified_people`` hold
    a customer id, ``contactable_people`` no customer id but an e-mail, phone or loyalty card,
    ``anonymous_people`` only anonymous (web) ids. ``quarantine.by_reason`` lists the open
    records by kind, field and reason.
    """
    with store.connect() as conn:
        out: dict[str, Any] = {"database": store.dialect}
        out.update(_row(conn, PEOPLE_SQL))
        out.update(_row(conn, MERGES_SQL))
        out.update(_row(conn, ORDERS_SQL))
        out.update(_row(conn, LINES_SQL))
        for name, sql in SIMPLE_COUNTS.items():
            out[name] = int(conn.execute(sa.text(sql)).scalar_one())
        for name, sql in BY_KIND.items():
            out[name] = {str(k): int(n) for k, n in conn.execute(sa.text(sql))}
        reasons = [
            {"kind": kind, "field": field, "reason": reason, "count": int(n)}
            for kind, field, reason, n in conn.execute(sa.text(QUARANTINE_SQL))
        ]
    out["quarantine"] = {"total": sum(r["count"] for r in reasons), "by_reason": reasons}
    for key in ("people", "identified_people", "contactable_people", "anonymous_people"):
        out[key] = int(out[key] or 0)
    return out
