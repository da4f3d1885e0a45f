"""Segments on real data: Online Retail II imported, derived, then segmented as of its last day,
the members counted again independently in SQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import copy_store
from surmesure.derive.run import derive
from surmesure.segment import membership, repository
from surmesure.segment.definitions import parse
from surmesure.store import open_store

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
]

AT = datetime(2010, 12, 9, 23, 59, 59)


def test_recent_champions_of_online_retail(online_retail: tuple[Path, Any], tmp_path: Path) -> None:
    store = open_store(copy_store(online_retail[0], tmp_path))  # the file, imported
    try:
        derive(store, as_of=date(2010, 12, 9), now=datetime(2026, 1, 1))  # computed much later
        champions = parse(
            {
                "name": "recent_champions",
                "where": {
                    "all": [
                        {"metric": {"name": "rfm_segment", "op": "eq", "value": "Champions"}},
                        {"purchase": {"within_days": 30}},
                    ]
                },
            }
        )
        repository.save(store, champions, datetime(2026, 1, 1))
        found = membership.size(store, champions, AT)
        with store.connect() as conn:
            expected = conn.execute(
                sa.text(
                    "SELECT count(DISTINCT m.person_id) FROM derived_metrics m "
                    "JOIN orders o ON o.person_id = m.person_id "
                    "WHERE m.rfm_segment = 'Champions' AND NOT o.is_return "
                    "AND o.ordered_at BETWEEN :start AND :at"
                ),
                {"start": datetime(2010, 11, 9, 23, 59, 59), "at": AT},
            ).scalar_one()
    finally:
        store.dispose()
    assert expected > 100
    assert found == expected
