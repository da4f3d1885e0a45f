"""What a film reads of people, the same on DuckDB and on PostgreSQL: fields, monthly spend,
preferred store, recommendations, and nobody for an id nobody holds."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from video_world import NOW, load_world, monthly_spend, person_id, refuse_personalization

from surmesure.decide.recommend import model
from surmesure.store import Store
from surmesure.video import parse_template
from surmesure.video.people import month_starts, read_viewers

TEMPLATE = {
    "name": "t",
    "fields": {"first_name": {"trait": "first_name", "fallback": "vous"}},
    "scenes": [
        {"kind": "chart", "months": 6},
        {"kind": "products", "count": 2},
        {"kind": "store", "store_trait": "home_store_id"},
    ],
}


def test_a_batch_reads_each_persons_data(store: Store, tmp_path: Path) -> None:
    load_world(store, tmp_path)
    model.clear_cache()
    template = parse_template(TEMPLATE)
    ids = [person_id(store, c) for c in ("C1", "C2", "C3")]
    refuse_personalization(store, ids[2])
    marie, paul, refused, unknown, nobody = read_viewers(store, template, [*ids, 10**9, None], NOW)
    months = [(m.year, m.month) for m in month_starts(NOW, 6)]
    assert months == [(2025, 10), (2025, 11), (2025, 12), (2026, 1), (2026, 2), (2026, 3)]
    assert marie.spend == tuple(monthly_spend("C1", months)) == (0, 0, 0, 0, 71.0, 0)
    assert paul.spend == tuple(monthly_spend("C2", months)) == (19.5, 16.0, 0, 12.0, 0, 0)
    assert marie.fields == {"first_name": "Marie"} and marie.fields_used
    assert [v.fields["first_name"] for v in (refused, unknown, nobody)] == ["vous"] * 3
    assert marie.store is not None and marie.store["name"] == "Boutique Nantes"
    assert paul.store is not None and paul.store["city"] == "Lyon"
    for neutral in (refused, unknown, nobody):
        assert neutral.neutral and neutral.spend is None and neutral.store is None
        assert not neutral.fields_used and not neutral.products_personal
        assert neutral.products == nobody.products and len(nobody.products) == 2
    assert unknown.person_id is None and refused.person_id == ids[2]
    assert read_viewers(store, template, [], NOW) == []
    assert len(marie.products) == 2


@pytest.mark.parametrize("count", [1, 13])
def test_month_starts_cross_years(count: int) -> None:
    starts = month_starts(NOW, count)
    assert len(starts) == count and starts[-1].month == 3 and starts[-1].day == 1
    assert all(a < b for a, b in pairwise(starts))
    if count == 13:
        assert (starts[0].year, starts[0].month) == (2025, 3)
