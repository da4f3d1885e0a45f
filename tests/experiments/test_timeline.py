"""The sequential view: the interval at each cut-off equals the engine on per-person metrics
computed independently from the outcomes known then."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import sqlalchemy as sa

from surmesure.experiments import assign, results, save
from surmesure.experiments.timeline import MAX_POINTS, cutoffs, timeline
from surmesure.learn.moments import Moments
from surmesure.learn.sequential import compare_sequential
from surmesure.store import Store
from surmesure.store.schema import experiment_assignments
from world import DAY, T0, add_outcomes, add_people, definition, per_person, random_outcomes


def test_each_cut_off_equals_the_engine_on_what_was_known_then(store: Store) -> None:
    ids = list(range(1, 401))
    add_people(store, ids)
    out = random_outcomes(ids, seed=11)
    add_outcomes(store, out)
    d = definition(cuped=False)
    save(store, d)
    assign(store, d.name, people=ids[::2], now=T0)
    assign(store, d.name, now=T0 + 3 * DAY)
    t = experiment_assignments
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.person_id, t.c.variant, t.c.assigned_at).where(t.c.experiment == d.name)
        ).all()
    line = timeline(store, d.name, now=T0 + 30 * DAY)
    # the end of each day from T0's to the end of the last wave's window
    assert line.cutoffs[0] == T0.replace(hour=0) + DAY
    assert line.cutoffs[-1] == T0 + 3 * DAY + d.attribution_days * DAY
    assert set(line.lifts) == {"offer", "offer_plus"}
    checked = 0
    for k, cut in enumerate(line.cutoffs):
        known = dataclasses.replace(out, orders=[o for o in out.orders if o[1] < cut])
        assigned = {r.person_id: r.assigned_at for r in rows if r.assigned_at < cut}
        y = per_person(known, assigned, d.attribution_days, "conversion")
        cells = {}
        for v in ("control", "offer", "offer_plus"):
            ys = [y[r.person_id] for r in rows if r.variant == v and r.person_id in assigned]
            cells[v] = Moments.of(np.array(ys, dtype=np.float64), kind="binomial")
            assert line.n[v][k] == len(ys)
        for v in ("offer", "offer_plus"):
            want = compare_sequential(cells["control"], cells[v], cuped=False).absolute
            got = line.lifts[v][k]
            for a, b in ((got.estimate, want.estimate), (got.ci_lower, want.ci_lower),
                         (got.ci_upper, want.ci_upper)):  # fmt: skip
                assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)
            checked += not math.isnan(want.estimate)
    assert checked > 10
    # once every window is closed, the view ends where the sequential results stand
    final = results(store, d.name, sequential=True).metrics[0].result.variants[1]
    assert final.comparison is not None
    assert line.lifts[final.variant][-1].ci_upper == pytest.approx(
        final.comparison.absolute.ci_upper, abs=1e-12
    )


def test_cut_offs_are_at_most_the_limit_and_end_at_the_window() -> None:
    days = cutoffs(T0, T0 + 200 * DAY, 30, now=T0 + 400 * DAY)
    assert len(days) <= MAX_POINTS + 1 and days[-1] == T0 + 230 * DAY
    assert days == sorted(days)
    assert cutoffs(T0, T0, 7, now=T0 + DAY / 2) == [T0 + DAY / 2]  # read the same day
