"""A journey's split paths against their control path: the figures of ``journey status``
checked against statsmodels' test of two independent proportions (Wald, unpooled)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from journey_world import T0, add_people, publish, track
from statsmodels.stats import proportion

from surmesure.journeys import service
from surmesure.store import Store

SPLIT = {
    "name": "offer_test",
    "entry": {"event": {"name": "Signed Up"}},
    "goal": {"event": "Order Completed"},
    "steps": [
        {
            "id": "ab",
            "split": {
                "paths": [
                    {"weight": 1, "next": "offer"},
                    {"weight": 1, "next": "offer", "control": True},
                ]
            },
        },
        {"id": "offer", "send": {"channels": {"email": {"text": "-10%"}}}, "next": "watch"},
        {
            "id": "watch",
            "wait_for_event": {"event": "Order Completed", "timeout_hours": 48},
            "next": "done",
            "timeout": "done",
        },
        {"id": "done", "exit": {}},
    ],
}


def test_each_path_is_compared_with_its_control(store: Store, tmp_path: Path) -> None:
    n = 40
    ids = add_people(store, tmp_path, n)
    publish(store, SPLIT)
    for i in range(1, n + 1):
        track(store, f"C{i}", "Signed Up", T0)
    paths = {}
    for i in range(1, n + 1):
        out = service.person(store, "offer_test", f"customer_id:C{i}")
        chosen = [h["what"] for h in out["history"] if h["what"].startswith("path ")]
        paths[i] = 1 if "control" in chosen[0] else 0
    # the treated buy one time in two, the control one time in four
    buyers = [
        i
        for i in range(1, n + 1)
        if (paths[i] == 0 and i % 2 == 0) or (paths[i] == 1 and i % 4 == 0)
    ]
    for i in buyers:
        track(store, f"C{i}", "Order Completed", T0 + timedelta(hours=5))

    split = service.status(store, "offer_test")["splits"]["ab"]
    treated, control = split
    n1 = sum(1 for i in paths if paths[i] == 0)
    n0 = n - n1
    g1 = sum(1 for i in buyers if paths[i] == 0)
    g0 = len(buyers) - g1
    assert (treated["people"], treated["goals"]) == (n1, g1)
    assert (control["people"], control["goals"]) == (n0, g0)
    assert control["control"] and "lift" not in control
    expected = proportion.test_proportions_2indep(g1, n1, g0, n0, method="wald", compare="diff")
    assert treated["lift"] == pytest.approx(g1 / n1 - g0 / n0, abs=1e-12)
    assert treated["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert len(ids) == n
