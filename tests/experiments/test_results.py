"""Results from the store equal the engine on per-person metrics computed independently.

On DuckDB an experiment assigned in a few waves is summed from bitmaps of person ids, one in
more waves (or on PostgreSQL) through a join: both are checked against the same NumPy sums.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from surmesure.errors import NotFound
from surmesure.experiments import assign, results, save
from surmesure.experiments.assign import holdout_mask
from surmesure.experiments.results import moments
from surmesure.learn.analysis import analyze, as_dict
from surmesure.store import Store
from surmesure.store.schema import experiment_assignments
from world import (
    DAY,
    T0,
    Outcomes,
    add_outcomes,
    add_people,
    definition,
    expected_moments,
    random_outcomes,
)


def _recorded(store: Store, name: str) -> tuple[dict[int, str], dict[int, datetime]]:
    t = experiment_assignments
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.person_id, t.c.variant, t.c.assigned_at).where(t.c.experiment == name)
        ).all()
    return {r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows}


def _close(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float | int):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def test_results_equal_the_engine_on_independent_per_person_metrics(store: Store) -> None:
    ids = list(range(1, 601))
    add_people(store, ids)
    out = random_outcomes(ids)
    add_outcomes(store, out)
    d = definition()
    save(store, d)
    # two waves: a third of the people on T0, everyone else two days later
    assign(store, d.name, people=ids[::3], now=T0)
    assign(store, d.name, now=T0 + 2 * DAY)
    variant_of, assigned = _recorded(store, d.name)
    assert {assigned[p] for p in ids[::3] if p in assigned} == {T0}
    assert T0 + 2 * DAY in set(assigned.values())

    got = results(store, d.name).payload()
    assert got["experiment"] == d.name and got["control"] == "control"
    assert [m["metric"] for m in got["metrics"]] == [
        "conversion",
        "visit",
        "revenue",
        "unsubscribe",
    ]
    weights = {v.name: v.weight for v in d.variants}
    for entry in got["metrics"]:
        cells = expected_moments(out, variant_of, assigned, d, entry["metric"])
        assert sum(c.sum for c in cells.values()) > 0, entry["metric"]
        want = as_dict(analyze(cells, "control", weights, cuped=True))
        _close({k: entry[k] for k in want}, want, entry["metric"])
        assert entry["kind"] == ("mean" if entry["metric"] == "revenue" else "binomial")


@pytest.mark.parametrize(
    ("waves", "cuped"), [(1, True), (1, False), (3, True), (3, False), (9, True)]
)
def test_moments_equal_independent_sums_whatever_the_waves(
    store: Store, waves: int, cuped: bool
) -> None:
    """People spread over several blocks of 65,536 ids, assigned in waves a day apart (their
    windows overlap): one wave, three, and more than the bitmaps take (a join then)."""
    rng = np.random.default_rng(waves)
    ids = sorted({int(i) for i in rng.integers(1, 400_000, 800)})
    assert len({i >> 16 for i in ids}) == 7
    add_people(store, ids)
    out = random_outcomes(ids, seed=waves)
    add_outcomes(store, out)
    d = definition(cuped=cuped)
    save(store, d)
    for w in range(waves):
        assign(store, d.name, people=ids[w::waves], now=T0 + w * DAY)
    variant_of, assigned = _recorded(store, d.name)
    assert len(set(assigned.values())) == waves

    got = moments(store, d)
    for metric in d.metrics:
        want = expected_moments(out, variant_of, assigned, d, metric)
        assert sum(c.sum for c in want.values()) > 0, metric
        covariates = [c.covariate for c in want.values() if c.covariate is not None]
        assert len(covariates) == (len(want) if cuped else 0)
        assert not cuped or sum(c.sum for c in covariates) > 0, metric
        for v, cell in want.items():
            _close(dataclasses.asdict(got[metric][v]), dataclasses.asdict(cell), f"{metric}.{v}")


def _one_person_world(store: Store, out: Outcomes, days: int = 7) -> dict[str, Any]:
    """Person 1 assigned at T0 to a one-variant-per-person split; returns its moments."""
    add_people(store, [1, 2])
    add_outcomes(store, out)
    d = definition(
        name="window_probe",
        variants=[{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}],
        control="a",
        holdout=0.0,
        attribution_days=days,
    )
    save(store, d)
    assign(store, d.name, now=T0)
    stats = moments(store, d)
    return {m: functools.reduce(operator.add, stats[m].values()) for m in stats}


def test_attribution_window_includes_its_start_and_excludes_its_end(store: Store) -> None:
    span = timedelta(days=7)
    second = timedelta(seconds=1)
    out = Outcomes(
        events=[
            (1, T0, "page"),  # at assignment: in the window
            (2, T0 + span - second, "track"),  # last second of the window
            (2, T0 + span + second, "page"),  # after: nowhere
        ],
        orders=[
            (1, T0 + span - second, False, 40.0),  # in
            (1, T0 + span, False, 1000.0),  # the end is excluded
            (1, T0 - second, False, 7.0),  # just before: pre-period
            (2, T0 - span, True, 5.0),  # first second of the pre-period, a return
            (2, T0 - span - second, False, 900.0),  # before the pre-period: nowhere
            (2, T0 + DAY, True, -3.0),  # a return stored negative, in the window
        ],
        unsubscribes=[(2, T0 + span)],  # at the end: excluded
    )
    total = _one_person_world(store, out)
    assert total["visit"].n == 2
    assert total["visit"].sum == 2
    assert total["conversion"].sum == 1
    assert total["revenue"].sum == pytest.approx(40.0 - 3.0)
    assert total["revenue"].sum_squares == pytest.approx(40.0**2 + 3.0**2)
    assert total["revenue"].covariate.sum == pytest.approx(7.0 - 5.0)
    assert total["conversion"].covariate.sum == 1
    assert total["unsubscribe"].sum == 0


def test_merged_people_and_the_holdout_are_never_assigned(store: Store) -> None:
    ids = list(range(1, 2001))
    add_people(store, ids, merged={5: 6, 7: 6})
    d = definition(holdout=0.2)
    save(store, d)
    report = assign(store, d.name, now=T0)
    variant_of, _ = _recorded(store, d.name)
    assert 5 not in variant_of and 7 not in variant_of
    current = np.array([i for i in ids if i not in (5, 7)])
    held = set(current[holdout_mask(current, 0.2)].tolist())
    assert 300 < len(held) < 500
    assert held.isdisjoint(variant_of)
    assert report.holdout == len(held)
    assert report.audience == len(current)
    assert report.newly_assigned == len(variant_of)
    # the holdout is the same for every experiment
    other = definition(name="second_offer", holdout=0.2)
    save(store, other)
    assign(store, other.name, now=T0)
    second, _ = _recorded(store, other.name)
    assert held.isdisjoint(second) and len(second) > 1000


def test_unknown_experiment_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound) as err:
        results(store, "nope")
    assert err.value.field == "name"
