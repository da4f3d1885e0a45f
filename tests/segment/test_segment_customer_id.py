"""The ``customer_id`` metric holds a blind index: a segment compares whole customer ids
(``eq``, ``ne``, ``in``), written as the customer knows them, in SQL and in memory alike;
``contains`` cannot look inside an index and is refused, naming the rule."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError
from segment_world import load_world, members_sql

from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment.evaluate import evaluate
from surmesure.segment.snapshot import load_snapshot
from surmesure.store import Store

NOW = datetime(2026, 3, 2)
AT = "2026-03-01T00:00:00"


def _world(store: Store) -> dict[str, object]:
    return {
        "people": [1, 2, 3],
        "metrics": [
            {"p": 1, "at": AT, "customer_id": blind.index(store, "customer_id", "C-17")},
            {"p": 2, "at": AT, "customer_id": blind.index(store, "customer_id", "C-18")},
        ],
    }


def _members(store: Store, people: list[int], where: dict[str, object]) -> tuple[list[int], ...]:
    definition = SegmentDefinition.model_validate({"name": "by_customer", "where": where})
    key = blind.index_key(store)
    query = members_sql(store, definition, NOW, 180.0, {})
    with store.connect() as conn:
        by_sql = sorted(int(r[0]) for r in conn.execute(query))
        in_memory = [
            p
            for p in people
            if evaluate(definition, load_snapshot(conn, p, NOW, 180.0), NOW, index_key=key)
        ]
    return by_sql, in_memory


def test_a_customer_id_is_compared_whole_through_its_index(store: Store) -> None:
    people = load_world(store, _world(store))
    eq = {"metric": {"name": "customer_id", "op": "eq", "value": " C-17"}}
    assert _members(store, people, eq) == ([1], [1])
    one_of = {"metric": {"name": "customer_id", "op": "in", "value": ["C-18", "C-99"]}}
    assert _members(store, people, one_of) == ([2], [2])
    other = {"metric": {"name": "customer_id", "op": "ne", "value": "C-17"}}
    assert _members(store, people, other) == ([2], [2])


def test_contains_on_a_customer_id_is_refused_naming_the_rule() -> None:
    with pytest.raises(ValidationError) as caught:
        SegmentDefinition.model_validate(
            {
                "name": "x",
                "where": {"metric": {"name": "customer_id", "op": "contains", "value": "C-1"}},
            }
        )
    text = str(caught.value)
    assert "customer_id" in text and "contains" in text and "blind index" in text
