"""Small worlds written as JSON (the conformance table's format), loaded into a store.

Times are ISO 8601; one with an offset is converted to naive UTC, as collection does.
Defaults keep the table short: a trait is observed at ``DEFAULT_AT`` with reliability 0.9 from
source ``crm``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment.sql import members_query
from surmesure.store import Store, schema

DEFAULT_AT = "2026-01-01T00:00:00"


def utc(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def members_sql(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    half_life_days: float,
    catalog: Mapping[str, SegmentDefinition],
    *,
    fast: bool = True,
) -> sa.Select[Any]:
    """The SQL interpreter's query of ``definition`` on ``store`` (under its blind-index key)."""
    return members_query(
        definition,
        dialect=store.dialect,
        now=now,
        half_life_days=half_life_days,
        catalog=catalog,
        index_key=blind.index_key(store),
        fast=fast,
    )


TABLES = (
    schema.people,
    schema.traits,
    schema.events,
    schema.products,
    schema.stores,
    schema.orders,
    schema.order_lines,
    schema.consents,
    schema.derived_metrics,
    schema.segments,
    schema.segment_versions,
    schema.segment_members,
    schema.segment_changes,
)


def empty(store: Store) -> None:
    with store.begin() as conn:
        for table in TABLES:
            conn.execute(table.delete())


def load_world(store: Store, world: dict[str, Any]) -> list[int]:
    """Insert ``world`` and return the ids of its current persons."""
    empty(store)
    at = utc(DEFAULT_AT)
    people = [p if isinstance(p, dict) else {"id": p} for p in world.get("people", [])]
    rows: dict[sa.Table, list[dict[str, Any]]] = {
        schema.people: [
            {
                "person_id": p["id"],
                "merged_into": p.get("merged_into"),
                "created_at": at,
                "updated_at": at,
            }
            for p in people
        ],
        schema.traits: [
            {
                "record_key": f"r{i}",
                "name": t["name"],
                "person_id": t["p"],
                "node_id": t["p"],
                "value": t["value"],
                "source": t.get("source", "crm"),
                "observed_at": utc(t.get("at", DEFAULT_AT)),
                "reliability": t.get("rel", 0.9),
            }
            for i, t in enumerate(world.get("traits", []))
        ],
        schema.events: [
            {
                "message_id": f"m{i}",
                "type": e.get("type", "track"),
                "event": e.get("name"),
                "person_id": e["p"],
                "node_id": e["p"],
                "occurred_at": utc(e["at"]),
                "received_at": utc(e["at"]),
                "properties": e.get("properties", {}),
                "source": "web",
            }
            for i, e in enumerate(world.get("events", []))
        ],
        schema.products: [
            {"product_code": code, "category": category, "updated_at": at}
            for code, category in world.get("products", {}).items()
        ],
        schema.stores: [
            {
                "store_id": s["id"],
                "latitude": s.get("lat"),
                "longitude": s.get("lon"),
                "updated_at": at,
            }
            for s in world.get("stores", [])
        ],
        schema.orders: [
            {
                "order_id": o["id"],
                "person_id": o["p"],
                "node_id": o["p"],
                "ordered_at": utc(o["at"]),
                "is_return": o.get("return", False),
                "total_amount": o["total"],
                "source": "pos",
            }
            for o in world.get("orders", [])
        ],
        schema.order_lines: [
            {
                "order_id": o["id"],
                "line_no": n,
                "product_code": code,
                "quantity": 1,
                "unit_price": amount,
                "amount": amount,
                "is_fee": False,
            }
            for o in world.get("orders", [])
            for n, (code, amount) in enumerate(o.get("lines", []))
        ],
        schema.consents: [
            {
                "consent_id": c["id"],
                "person_id": c["p"],
                "node_id": c["p"],
                "purpose": c.get("purpose", "marketing"),
                "channel": c.get("channel", "email"),
                "granted": c["granted"],
                "recorded_at": utc(c["at"]),
                "source": "web",
            }
            for c in world.get("consents", [])
        ],
        schema.derived_metrics: [
            {
                "person_id": m["p"],
                "computed_on": utc(m["at"]).date(),
                "computed_at": utc(m["at"]),
                "as_of": date.fromisoformat(m["at"][:10]),
                "horizon_days": 365,
                "discount_rate": 0.1,
                **{k: v for k, v in m.items() if k not in ("p", "at")},
            }
            for m in world.get("metrics", [])
        ],
    }
    with store.begin() as conn:
        for table, values in rows.items():
            if values:
                values = [{**_required(table), **row} for row in values]
                keys = {k for row in values for k in row}
                conn.execute(table.insert(), [{k: row.get(k) for k in keys} for row in values])
    return sorted(p["id"] for p in people if p.get("merged_into") is None)


def _required(table: sa.Table) -> dict[str, Any]:
    """A neutral value for every NOT NULL number column a world leaves out (run parameters such
    as horizon_days on derived_metrics)."""
    return {
        c.name: 0
        for c in table.columns
        if not c.nullable
        and not c.primary_key
        and isinstance(c.type, sa.Integer | sa.Float)
        and c.server_default is None
    }
