"""The fast plan (a chain of steps, restricted rankings, semi-joins) finds the same members as
the plain plan and as the in-memory evaluator, on conjunctions of the conformance table's
conditions, on DuckDB and on PostgreSQL."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from segment_world import load_world, members_sql, utc
from test_conformance import BY_WORLD, TABLE

from surmesure.domain.segments import AllNode, SegmentDefinition, SegmentNode, TraitNode
from surmesure.protect import blind
from surmesure.segment.evaluate import Evaluator
from surmesure.segment.snapshot import load_snapshot, store_points, stores_named
from surmesure.segment.sql import Compiler, conjuncts, cost
from surmesure.store import Store, schema

NOW = "2026-03-31T12:00:00"


def compound_definitions(world: str, count: int) -> tuple[list[SegmentDefinition], dict[str, Any]]:
    """``count`` conjunctions of 2 to 4 conditions of the table (some negated, some through a
    reference), drawn with a fixed seed; with the catalog they need."""
    cases = [c for c in BY_WORLD[world] if c["now"] == NOW]
    catalog = {
        d["name"]: SegmentDefinition.model_validate(d)
        for c in BY_WORLD[world]
        for d in c.get("segments", [])
    }
    wheres = [c["where"] for c in cases]
    parts_made = min(12, len(wheres))
    for i, where in enumerate(wheres[:parts_made]):
        catalog[f"part_{i}"] = SegmentDefinition.model_validate(
            {"name": f"part_{i}", "where": {"all": [where, wheres[-1 - i]]}}
        )
    rng = random.Random(20260331)
    found = []
    for k in range(count):
        parts: list[Any] = [rng.choice(wheres) for _ in range(rng.randint(2, 4))]
        if k % 3 == 0:
            parts[0] = {"not": parts[0]}
        if k % 4 == 1:
            parts.append({"segment": f"part_{k % parts_made}"})
        found.append(
            SegmentDefinition.model_validate({"name": f"mix_{k}", "where": {"all": parts}})
        )
    return found, catalog


def test_conjuncts_flatten_references_and_order_by_cost() -> None:
    inner = SegmentDefinition.model_validate(
        {
            "name": "inner",
            "where": {
                "all": [
                    {"trait": {"name": "city", "op": "eq", "value": "Lyon"}},
                    {"purchase": {"category": "shoes"}},
                ]
            },
        }
    )
    where = AllNode.model_validate(
        {"all": [{"segment": "inner"}, {"all": [{"event": {"name": "Viewed"}}]}]}
    )
    flat = sorted(conjuncts(where, {"inner": inner}), key=cost)
    assert [next(iter(n.model_dump(by_alias=True))) for n in flat] == [
        "purchase",
        "event",
        "trait",
    ]
    assert isinstance(flat[-1], TraitNode)
    alone = conjuncts(SegmentNode(segment="inner"), {"inner": inner})
    assert len(alone) == 2


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql"])
def test_a_trait_metric_or_distance_step_is_its_own_ranking(dialect: str) -> None:
    """Such a step answers with the ranking it restricts to the chain's persons, never by
    testing those persons against it again: on PostgreSQL that second test ran as a nested
    loop re-ranking once per person (quadratic)."""
    compiler = Compiler(dialect, utc(NOW), 730.0, {}, b"")
    scope = sa.select(schema.people.c.person_id).cte("chain").prefix_with("MATERIALIZED")
    conditions = [
        {"trait": {"name": "city", "op": "eq", "value": "Lyon", "min_reliability": 0.5}},
        {"metric": {"name": "rfm_segment", "op": "in", "value": ["Champions"]}},
        {"near": {"lat": 45.76, "lon": 4.83, "radius_km": 300}},
    ]
    for document in conditions:
        step = compiler.step(AllNode.model_validate({"all": [document]}).all[0], scope)
        assert scope not in step.get_final_froms()  # the ranking's rows are the answer...
        assert "chain" in str(step.compile(dialect=_dialect(dialect)))  # ...restricted to it
    for document in ({"event": {"name": "Viewed"}}, {"trait": {"name": "city", "op": "missing"}}):
        step = compiler.step(AllNode.model_validate({"all": [document]}).all[0], scope)
        assert step.get_final_froms() == [scope]  # the chain's persons, tested


def _dialect(name: str) -> Any:
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect()
    from duckdb_engine import Dialect

    return Dialect()


@pytest.mark.parametrize("world", ["base", "ties"])
def test_fast_plan_agrees_with_plain_plan_and_memory(store: Store, world: str) -> None:
    persons = load_world(store, TABLE["worlds"][world])
    half_life = float(TABLE["half_life_days"])
    now = utc(NOW)
    definitions, catalog = compound_definitions(world, 40)
    sizes = []
    with store.connect() as conn:
        places = store_points(conn, stores_named([*definitions, *catalog.values()]))
        snapshots = [load_snapshot(conn, pid, now, half_life, places) for pid in persons]
        for definition in definitions:
            known = {**catalog, definition.name: definition}
            by_plan = {
                fast: sorted(
                    int(r[0])
                    for r in conn.execute(
                        members_sql(store, definition, now, half_life, catalog, fast=fast)
                    )
                )
                for fast in (True, False)
            }
            in_memory = [
                s.person_id
                for s in snapshots
                if Evaluator(s, now, known, blind.index_key(store)).segment(definition.name)
            ]
            assert by_plan[True] == by_plan[False] == in_memory, definition.document()
            sizes.append(len(in_memory))
    assert len(definitions) == 40
    if world == "base":  # the draw is not degenerate: some members, and not always everyone
        assert any(sizes) and min(sizes) < len(persons)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "where",
    [
        {"not": {"event": {"within_days": 60}}},
        {"not": {"any": [{"purchase": {"within_days": 90}}, {"event": {"name": "Viewed"}}]}},
        {"trait": {"name": "city", "op": "missing"}},
        {"consent": {"purpose": "marketing", "channel": "email", "granted": False}},
    ],
)
def test_a_negation_is_an_anti_join_on_postgresql(postgres_store: Store, where: Any) -> None:
    """PostgreSQL hashes a ``NOT IN`` subquery only when it fits in ``work_mem`` and otherwise
    scans it again for every person: "not seen in 60 days" ran for half an hour on 230,000
    people. Every negation is planned as an anti-join instead."""
    definition = SegmentDefinition.model_validate({"name": "lapsed", "where": where})
    query = members_sql(postgres_store, definition, utc(NOW), 730.0, {})
    compiled = query.compile(
        dialect=postgres_store.engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    with postgres_store.connect() as conn:
        conn.execute(sa.text("SET work_mem = '64kB'"))  # a subquery that cannot be hashed
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        plan = "\n".join(r[0] for r in rows)
    assert "Anti Join" in plan, plan
    assert "SubPlan" not in plan, plan
