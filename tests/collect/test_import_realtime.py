"""An imported order moves its buyer into the segments a purchase can change, at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from import_helpers import rows, write_file

from surmesure.collect.importer import import_file
from surmesure.protect import blind
from surmesure.segment import repository
from surmesure.segment.definitions import parse
from surmesure.store import Store


def test_imported_orders_update_purchase_segments(store: Store, tmp_path: Path) -> None:
    buyers = parse({"name": "recent_buyers", "where": {"purchase": {"within_days": 30}}})
    repository.save(store, buyers, datetime(2026, 1, 1))
    recent = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    old = (datetime.now(UTC) - timedelta(days=200)).strftime("%Y-%m-%d %H:%M:%S")
    line = {"product_code": "P1", "quantity": 1, "unit_price": 20.0}
    path = write_file(
        tmp_path,
        "orders",
        "csv",
        [
            {"order_id": "O1", "ordered_at": recent, "customer_id": "C1", **line},
            {"order_id": "O2", "ordered_at": old, "customer_id": "C2", **line},
        ],
    )
    result = import_file(store, "orders", path)
    assert result.written["segment_changes"] == 1
    members = rows(
        store,
        "SELECT i.value FROM segment_members m JOIN identifiers i ON i.person_id = m.person_id "
        "WHERE m.segment = 'recent_buyers' AND i.kind = 'customer_id'",
    )
    assert members == [{"value": blind.index(store, "customer_id", "C1")}]
    changes = rows(store, "SELECT change FROM segment_changes")
    assert changes == [{"change": "entered"}]
