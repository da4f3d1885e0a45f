"""The step for many people at once gives each person what the engine gives them one by one:
a seeded mixed population (every step, held out or not, with a product or not, due or not,
facts of every kind) under every kind of signal."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from journey_world import welcome_document

from surmesure.journeys import engine
from surmesure.journeys.columnar import advance, outcomes
from surmesure.journeys.columns import BatchFacts, People
from surmesure.journeys.document import JourneyDefinition, parse
from surmesure.journeys.graph import ahead

NOW = datetime(2026, 3, 5, 8, 0)


def _mixed() -> dict[str, Any]:
    """The welcome journey with a step of every kind: a local-time wait, an error exit, a
    geofence wait, a split with a control path, a trait update, a webhook, a second wait."""
    mixed = welcome_document()
    steps = {s["id"]: s for s in mixed["steps"]}
    steps["hello"]["error"] = "similar"
    steps["pause"]["wait"] = {"until": "09:30"}
    steps["watch"]["timeout"] = "near"
    steps["lyon"]["branch"]["else"] = "cut"
    steps["offer"]["next"] = "mark"
    mixed["steps"] += [
        {
            "id": "near",
            "wait_for_event": {"event": "Store Nearby", "near_km": 2, "timeout_hours": 24},
            "next": "lyon",
            "timeout": "lyon",
        },
        {
            "id": "cut",
            "split": {
                "paths": [
                    {"weight": 1, "next": "mark"},
                    {"weight": 1, "next": "offer", "control": True},
                ]
            },
        },
        {"id": "mark", "update_trait": {"trait": "seen", "value": 1}, "next": "hook"},
        {"id": "hook", "webhook": {"url": "https://example.org/x"}, "next": "rest"},
        {"id": "rest", "wait": {"days": 1}, "next": "done"},
    ]
    return mixed


SIGNALS: list[engine.Signal | None] = [
    None,
    engine.Tick(),
    engine.Event("Order Completed"),
    engine.Event("Product Viewed"),
    engine.Event("Unsubscribed"),
    engine.Event("Page Viewed"),
    engine.ConsentWithdrawn(),
    engine.StockChange("P1", in_stock=False),
    engine.StockChange("P1", in_stock=True),
    engine.Location(1.0),
    engine.Location(9.0),
    engine.StepFailed("hello", "template: x"),
    engine.StepFailed("reminder", "refused"),
]


def _population(definition: JourneyDefinition, seed: int, n: int) -> tuple[People, BatchFacts]:
    rng = np.random.default_rng(seed)
    steps = [s.id for s in definition.steps] + ["gone"]
    pick = rng.choice
    states = [
        engine.State(
            person_id=int(i),
            entry=int(pick([1, 2, 3])),
            step=str(pick(steps)),
            status=str(pick(["running", "running", "running", "done"])),
            entered_at=NOW - timedelta(days=int(pick([1, 4]))),
            due_at=[None, NOW - timedelta(hours=1), NOW, NOW + timedelta(hours=5)][
                int(rng.integers(4))
            ],
            product=[None, "P1", "P2"][int(rng.integers(3))],
            held=bool(rng.random() < 0.2),
        )
        for i in rng.choice(10**6, size=n, replace=False)
    ]
    zones = [None, "Europe/Paris", "America/New_York", "Asia/Tokyo", "Nowhere/Else"]
    facts = BatchFacts(
        conditions={"lyon": rng.random(n) < 0.5},
        out_of_stock=rng.random(n) < 0.3,
        zone=np.asarray([zones[int(k)] for k in rng.integers(len(zones), size=n)], dtype=object),
    )
    return People.of(states), facts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_groups_give_what_the_engine_gives_each_person(seed: int) -> None:
    definition = parse(_mixed())
    everyone, facts = _population(definition, seed, 400)
    entering = People.entering(
        definition, everyone.person_id, everyone.entry, everyone.product, NOW
    )
    for sig in SIGNALS:
        people = entering if sig is None else everyone
        groups = advance(definition, people, facts, NOW, sig)
        assert sorted(np.concatenate([g.index for g in groups]).tolist()) == list(range(400))
        got = outcomes(people, groups)
        for i in range(len(people)):
            state = people.state(i)
            if sig is None:
                expected = engine.enter(
                    definition, state.person_id, state.entry, NOW, facts.at(i), state.product
                )
            else:
                expected = engine.step(definition, state, sig, NOW, facts.at(i))
            assert got[i] == expected, (sig, state, facts.at(i))


def test_people_alike_share_one_run_of_the_engine() -> None:
    definition = parse(_mixed())
    states = [
        engine.State(i, 1, "rest", "running", NOW, NOW, ("P1" if i % 2 else None), False)
        for i in range(1, 1001)
    ]
    people = People.of(states)
    facts = BatchFacts.none(len(people))
    facts.conditions["lyon"] = np.arange(1000) < 500
    groups = advance(definition, people, facts, NOW, engine.Tick())
    # with a product or not, Lyon or not: four groups, each one run of the engine
    assert sorted(g.index.size for g in groups) == [250, 250, 250, 250]
    assert all(g.outcome.state.reason == "finished" for g in groups)


def test_many_branches_still_group_people_by_what_holds_for_them() -> None:
    definition = parse(_mixed())
    n = 300
    states = [engine.State(i, 1, "watch", "running", NOW, NOW, None, False) for i in range(n)]
    people = People.of(states)
    facts = BatchFacts.none(n)
    rng = np.random.default_rng(7)
    # 70 conditions, more than one 64-bit number can tell apart; only "lyon" differs
    facts.conditions["lyon"] = rng.random(n) < 0.5
    for k in range(69):
        facts.conditions[f"other{k:02d}"] = np.ones(n, dtype=bool)
    groups = advance(definition, people, facts, NOW, engine.Tick())
    assert len(groups) == 2
    got = outcomes(people, groups)
    for i in range(n):
        assert got[i] == engine.step(definition, people.state(i), engine.Tick(), NOW, facts.at(i))


@pytest.mark.parametrize("seed", [4, 5])
def test_facts_out_of_reach_of_a_move_do_not_change_it(seed: int) -> None:
    # a timer or an entry reads a branch's condition (a zone) only for the people who can
    # reach the branch (a wait until a local time) from their step: the others' are left empty
    definition = parse(_mixed())
    everyone, facts = _population(definition, seed, 400)
    entering = People.entering(
        definition, everyone.person_id, everyone.entry, everyone.product, NOW
    )
    for people, sig in ((everyone, engine.Tick()), (entering, None)):
        steps = people.step.tolist()
        reach = {s: ahead(definition.steps, s) for s in set(steps)}
        lyon = np.asarray(["lyon" in reach[s] for s in steps])
        until = np.asarray(["pause" in reach[s] for s in steps])
        assert (lyon.any() and not lyon.all()) or sig is None
        partial = BatchFacts(
            {"lyon": facts.conditions["lyon"] & lyon},
            facts.out_of_stock,
            np.where(until, facts.zone, None),
        )
        full = outcomes(people, advance(definition, people, facts, NOW, sig))
        assert outcomes(people, advance(definition, people, partial, NOW, sig)) == full
