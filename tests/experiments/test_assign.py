"""Recorded assignments: sticky, stable when weights rise, exclusive layers, audiences."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from surmesure.errors import Conflict, NotFound
from surmesure.experiments import assign, save, stop
from surmesure.experiments.catalog import get
from surmesure.learn.assignment import Experiment, bucket
from surmesure.store import Store
from surmesure.store.schema import experiment_assignments, segment_members, segments
from world import DAY, T0, add_people, definition


def _recorded(store: Store, name: str) -> dict[int, tuple[str, object]]:
    t = experiment_assignments
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.person_id, t.c.variant, t.c.assigned_at).where(t.c.experiment == name)
        )
        return {r[0]: (r[1], r[2]) for r in rows}


def test_variants_follow_the_hash_and_stick_when_weights_rise(store: Store) -> None:
    ids = list(range(1, 3001))
    add_people(store, ids)
    small = definition(
        holdout=0.0,
        variants=[{"name": "control", "weight": 0.1}, {"name": "offer", "weight": 0.1}],
    )
    assert save(store, small) == "created"
    first = assign(store, small.name, now=T0)
    before = _recorded(store, small.name)
    engine = Experiment(small.name, (0.1, 0.1))
    want = {p: ("control", "offer")[engine.assign(p)] for p in ids if engine.assign(p) >= 0}
    assert {p: v for p, (v, _) in before.items()} == want
    assert first.new == dict(Counter(want.values()))
    assert get(store, small.name).status == "running"

    again = assign(store, small.name, now=T0 + DAY)
    assert again.newly_assigned == 0 and again.already_assigned == len(before)
    assert _recorded(store, small.name) == before

    bigger = definition(
        holdout=0.0,
        variants=[{"name": "control", "weight": 0.3}, {"name": "offer", "weight": 0.4}],
    )
    assert save(store, bigger) == "updated"
    assign(store, small.name, now=T0 + 2 * DAY)
    after = _recorded(store, small.name)
    assert all(after[p] == before[p] for p in before)  # nobody moved, same assigned_at
    added = {p: after[p][0] for p in after.keys() - before.keys()}
    assert 0.6 * len(ids) < len(after) < 0.8 * len(ids)
    assert {after[p][1] for p in added} == {T0 + 2 * DAY}
    bigger_engine = Experiment(small.name, (0.3, 0.4))
    assert all(("control", "offer")[bigger_engine.assign(p)] == v for p, v in added.items())


def test_lower_weights_or_moved_slots_are_refused(store: Store) -> None:
    save(store, definition())
    lowered = definition(
        variants=[
            {"name": "control", "weight": 0.3},
            {"name": "offer", "weight": 0.2},
            {"name": "offer_plus", "weight": 0.3},
        ]
    )
    with pytest.raises(Conflict) as err:
        save(store, lowered)
    assert err.value.field == "variants[1].weight"
    with pytest.raises(Conflict) as err:
        save(store, definition(salt="other"))
    assert err.value.field == "variants"
    assert save(store, definition()) == "unchanged"
    assert save(store, definition(attribution_days=14)) == "updated"


def test_layers_are_mutually_exclusive(store: Store) -> None:
    ids = list(range(1, 4001))
    add_people(store, ids)
    full = [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]
    left = definition(
        name="left",
        variants=full,
        control="a",
        holdout=0.0,
        layer={"name": "home", "start": 0.0, "end": 0.4},
    )
    right = definition(
        name="right",
        variants=full,
        control="a",
        holdout=0.0,
        layer={"name": "home", "start": 0.4, "end": 1.0},
    )
    save(store, left)
    save(store, right)
    with pytest.raises(Conflict) as err:
        save(
            store,
            definition(
                name="overlap",
                variants=full,
                control="a",
                layer={"name": "home", "start": 0.3, "end": 0.5},
            ),
        )
    assert err.value.field == "layer"
    assign(store, "left", now=T0)
    assign(store, "right", now=T0)
    a, b = _recorded(store, "left"), _recorded(store, "right")
    assert a.keys().isdisjoint(b.keys())
    assert len(a) + len(b) == len(ids)  # full weights: the layer covers everyone
    assert all(bucket("layer:home", p) < 0.4 for p in a)
    assert 0.35 < len(a) / len(ids) < 0.45


def test_audiences_segment_and_list(store: Store) -> None:
    ids = list(range(1, 501))
    add_people(store, ids, merged={10: 11})
    with store.begin() as conn:
        conn.execute(segments.insert().values(name="vip", version=1, created_at=T0, updated_at=T0))
        conn.execute(
            segment_members.insert(),
            [{"segment": "vip", "person_id": p, "entered_at": T0} for p in range(1, 101)],
        )
    full = [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]
    save(store, definition(name="vip_test", variants=full, control="a", holdout=0.0))
    report = assign(store, "vip_test", segment="vip", now=T0)
    assert report.audience == 99 and report.newly_assigned == 99  # 10 was merged into 11
    assert set(_recorded(store, "vip_test")) == set(range(1, 101)) - {10}
    with pytest.raises(NotFound):
        assign(store, "vip_test", segment="nobody")

    save(store, definition(name="listed", variants=full, control="a", holdout=0.0))
    listed = assign(store, "listed", people=[3, 3, 10, 400, 999_999], now=T0)
    assert listed.unknown == 2 and listed.audience == 2
    assert set(_recorded(store, "listed")) == {3, 400}

    stop(store, "listed")
    with pytest.raises(Conflict):
        assign(store, "listed", now=T0)
    assert set(_recorded(store, "listed")) == {3, 400}
    assert get(store, "listed").status == "stopped"
